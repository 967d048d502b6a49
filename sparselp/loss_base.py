"""The common part of the LP losses of :mod:`sparselp.losses`: input checks, the global
batch over a process group, the memory budget, and the solve (whole, or row-sharded for
the coupled ratio LPs). The behaviour it gives every loss is described in
:mod:`sparselp.losses`."""
from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from .formulations._base import absent_classes, check_labels, check_scores, describe_absent
from .distributed import check_group, gather, rank_and_world, resolve_group, sum_over_ranks
from .layer import lp_solve
from .options import make_options
from .sharded import certify, lagrangian_partial
from .warmstart import WarmStart
from .memory_model import MemoryBudgetError, parse_bytes
from .planner import chunk_peak_bytes, plan_loss

__all__ = ["LPLossBase", "binary_counts"]


class LPLossBase(nn.Module):
    """Common checks, the global batch and the solve; subclasses build the LP."""

    score_dims = (1,)

    def __init__(self, options=None, backend: str = "sparselp", process_group=None,
                 memory_budget=None, warm_start: bool = False, **layer_kwargs):
        super().__init__()
        self.options, self.backend, self.layer_kwargs = options, backend, layer_kwargs
        # The last solution, reused by the next call where the LP's shapes match.
        self.warm_start = WarmStart() if warm_start else None
        self.process_group = check_group(process_group)
        self.memory_budget = None if memory_budget is None else parse_bytes(memory_budget)
        self.last_block_size = None  # the block size of the last chunked call (AUCLoss)
        # FScoreLoss, PrecisionAtRecallLoss: whether to answer from the closed form (they
        # set it), and "closed-form" (certified, and row-sharded over a process group) or
        # "solver" for the last call (None: no such call yet)
        self.closed_form = False
        self.last_path = None

    def _prepare(self, scores, labels, num_classes=None):
        """Checked ``(s, y, group)``: the local batch and None, or the global batch gathered
        over the process group and the group."""
        group = resolve_group(self.process_group)
        s = check_scores(scores, self.score_dims, finite=group is None)
        y = check_labels(labels, s.shape[0], num_classes, device=s.device)
        self._check_local(s)
        if group is None:
            return s, y, None
        s, y, self._local_range = gather(s, y, group, with_range=True)
        if not bool(torch.isfinite(s).all()):
            raise ValueError("scores contains NaN or Inf entries (on some rank of "
                             "process_group); the LP is undefined")
        return s, y, group

    def _check_local(self, s: Tensor) -> None:
        """Shape checks of the local scores beyond ``score_dims`` (before any gather)."""

    @staticmethod
    def _batch(group) -> str:
        return "the minibatch" if group is None else \
            "the global minibatch (all ranks of process_group)"

    def _missing_binary_class(self, scores: Tensor, y: Tensor, group):
        """The zero loss (with a warning) when a binary minibatch lacks a class, else None."""
        absent = absent_classes(y)
        if not absent:
            return None
        return self._zero(scores, f"{self._batch(group)} has no {describe_absent(absent)}",
                          stacklevel=4)

    @staticmethod
    def _finish(partial: Tensor, s: Tensor, group) -> Tensor:
        """The loss from this rank's partial value: itself for the local batch; else the sum
        over the ranks."""
        if group is None:
            return partial
        # `+ s.sum() * 0`: the gather's backward (a collective) runs on every rank even
        # where this rank's share of the LP has no pair.
        return sum_over_ranks(partial + s.sum() * 0, group)

    def _zero(self, scores: Tensor, why: str, stacklevel: int = 3) -> Tensor:
        warnings.warn(f"{type(self).__name__}: {why}; returning a zero loss", UserWarning,
                      stacklevel=stacklevel)
        s = scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores
        return s.sum() * 0

    def _check_budget(self, s: Tensor, counts: list[int], block_size: int | None = None,
                      group=None):
        """With ``memory_budget``: None when the LP of a batch with these class ``counts``
        fits as is (or the given chunked ``block_size`` fits), the block size the planner
        picks when only chunking fits (AUCLoss), else :class:`~sparselp.MemoryBudgetError`
        before the LP is built. With a process group the counts are those of the global
        batch (of a rank's share for AUCLoss), the same on every rank; the coupled losses
        pass their ``group`` and are judged by their row-sharded peak per rank (by the
        whole LP's where they solve it, :meth:`closed_form_allowed`)."""
        if self.memory_budget is None or min(counts) == 0:
            return block_size
        sharded = group is not None and self.closed_form_allowed()
        world = (rank_and_world(group)[1],) if sharded else ()
        p = plan_loss(self, sum(counts), 0.5, self.memory_budget, s.device, s.dtype, world,
                      counts)
        what = f"{type(self).__name__} on a batch of {s.shape[0]}"
        if world:
            if not p.options[-1].fits:
                raise MemoryBudgetError(what + f", row-sharded over {world[0]} ranks",
                                        p.options[-1].peak_bytes, self.memory_budget,
                                        p.suggestion())
            return None
        if block_size is not None:
            peak = chunk_peak_bytes(counts, block_size, s.dtype, s.device)
            if peak > self.memory_budget:
                raise MemoryBudgetError(what + f" with block_size={block_size}", peak,
                                        self.memory_budget, p.suggestion())
            return block_size
        if p.chosen is None:
            raise MemoryBudgetError(what, p.options[0].peak_bytes, self.memory_budget,
                                    p.suggestion())
        return p.chosen.settings.get("block_size")

    def closed_form_allowed(self) -> bool:
        """Whether a coupled ratio loss answers from its certified closed-form optimum
        (:meth:`_coupled_value`): ``closed_form=True`` with the default engine
        (``backend="sparselp"``) and implicit differentiation (``mode``)."""
        return (self.closed_form and self.backend == "sparselp"
                and self.layer_kwargs.get("mode", "implicit") == "implicit")

    def _coupled_value(self, s: Tensor, group, whole, shard, constant: float = 0.0) -> Tensor:
        """This rank's partial value of ``constant +`` a coupled ratio LP's optimal value
        (F-score, precision at recall):
        the closed-form optimum of the rows ``shard(lo, hi)`` (this rank's own samples;
        the whole batch without a process group), certified for the whole LP
        (:func:`sparselp.sharded.certify`, its sums all-reduced over the group) and
        differentiated by the envelope theorem on those rows; or, where the certificate
        fails (on every rank alike) or :meth:`closed_form_allowed` is False, the LP
        ``whole()`` (its LPData) solved by the layer, whole on every rank and divided by
        the world size. ``last_path`` says which: ``"closed-form"`` or ``"solver"``."""
        world = 1 if group is None else rank_and_world(group)[1]
        if self.closed_form_allowed():
            lo, hi = (0, s.shape[0]) if group is None else self._local_range
            sh = shard(lo, hi)
            if certify(sh, group).worst <= make_options(self.options).tol_for(s.dtype):
                self.last_path = "closed-form"
                return lagrangian_partial(sh, s.dtype, world) + constant / world
        self.last_path = "solver"
        return (self._value(whole()) + constant) / world

    def _value(self, data) -> Tensor:
        # The formulation's closed-form optimum where it has one (F-score, precision at
        # recall: certified at once), else the last call's solution (warm_start=True).
        start = self.warm_start if data.start is None else data.start
        _, value = lp_solve(data.c, data.A, data.b, data.A_eq, data.b_eq, data.lb, data.ub,
                            options=self.options, backend=self.backend, return_value=True,
                            warm_start=start, **self.layer_kwargs)
        return value


def binary_counts(y: Tensor) -> list[int]:
    n_pos = int(y.sum())
    return [y.numel() - n_pos, n_pos]
