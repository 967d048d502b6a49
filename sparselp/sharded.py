r"""Row-sharded coupled LPs over ``torch.distributed``: each rank holds the rows of its own
samples, certifies a proposed primal-dual pair with local products and all-reduced sums,
and differentiates the optimal value from its own rows.

The F-score and precision-at-recall LPs (:mod:`sparselp.formulations.ratio`) are "arrow"
LPs: one column per sample, a few SHARED columns (the Charnes–Cooper scale ``t``, the
threshold ``theta``), two rows per sample that touch only that sample's column and the
shared ones, and a few GLOBAL rows that touch every sample's column (the normalisation
``sum w + |P| t = 1``, the recall row). Rank ``r`` of a process group builds
(:class:`ArrowShard`)

- the rows of its own samples: COO triplets over its local columns and the shared ones,
  their values and right-hand side still on the scores' autograd graph;
- its slice of the global rows: their coefficients on its local columns (the shared
  columns' coefficients and the right-hand sides are replicated);
- a proposed optimum: the primal ``x`` (its local columns and the shared ones), the
  multipliers ``v`` of its rows and ``mu`` of the global rows (replicated), in float64.

:func:`certify` measures the residuals of the whole LP, defined as the solver's
(:class:`sparselp.residuals.Residuals`: primal violation over ``1 + ||b||_inf``, the
dual residual ``c + A^T v`` over ``1 + ||c||_inf``, the relative duality gap) with one
all-reduce SUM (the global rows' products, the shared columns' dual terms, the two
objectives) and one all-reduce MAX; every rank gets the same numbers, so every rank takes
the same decision. A negative multiplier counts as a dual violation.

:func:`lagrangian_partial` is this rank's share of the optimal value with the envelope
theorem's gradient (:func:`sparselp.layer._function._value_part`: ``d f*/dA = v x^T``,
``d f*/db = -v``) on its own rows: summed over the ranks, the LP's optimal value and its
gradient with respect to every score. The global rows must not depend on the scores (they
do not in either LP).

Memory per rank: the rows of ``n / world`` samples; nothing of the size of the global LP.
The losses fall back to the replicated solve of the whole LP on every rank when the
proposed pair is not certified (``last_path`` of the loss).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["ArrowShard", "ShardCertificate", "certify", "lagrangian_partial"]

F64 = torch.float64


class ArrowShard(NamedTuple):
    """One rank's share of an arrow LP ``min c^T x`` s.t. ``A x <= b``, ``G x (=, <=) h``.

    Columns are indexed locally: ``0 .. n_local-1`` this rank's samples, then
    ``n_shared`` shared columns (replicated on every rank)."""

    rows: Tensor      #: (nnz,) local row of each stored entry of A
    cols: Tensor      #: (nnz,) local column of each entry
    vals: Tensor      #: (nnz,) the entries (on the scores' graph)
    b: Tensor         #: (m_local,) right-hand sides of the local rows (on the graph)
    c: Tensor         #: (n_local + n_shared,) costs; the shared ones are counted once
    n_shared: int
    G: Tensor         #: (g, n_local + n_shared) global rows: local slice, shared part
    h: Tensor         #: (g,) their right-hand sides
    g_eq: Tensor      #: (g,) bool, True for an equality row
    x: Tensor         #: (n_local + n_shared,) float64 proposed primal
    v: Tensor         #: (m_local,) float64 proposed multipliers of the local rows (>= 0)
    mu: Tensor        #: (g,) float64 proposed multipliers of the global rows

    @property
    def n_local(self) -> int:
        return self.x.numel() - self.n_shared


class ShardCertificate(NamedTuple):
    """Residuals of the whole LP (the same on every rank) and its optimal value."""

    primal: float
    dual: float
    gap: float
    objective: float

    @property
    def worst(self) -> float:
        return max(self.primal, self.dual, self.gap)


def _reduce(t: Tensor, op, group) -> Tensor:
    if group is not None:
        dist.all_reduce(t, op=op, group=group)
    return t


def _amax(t: Tensor) -> Tensor:
    """``max |t|`` (0 for an empty tensor)."""
    return t.abs().amax() if t.numel() else t.new_zeros(())


def certify(sh: ArrowShard, group=None) -> ShardCertificate:
    """The residuals of the whole LP at the shards' proposed pair (float64), two
    collectives over ``group`` (None: this shard is the whole LP)."""
    nl, g = sh.n_local, sh.h.numel()
    x, v, mu = sh.x, sh.v, sh.mu
    vals, b = sh.vals.detach().to(F64), sh.b.detach().to(F64)
    c, G, h = sh.c.detach().to(F64), sh.G.to(F64), sh.h.detach().to(F64)
    Ax = torch.zeros_like(b).index_add_(0, sh.rows, vals * x[sh.cols])
    ATv = torch.zeros_like(x).index_add_(0, sh.cols, vals * v[sh.rows])
    # Sums over the ranks: the global rows' local products, the shared columns' dual
    # terms, this rank's objective terms (the shared costs are added once, after).
    sums = torch.cat([G[:, :nl] @ x[:nl], ATv[nl:], (c[:nl] * x[:nl]).sum().reshape(1),
                      (b * v).sum().reshape(1)])
    _reduce(sums, dist.ReduceOp.SUM, group)
    Gx = sums[:g] + G[:, nl:] @ x[nl:] - h
    gviol = torch.where(sh.g_eq, Gx.abs(), Gx.clamp_min(0))
    dual_shared = c[nl:] + sums[g:-2] + G[:, nl:].T @ mu
    dual_local = c[:nl] + ATv[:nl] + G[:, :nl].T @ mu
    negative = torch.cat([-v, -mu[~sh.g_eq], v.new_zeros(1)]).amax()
    maxes = torch.stack([(Ax - b).clamp_min(0).amax() if b.numel() else b.new_zeros(()),
                         _amax(b), _amax(c[:nl]), _amax(dual_local), negative])
    _reduce(maxes, dist.ReduceOp.MAX, group)
    k0 = 1 + torch.maximum(maxes[1], _amax(h))
    c0 = 1 + torch.maximum(maxes[2], _amax(c[nl:]))
    primal = torch.maximum(maxes[0], _amax(gviol)) / k0
    dual = torch.stack([maxes[3], _amax(dual_shared), maxes[4]]).amax() / c0
    p_obj = sums[-2] + c[nl:] @ x[nl:]
    d_obj = -(sums[-1] + h @ mu)
    gap = (p_obj - d_obj).abs() / (1 + p_obj.abs() + d_obj.abs())
    return ShardCertificate(float(primal), float(dual), float(gap), float(p_obj))


def lagrangian_partial(sh: ArrowShard, dtype: torch.dtype, world: int) -> Tensor:
    """This rank's share of the optimal value, with the gradient of the Lagrangian on its
    rows: ``c_local^T x_local + c_shared^T x_shared / world + L - L.detach()``,
    ``L = sum_i v_i (A_i x - b_i)`` over the local rows (zero at the optimum by
    complementary slackness; ``A`` and ``b`` on the graph, ``x`` and ``v`` fixed), less
    ``mu^T h / world`` where the global rows' right-hand side ``h`` is on the graph. The
    objective is summed in float64 (the proposal's precision), then rounded to ``dtype``."""
    nl = sh.n_local
    c = sh.c.detach().to(F64)
    value = (c[:nl] @ sh.x[:nl] + (c[nl:] @ sh.x[nl:]) / world).to(dtype)
    x, v = sh.x.to(dtype), sh.v.to(dtype)
    lag = (v[sh.rows] * sh.vals * x[sh.cols]).sum() - (v * sh.b).sum()
    if sh.h.requires_grad:  # a global row's right-hand side holds the scores: every rank
        lag = lag - (sh.mu.to(dtype) * sh.h).sum() / world  # adds its share of mu h
    return value + (lag - lag.detach())
