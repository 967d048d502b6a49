r"""Global-batch losses over ``torch.distributed``: the gather and the sum, with autograd.

With ``process_group=`` a loss of :mod:`sparselp.losses` is the loss of the GLOBAL batch:
the concatenation over the group's ranks, in rank order, of the local ``(scores,
labels)``. Every rank

1. gathers the global batch (:func:`gather`; local sizes may differ, e.g. the last
   minibatch of an epoch);
2. computes a PARTIAL value whose sum over the ranks is the global loss: its share of the
   pairs for the row-separable AUC losses (1/world of them, so memory per rank falls as
   1/world), or, for the coupled F-score and precision-at-recall LPs, the share of the
   optimal value of the rows of its own samples (:mod:`sparselp.sharded`; the whole
   value divided by the world size where the sharded optimum is not certified and the
   LP is solved whole on every rank);
3. returns :func:`sum_over_ranks` of it: the global loss, the same on every rank.

Gradients. The backward pass of :func:`sum_over_ranks` is the identity (every rank's
backward starts from the same upstream gradient of the same global loss), so rank ``r``
back-propagates :math:`g_r = \partial\,\mathrm{partial}_r / \partial s_{global}`; the
gather's backward all-reduces (SUM) these, :math:`\sum_r g_r = \partial L /
\partial s_{global}`, and hands rank ``r`` its own slice. Each rank's local scores thus get
exactly :math:`\partial L / \partial s_{local}` -- as the one-process loss of the
concatenated batch would give them.

Every rank must call the loss, and its backward, the same number of times in the same
order: both contain collectives. Errors that depend on the global batch (a missing class,
non-finite scores) are decided on every rank alike; an error raised on one rank only (a
malformed local input, or an uncertified solve of its shard with ``strict=True``) leaves
the other ranks waiting in the next collective until the process group's timeout. ``torch.distributed.group.WORLD`` is None until
``init_process_group`` has run, so a loss built before that can be given
``process_group="world"``, resolved at each call.

This module imports nothing from :mod:`sparselp.losses` (the losses import it).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["check_group", "resolve_group", "rank_and_world", "gather", "sum_over_ranks"]

_NOT_INIT = ("process_group={!r} was given but torch.distributed is not initialized: call "
             "torch.distributed.init_process_group first (torch.distributed.group.WORLD is "
             "None before that), or pass process_group=None for the local batch")


def check_group(group):
    """Validate a loss's ``process_group`` argument (at construction); returns it.

    None (the local batch), ``"world"`` (the default group, looked up at each call) or a
    ``torch.distributed.ProcessGroup``, which needs torch.distributed initialized.
    """
    if group is None or (isinstance(group, str) and group == "world"):
        return group
    if not dist.is_available():
        raise RuntimeError("process_group was given but this torch build has no "
                           "torch.distributed")
    if isinstance(group, str) or not isinstance(group, dist.ProcessGroup):
        raise TypeError(f"process_group must be None, 'world' or a "
                        f"torch.distributed.ProcessGroup, got {group!r}")
    if not dist.is_initialized():
        raise RuntimeError(_NOT_INIT.format(group))
    return group


def resolve_group(group):
    """The ProcessGroup to use now (None for the local batch); raises when torch.distributed
    is not (or no longer) initialized."""
    if group is None:
        return None
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(_NOT_INIT.format(group))
    return dist.group.WORLD if isinstance(group, str) else group


def rank_and_world(group) -> tuple[int, int]:
    """This process's rank in ``group`` and the group's size."""
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    if rank < 0:
        raise RuntimeError("process_group: this process is not a member of the group")
    return rank, world


def _all_gather_padded(x: Tensor, sizes: list[int], group) -> Tensor:
    """Concatenation over ranks of ``x`` (rank r holds ``sizes[r]`` rows), in rank order."""
    top = max(sizes)
    padded = x.new_zeros((top,) + tuple(x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous(), group=group)
    return torch.cat([p[:m] for p, m in zip(parts, sizes)])


class _Gather(torch.autograd.Function):
    """All-gather of the scores; backward: all-reduce (SUM) of the global gradient, this
    rank's slice."""

    @staticmethod
    def forward(ctx, x: Tensor, sizes: list[int], rank: int, group):
        ctx.group, ctx.start, ctx.stop = group, sum(sizes[:rank]), sum(sizes[:rank + 1])
        return _all_gather_padded(x.detach(), sizes, group)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad[ctx.start:ctx.stop], None, None, None


def gather(scores: Tensor, labels: Tensor, group, with_range: bool = False):
    """The global batch: the concatenation over ``group``'s ranks, in rank order, of the
    local ``scores`` ((n_r,) or (n_r, K), any n_r >= 0) and ``labels`` ((n_r,)).

    Sizes are all-gathered first, the tensors padded to the largest, gathered and
    unpadded. The scores keep their dtype and stay on the autograd graph (backward:
    :class:`_Gather`); the labels are gathered without gradient. Collectives run on the
    scores' device (CUDA tensors for NCCL). ``with_range=True`` also returns ``(lo, hi)``,
    where this rank's samples sit in the global batch.
    """
    rank, world = rank_and_world(group)
    n = torch.tensor([scores.shape[0]], dtype=torch.long, device=scores.device)
    counts = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(counts, n, group=group)
    sizes = [int(c) for c in counts]
    global_labels = _all_gather_padded(labels.detach().to(scores.device, torch.long),
                                       sizes, group)
    out = _Gather.apply(scores, sizes, rank, group), global_labels
    return out + ((sum(sizes[:rank]), sum(sizes[:rank + 1])),) if with_range else out


class _SumOverRanks(torch.autograd.Function):
    @staticmethod
    def forward(ctx, value: Tensor, group):
        total = value.detach().clone().contiguous()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


def sum_over_ranks(value: Tensor, group) -> Tensor:
    """All-reduce (SUM) of a scalar over ``group``; its backward is the identity.

    Each rank's backward starts from the same upstream gradient of the same total, so the
    identity is right; combined with :func:`gather`'s SUM backward, each rank's local
    scores get the derivative of the total.
    """
    return _SumOverRanks.apply(value, group)
