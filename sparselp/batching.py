"""Compaction of a batch of LPs: the solver works only on the elements still open.

A batch is a batch of independent solves (DESIGN.md): an element whose inner Newton solve
has converged, or whose status is decided, should stop costing Newton systems. These
helpers select batch elements out of the solver's batched objects (the equilibrated rows,
the residual scales) and write a working set's results back into the whole batch. A
tensor whose leading dimension is 1 is shared by the batch and is kept as it is. An
operator that cannot select elements (:meth:`sparselp.operators.Operator.take` returns
None) makes the selection return None: the caller then keeps the whole batch, with the
results it had before compaction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .residuals import Residuals, ResidualScales
from .scaling import RowSystem

__all__ = ["take_rows", "take_system", "take_scales", "put_rows", "merge_residuals",
           "Working", "working_set", "GramCache"]


def take_rows(t: Tensor | None, idx: Tensor) -> Tensor | None:
    """``t[idx]`` along the batch dimension; ``t`` itself when shared (leading dim 1)."""
    if t is None or t.dim() == 0 or t.shape[0] == 1:
        return t
    return t.index_select(0, idx)


def take_system(system: RowSystem, idx: Tensor) -> RowSystem | None:
    """The rows of the batch elements ``idx``, or None when the operator cannot select them."""
    K = system.K.take(idx)
    if K is None:
        return None
    return RowSystem(K, take_rows(system.k, idx), system.eq, take_rows(system.c, idx),
                     system.sizes, system.lb_idx, system.ub_idx,
                     *(take_rows(getattr(system, f), idx)
                       for f in ("r", "s", "c_scale", "k_scale")),
                     True if system.k_finite else None)


def take_scales(scales: ResidualScales, idx: Tensor) -> ResidualScales:
    """The residual scales of the batch elements ``idx``: their batched tensors (``eqf``,
    a mask of rows, is not batched) and cached operators (``|K|``, rebuilt from the
    selected rows when it cannot be selected)."""
    out = ResidualScales.__new__(ResidualScales)
    for name, v in scales.__dict__.items():
        if isinstance(v, Tensor) and name != "eqf":
            v = take_rows(v, idx)
        elif hasattr(v, "take"):
            v = v.take(idx)
        setattr(out, name, v)
    return out


def put_rows(full: Tensor, idx: Tensor | None, part: Tensor) -> Tensor:
    """``full`` with the rows ``idx`` replaced by ``part`` (out of place); ``part`` itself
    when ``idx`` is None (the working set was the whole batch)."""
    return part if idx is None else full.index_copy(0, idx, part)


def merge_residuals(res: Residuals, rows: Tensor, part: Residuals, keep: Tensor) -> Residuals:
    """``res`` with the residuals of the batch elements ``rows`` replaced by the entries
    ``keep`` of ``part`` (residuals are per element: nothing is measured again)."""
    out = Residuals.__new__(Residuals)
    for name in ("primal_obj", "dual_obj", "primal", "dual", "gap", "worst"):
        setattr(out, name, getattr(res, name).index_copy(
            0, rows, getattr(part, name).index_select(0, keep)))
    return out


@dataclass(frozen=True)
class Working:
    """The open elements of a solve and their rows: the batch an outer step works on.

    ``idx`` holds their indices in the whole batch (None: the whole batch, either
    because every element is open or because the rows cannot be selected, and then the
    decided elements are masked as before). ``strategy`` is the solve's Newton-system
    strategy, so that a Working serves where the polish expects the solver's setup.
    """

    idx: Tensor | None
    system: RowSystem
    scales: ResidualScales
    shadow: RowSystem | None
    shadow_scales: ResidualScales | None
    strategy: object

    def take(self, t: Tensor) -> Tensor:
        return t if self.idx is None else take_rows(t, self.idx)

    def take_list(self, items) -> tuple:
        return tuple(items) if self.idx is None else tuple(items[i] for i in self.idx.tolist())

    def put_mask(self, mask: Tensor, size: int) -> Tensor:
        """A (size,) bool mask of the whole batch, ``mask`` on the working set, else False."""
        if self.idx is None:
            return mask
        return mask.new_zeros(size).index_copy(0, self.idx, mask)

    def put(self, state, x, lam, residuals, status, done, polished, ray_steps):
        """The whole batch's fields, with the working set's written back into ``state``'s."""
        if self.idx is None:
            return x, lam, residuals, tuple(status), done, polished, ray_steps
        idx, full = self.idx, list(state.status)
        for i, st in zip(idx.tolist(), status):
            full[i] = st
        every = torch.arange(idx.numel(), device=idx.device)
        return (state.x.index_copy(0, idx, x), state.lam.index_copy(0, idx, lam),
                merge_residuals(state.residuals, idx, residuals, every), tuple(full),
                state.done.index_copy(0, idx, done), state.polished.index_copy(0, idx, polished),
                state.ray_steps.index_copy(0, idx, ray_steps))


def working_set(setup, done: Tensor, previous: Working | None = None) -> Working:
    """The open elements (``~done``) of the solve of ``setup`` (a
    :class:`sparselp.solver.SolverSetup`); ``previous`` is reused while the open set holds
    (it only ever shrinks), so the rows are copied once per change."""
    n_open = int((~done).sum())
    if previous is not None and (previous.idx.numel() if previous.idx is not None
                                 else done.numel()) == n_open:
        return previous
    whole = Working(None, setup.system, setup.scales, setup.shadow, setup.shadow_scales,
                    setup.strategy)
    if n_open == done.numel():
        return whole
    idx = torch.nonzero(~done).squeeze(-1)
    system = take_system(setup.system, idx)
    shadow = None if setup.shadow is None or system is None else take_system(setup.shadow, idx)
    if system is None or (setup.shadow is not None and shadow is None):
        return whole
    return Working(idx, system, take_scales(setup.scales, idx), shadow,
                   None if shadow is None else take_scales(setup.shadow_scales, idx),
                   setup.strategy)


class GramCache:
    """``G = K^T diag(w) K`` of a working set, kept from one Newton step to the next.

    Between two Newton steps of one outer step (same ``σ``) the weights change on a few
    rows only, where a row enters or leaves the active set (often one or two of about n).
    ``G`` is linear in ``w``, so it is updated by the Gram of the change,
    ``G + K^T diag(w - w_old) K``, which the operators form from the changed rows alone.
    A fresh Gram is formed when many rows changed (a new ``σ``), and a cache lives for
    one outer step only, so round-off from the updates never accumulates further.
    """

    def __init__(self):
        self.w = self.G = None

    def gram(self, K, w: Tensor) -> Tensor:
        """``K^T diag(w) K`` of shape (B, n, n); not to be modified by the caller."""
        if self.w is not None:
            delta = w - self.w
            changed = int((delta != 0).sum(-1).max())
            if 4 * changed <= int((w != 0).sum(-1).max()):
                if changed:
                    self.G = self.G + K.gram(delta)
                self.w = w.clone()
                return self.G
        self.G, self.w = K.gram(w), w.clone()
        return self.G

    def take(self, idx: Tensor) -> None:
        """Keep the batch elements ``idx`` (the working set shrank)."""
        if self.w is not None:
            self.w, self.G = self.w.index_select(0, idx), self.G.index_select(0, idx)
