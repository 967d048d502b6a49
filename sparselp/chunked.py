r"""Row-separable LP losses solved block by block, so that memory follows the block size.

When every row of an LP couples one variable (binary AUC: one variable ``z_ij`` per
pair), the LP is a set of independent LPs, one per block of variables, and a loss that is
a sum over them is a sum of the blocks' losses. :class:`BlockwiseSum` computes such a sum
with one solve per block: each block's pairs are made by index arithmetic, its LP is built,
solved and differentiated (by the layer, :func:`sparselp.layer.lp_solve`) and dropped
before the next, and the block's gradient with respect to the scores is added to an
``n``-sized total during the forward pass. The backward pass only scales that total, so no
vector of the number of pairs outlives its block.

The gradient is first order only (``create_graph`` is not supported): the blocks' graphs
are gone by the time the backward pass runs.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import Tensor

from .formulations.auc import binary_auc_pairs_data
from .layer import lp_solve

__all__ = ["BlockwiseSum", "positive_blocks", "auc_pairs_term", "chunked_auc_loss"]


class BlockwiseSum(torch.autograd.Function):
    """``sum_k block_fn(scores, block_k)`` with its gradient accumulated block by block.

    ``block_fn(scores, block) -> scalar tensor`` must be differentiable in ``scores``
    (shape (n,)); ``blocks`` is an iterable of whatever ``block_fn`` takes.
    """

    @staticmethod
    def forward(ctx, scores: Tensor, block_fn: Callable, blocks: Iterable):
        total = scores.new_zeros(())
        grad = torch.zeros_like(scores)
        for block in blocks:
            with torch.enable_grad():
                leaf = scores.detach().requires_grad_(True)
                value = block_fn(leaf, block)
                g, = torch.autograd.grad(value, leaf, allow_unused=True)
            total += value.detach()
            if g is not None:
                grad += g
            del value, g, leaf  # the block's LP and graph go before the next block
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        grad, = ctx.saved_tensors
        return grad_out * grad, None, None


def positive_blocks(pos: Tensor, n_neg: int, block_size: int):
    """Slices of the positives, each with at most ``block_size`` pairs (at least one
    positive per slice)."""
    per = max(1, block_size // max(n_neg, 1))
    return [pos[a:a + per] for a in range(0, pos.numel(), per)]


def auc_pairs_term(scores: Tensor, pos: Tensor, neg: Tensor, eps: float, surrogate: str,
                   pairs: int, solve_kwargs: dict, matrices: dict | None = None) -> Tensor:
    r"""The share of the pairs ``pos x neg`` in :class:`~sparselp.losses.AUCLoss`, each pair
    weighted ``1/pairs`` (``pairs``: the pair count of the whole batch).

    ``surrogate="hinge"``: the optimal value of their hinge LP,
    :math:`\sum z_{ij} / P`; ``"paper"``: :math:`\sum \operatorname{relu}(\varepsilon -
    z_{ij}) / (P \varepsilon)` with ``z`` the LP's primal solution (the loss is then one
    minus the sum of these terms). ``pos`` must not be empty. ``matrices``: a dict that
    keeps the LP's matrix for the next call of the same size (the blocks of
    :func:`chunked_auc_loss`).
    """
    data = binary_auc_pairs_data(scores, pos, neg, eps, 1.0 / pairs, matrices)
    if surrogate == "hinge":
        return lp_solve(data.c, data.A, data.b, return_value=True, **solve_kwargs)[1]
    z = lp_solve(data.c, data.A, data.b, **solve_kwargs)
    return (eps - z).clamp_min(0).sum() / (pairs * eps)


def chunked_auc_loss(s: Tensor, y: Tensor, eps: float, surrogate: str, block_size: int,
                     solve_kwargs: dict, shard: tuple[int, int] = (0, 1)) -> Tensor:
    r""":class:`~sparselp.losses.AUCLoss` of checked scores ``s`` and labels ``y`` (both
    classes present), block by block.

    ``surrogate="hinge"``: the mean over pairs of the LP's ``z_ij`` (each block's optimal
    value with weights ``1/P``); ``"paper"``: ``1 - sum relu(eps - z_ij) / (P eps)`` with
    ``z`` each block's primal solution (:func:`auc_pairs_term`). ``solve_kwargs`` go to
    :func:`sparselp.layer.lp_solve`.

    ``shard=(rank, world)``: only the positives ``pos[rank::world]`` (against all
    negatives), still weighted by the whole batch's pair count ``P``; the paper
    surrogate's constant becomes ``1/world``. The shards' values sum to the loss
    (:mod:`sparselp.distributed`).
    """
    rank, world = shard
    pos = torch.nonzero(y == 1).squeeze(1)
    neg = torch.nonzero(y == 0).squeeze(1)
    pairs = pos.numel() * neg.numel()

    matrices: dict = {}  # the blocks' [-I; -I], one per block size (two at most)

    def block_fn(scores, block):
        return auc_pairs_term(scores, block, neg, eps, surrogate, pairs, solve_kwargs,
                              matrices)

    blocks = positive_blocks(pos[rank::world], neg.numel(), block_size)
    total = BlockwiseSum.apply(s, block_fn, blocks)
    return total if surrogate == "hinge" else 1.0 / world - total
