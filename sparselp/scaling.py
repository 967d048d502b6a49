r"""Stacking all constraints into one row operator, and equilibrating it.

The solver sees one operator ``K = [A; A_eq; -I_L; I_U]`` (bound rows only for the
variables with a finite bound in some batch element) with right-hand side
``k = [b; b_eq; -lb_L; ub_U]``; rows with an infinite right-hand side are switched off by
the arithmetic itself (``(u)_+ = 0`` for ``u = -inf``). ``eq`` marks the equality rows.

Equilibration finds ``r`` and ``s`` so that ``diag(r) K diag(s)`` is well scaled: Ruiz's
passes (Ruiz 2001, with 2-norms) balance row and column norms; where the entries of
``A`` span more than six decades, geometric passes (``sqrt(max |a| min |a|)`` per row and
column, as in glpk, HiGHS and the PDLP presolve) followed by Ruiz's on ``A`` alone are
tried as well, and the scaling under which matrix, costs and bounds span the fewest
decades is kept (:func:`column_scaling`). The rows are then brought to unit norm, as
the Newton step is most reliable on a row-normalized problem (DESIGN.md). The
right-hand side is divided by its largest entry, the objective by its largest entry or,
where its entries span more than ``COST_SPREAD``, by the geometric mean of its extremes
(:func:`_magnitude`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .operators import (Operator, SelectionOperator, SparseOperator, StackedOperator,
                        all_finite, float_mask, is_expanded_scalar)
from .problem import LinearProgram

__all__ = ["inf_norm", "RowSystem", "build_rows", "equilibrate", "unit_scale"]


@dataclass
class RowSystem:
    """All constraints as rows: ``K x <= k`` on rows with ``eq = False``, ``=`` otherwise."""

    K: Operator
    k: Tensor          # (B, M), +inf on switched-off rows
    eq: Tensor         # (M,) bool
    c: Tensor          # (B, n)
    sizes: tuple       # (m, m_eq, n_lb, n_ub)
    lb_idx: Tensor
    ub_idx: Tensor
    r: Tensor | None = None      # row scaling (B, M); a stride-0 view of 1 if unit_scale
    s: Tensor | None = None      # column scaling (B, n)
    c_scale: Tensor | None = None  # (B, 1)
    k_scale: Tensor | None = None  # (B, 1)
    k_finite: bool | None = None   # every entry of k finite (no switched-off row); None: unknown

    def astype(self, dtype: torch.dtype) -> "RowSystem":
        """The same system in ``dtype`` (the float64 shadow of a float32 solve)."""
        def cast(t):
            return None if t is None else t.to(dtype)
        return RowSystem(self.K.astype(dtype), cast(self.k), self.eq, cast(self.c), self.sizes,
                         self.lb_idx, self.ub_idx, cast(self.r), cast(self.s),
                         cast(self.c_scale), cast(self.k_scale), self.k_finite)

    def all_finite(self) -> bool:
        if self.k_finite is None:
            self.k_finite = all_finite(self.k)
        return self.k_finite


def inf_norm(t: Tensor) -> Tensor:
    """``max |t|`` over the last dimension, without an ``|t|`` temporary (0 when empty)."""
    if not t.shape[-1]:
        return t.new_zeros(t.shape[:-1])
    # amax and amin apart: torch.aminmax is about 15x slower on CPU (torch 2.14, one thread).
    return torch.maximum(t.amin(-1).neg_(), t.amax(-1))


def _finite_columns(bound: Tensor) -> Tensor:
    """The columns with a finite bound in some batch element; a bound that is one number
    (the default ``-inf`` / ``+inf``, a stride-0 view) is looked at once."""
    if is_expanded_scalar(bound):
        n = bound.shape[-1] if all_finite(bound) else 0
        return torch.arange(n, device=bound.device)
    return torch.nonzero(torch.isfinite(bound).any(0)).squeeze(-1)


def build_rows(lp: LinearProgram) -> RowSystem:
    B, n, dt, dev = lp.batch_size, lp.n, lp.dtype, lp.device
    parts, rhs, eq = [], [], []
    if lp.A is not None:
        parts.append(lp.A)
        rhs.append(lp.b)
        eq.append(torch.zeros(lp.m, dtype=torch.bool, device=dev))
    if lp.A_eq is not None:
        parts.append(lp.A_eq)
        rhs.append(lp.b_eq)
        eq.append(torch.ones(lp.m_eq, dtype=torch.bool, device=dev))
    lb_idx, ub_idx = _finite_columns(lp.lb), _finite_columns(lp.ub)
    for idx, sign, vec in ((lb_idx, -1.0, -lp.lb), (ub_idx, 1.0, lp.ub)):
        if idx.numel():
            parts.append(SelectionOperator(idx, n, sign, B, dt, dev))
            rhs.append(vec[:, idx])
            eq.append(torch.zeros(idx.numel(), dtype=torch.bool, device=dev))
    if not parts:  # no constraint at all: one switched-off row keeps shapes uniform
        parts.append(SelectionOperator(torch.zeros(1, dtype=torch.long, device=dev), n, 1.0,
                                       B, dt, dev))
        rhs.append(torch.full((B, 1), math.inf, dtype=dt, device=dev))
        eq.append(torch.zeros(1, dtype=torch.bool, device=dev))
    K = StackedOperator(parts)
    # One block (A x <= b alone): its vectors as they are, no copy of m entries.
    return RowSystem(K, rhs[0] if len(rhs) == 1 else torch.cat(rhs, 1),
                     eq[0] if len(eq) == 1 else torch.cat(eq), lp.c,
                     (lp.m, lp.m_eq, lb_idx.numel(), ub_idx.numel()), lb_idx, ub_idx)


# Ruiz stops once its scaling factors move by less than this between passes: the
# passes left would change the scaling by a few percent, which no solve notices.
_STALL = 1e-2


def _inv_sqrt_(t: Tensor, empty: Tensor | None) -> Tensor:
    """``t^(-1/2)`` in place; 1 on ``empty`` rows or columns (their norm is 0)."""
    if empty is not None:
        t.add_(empty)
    return t.rsqrt_()


def _empty(norms: Tensor) -> Tensor | None:
    """Float indicator of zero norms, or None when there is none (the common case)."""
    e = float_mask(torch.le, norms, 0)
    return e if e.numel() and bool(e.amax() > 0) else None


def _general_rows(K: Operator) -> Operator | None:
    """The rows of ``A`` and ``A_eq`` in ``K`` (the parts before the bound rows), or None."""
    parts = [p for p in getattr(K, "parts", [K]) if not isinstance(p, SelectionOperator)]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else StackedOperator(parts)


#: Geometric scaling: at most this many passes, each stopped once the ratio of the
#: largest to the smallest |a_ij| falls by less than 10% (glpk's ``gm_scaling``).
_GEOM_PASSES = 8
_GEOM_GAIN = 0.9
#: The geometric candidate is tried only when the entries of A and A_eq span more than
#: this ratio; below it Ruiz's passes alone equilibrate well.
_GEOM_RANGE = 1e6


def _log_range(hi: Tensor, lo: Tensor) -> Tensor:
    """``log10(max |a| / min |a|)`` over the nonzeros, per batch element (0 if none)."""
    if not hi.shape[-1]:
        return hi.new_zeros(hi.shape[:-1])
    top = hi.amax(-1)
    return torch.where(top > 0, (top / lo.amin(-1)).log10(), torch.zeros_like(top))


def _geometric_(G: Operator, r: Tensor, s: Tensor) -> None:
    """Geometric scaling in place: rows, then columns, divided by ``sqrt(max |a| min |a|)``
    of their nonzeros, until the ratio of the extreme entries stops falling.

    Ruiz's 2-norm passes balance norms, so a few large entries hide many tiny ones in the
    same row or column; the geometric mean of the extremes shrinks the spread of the
    entries themselves (to a few decades when the spread is a row and a column scaling).
    """
    ratio = None
    for _ in range(_GEOM_PASSES):
        hi, lo = G.abs_extremes(r, s, 0)
        new = _log_range(hi, lo)
        if ratio is not None and bool((new > ratio + math.log10(_GEOM_GAIN)).all()):
            break
        ratio = new
        r.mul_(_inv_sqrt_extremes(hi, lo))
        hi, lo = G.abs_extremes(r, s, 1)
        s.mul_(_inv_sqrt_extremes(hi, lo))


def _inv_sqrt_extremes(hi: Tensor, lo: Tensor) -> Tensor:
    """``1 / sqrt(hi lo)``, 1 where the row or column is empty."""
    empty = hi <= 0
    return torch.where(empty, torch.ones_like(hi), (hi * lo.masked_fill(empty, 1.0)).rsqrt())


def _ruiz_(Q: Operator, r: Tensor, s: Tensor, iters: int) -> None:
    """Ruiz's passes (2-norm) in place on the squared operator ``Q = A∘A``."""
    empty_r, empty_c = _empty(Q.mv(s * s)), _empty(Q.rmv(r * r))
    prev = None
    for _ in range(iters):
        fr = _inv_sqrt_(Q.mv(s * s).clamp_min_(0).sqrt_().mul_(r), empty_r)
        r.mul_(fr)
        fc = _inv_sqrt_(Q.rmv(r * r).clamp_min_(0).sqrt_().mul_(s), empty_c)
        s.mul_(fc)
        # Stop once a pass rescales by factors that no longer change: the passes left
        # would repeat it (Ruiz converges to a fixed pattern of row and column norms).
        if prev is not None:
            moved = torch.maximum(prev[0].sub_(fr).abs_().amax(),
                                  prev[1].sub_(fc).abs_().amax())
            if bool(moved <= _STALL):
                break
        prev = (fr, fc)


def _unit_rows(Q: Operator, s: Tensor) -> Tensor:
    """``r = 1 / ||row of K diag(s)||`` (1 on empty rows), from ``Q = K∘K``."""
    rn = Q.mv(s * s).clamp_min_(0).sqrt_()
    return rn.add_(float_mask(torch.le, rn, 0)).reciprocal_()


def _spread(G: Operator, GQ: Operator, rows: RowSystem, s: Tensor) -> Tensor:
    """How badly scaled the LP is under the column scaling ``s`` with unit rows: the
    decades spanned by the entries of ``A`` and ``A_eq`` (``G``; ``GQ = G∘G``), plus those
    of the costs ``c_j s_j``, plus those of the finite bounds ``bound_j / s_j``, per batch
    element."""
    hi, lo = G.abs_extremes(_unit_rows(GQ, s), s, 0)
    total = _log_range(hi, lo)
    c = (rows.c * s).abs()
    nb = rows.sizes[2] + rows.sizes[3]  # the bound rows come last in K
    bounds = rows.k[:, rows.k.shape[1] - nb:].abs() / torch.cat(
        [s[:, rows.lb_idx], s[:, rows.ub_idx]], 1)
    for t in (c, bounds):
        t = t.masked_fill(~torch.isfinite(t), 0.0)
        total = total + _log_range(t, t.masked_fill(t == 0, float("inf")))
    return total


def column_scaling(rows: RowSystem, iters: int, Q: Operator) -> Tensor:
    """The column scaling ``s`` (B, n) of the rows ``K`` (``Q = K∘K``, formed once by the
    caller): Ruiz's passes (2-norm) on all of ``K``, or, in the batch elements whose
    entries of ``A`` and ``A_eq`` span more than ``_GEOM_RANGE`` (those alone are
    selected for it), geometric passes and then Ruiz's on ``A`` and ``A_eq`` alone if that
    scales the LP better.

    The two candidates fail in opposite cases. Bound rows hold one entry each and are
    brought to unit norm whatever ``s``, so in Ruiz's column norms they pin each column:
    a column whose entries are all 1e-4 keeps norm ~1.4 from its bounds and is never
    rescaled (float32 LPs with rows and columns scaled over 1e-4..1e4 then stall). Left
    out, a column with one tiny entry (``c = (1e12, -1)``, ``A = (1e-9, 1)``) is blown up
    by 1e9 and its cost with it, past what the iterations resolve. The candidate kept is
    the one whose scaled matrix, costs and bounds span the fewest decades together
    (:func:`_spread`). With at most one entry per row, dividing each row by its norm
    already is Ruiz's fixed point: ``s = 1``.
    """
    K, B = rows.K, rows.c.shape[0]
    s = torch.ones(B, K.n, dtype=K.dtype, device=K.device)
    if K.rows_separable:
        return s
    _ruiz_(Q, torch.ones(B, K.m, dtype=K.dtype, device=K.device), s, iters)
    G = _general_rows(K)
    if G is None:
        return s
    hi, lo = G.abs_extremes(torch.ones(B, G.m, dtype=K.dtype, device=K.device),
                            torch.ones_like(s), 0)
    wide = _log_range(hi, lo) > math.log10(_GEOM_RANGE)
    if not bool(wide.any()):
        return s
    idx = None if bool(wide.all()) else torch.nonzero(wide).squeeze(-1)
    if idx is not None:  # the other elements keep Ruiz's scaling: no geometric passes
        G_wide = G.take(idx)
        if G_wide is None:  # an operator that cannot select: the whole batch
            idx = None
        else:
            G = G_wide
            rows = replace(rows, c=_take(rows.c, idx), k=_take(rows.k, idx))
    s_ruiz = s if idx is None else s.index_select(0, idx)
    s_geo = torch.ones_like(s_ruiz)
    ones_r = torch.ones(s_geo.shape[0], G.m, dtype=K.dtype, device=K.device)
    _geometric_(G, ones_r, s_geo)
    GQ = G.squared(cache=False)
    _ruiz_(GQ, ones_r, s_geo, iters)
    better = (_spread(G, GQ, rows, s_geo) < _spread(G, GQ, rows, s_ruiz)).unsqueeze(-1)
    s_geo = torch.where(better, s_geo, s_ruiz)
    return s_geo if idx is None else s.index_copy(0, idx, s_geo)


def _take(t: Tensor, idx: Tensor) -> Tensor:
    """The batch elements ``idx`` of ``t`` (itself when shared by the batch)."""
    return t if t.shape[0] == 1 else t.index_select(0, idx)


def _unit_entries(K: Operator) -> bool:
    """Every row of ``K`` holds at most one entry, and each sparse or bound part of it
    stores +1 only or -1 only (the hinge LPs' ``[-I; -I]``): told by the extremes of the
    stored values, without an m-sized temporary."""
    if not K.rows_separable:
        return False
    for part in getattr(K, "parts", [K]):
        vals = part.vals if isinstance(part, SparseOperator) else \
            part.scale if isinstance(part, SelectionOperator) else None
        if vals is None:
            return False
        if vals.numel():
            hi, lo = float(vals.amax()), float(vals.amin())
            if hi != lo or abs(hi) != 1.0:
                return False
    return True


def unit_scale(t: Tensor) -> bool:
    """``t`` is the stride-0 view of 1 that :func:`equilibrate` gives as the row scaling
    ``r`` of rows already of unit norm: a product or a quotient by it may be skipped."""
    return is_expanded_scalar(t) and float(t.reshape(-1)[0]) == 1.0


def equilibrate(rows: RowSystem, iters: int) -> RowSystem:
    """Return the equilibrated system; ``r, s, c_scale, k_scale`` record the scaling.

    Original and scaled quantities are related by ``x = k_scale * s * x_hat`` and
    ``v = c_scale * r * v_hat``. The column scaling ``s`` comes from
    :func:`column_scaling`; every row of ``K diag(s)`` is then brought to unit 2-norm.
    """
    K, B = rows.K, rows.c.shape[0]
    dt, dev = rows.c.dtype, rows.c.device
    s = torch.ones(B, K.n, dtype=dt, device=dev)
    if iters > 0 and _unit_entries(K):
        # Rows of one entry +-1 (or none) have unit norm already: Ruiz's s = 1 and the
        # unit rows' r = 1, exactly what the passes below compute, without forming Q,
        # r (a stride-0 view of 1, see unit_scale) or a scaled copy of K.
        r, Ks = torch.ones((1, 1), dtype=dt, device=dev).expand(B, K.m), K
    else:
        r = torch.ones(B, K.m, dtype=dt, device=dev)
        if iters > 0:
            Q = K.squared(cache=False)  # formed once: Ruiz's passes and the unit rows
            s = column_scaling(rows, iters, Q)
            r = _unit_rows(Q, s)
            del Q
        Ks = K.scaled(r, s)
    c_hat = s * rows.c
    k_hat = r * rows.k
    # Finite k from its norm: no m-sized mask unless a row is switched off (+inf).
    kmax = inf_norm(k_hat)
    k_finite = bool(torch.isfinite(kmax).all())
    if iters > 0:
        c_scale = _magnitude(c_hat).clamp_min(1e-12)
        if not k_finite:
            kmax = inf_norm(k_hat.masked_fill(~torch.isfinite(k_hat), 0.0))
        k_scale = kmax.unsqueeze(-1).clamp_min(1.0)
    else:
        c_scale = k_scale = torch.ones(B, 1, dtype=dt, device=dev)
    return RowSystem(Ks, k_hat.div_(k_scale), rows.eq, c_hat.div_(c_scale), rows.sizes,
                     rows.lb_idx, rows.ub_idx, r, s, c_scale, k_scale, k_finite)


def _magnitude(c: Tensor) -> Tensor:
    """``sqrt(max |c| min |c|)`` over the nonzeros of each row of ``c``, (B, 1) (0 for a
    row without one): the scale of the objective.

    Dividing by the largest cost instead brings every other cost within ``tol`` of zero
    once the costs span more than ``1/tol``: with ``c = (1e12, -1)`` the second cost
    vanished from the scaled problem, the iterates never felt it and the gap stayed open.
    The geometric mean of the extremes leaves both ends equally far from 1. It is taken
    only where the costs span more than ``COST_SPREAD``: for ordinary costs (Gaussian, say)
    the smallest is an accident of the draw, and scaling by it cost a batch of 128 random
    box LPs (Gaussian costs) 180 Newton steps against 142 with the largest cost; at 1e3
    it takes 164, at 1e4 158 but two LPs of the entry-by-entry spread family of
    ``tests/test_scaling_wide.py`` then end at the iteration limit. (The right-hand side
    keeps its largest entry as scale: tried the same way, the geometric mean lost more
    LPs than it won on the badly scaled families of the tests.)
    """
    a = c.abs()
    hi = a.amax(1, keepdim=True)
    lo = a.amin(1, keepdim=True)
    if not bool((lo > 0).all()):  # some row has a zero cost: the smallest nonzero one
        lo = a.masked_fill_(a == 0, float("inf")).amin(1, keepdim=True)
    return torch.where(hi > COST_SPREAD * lo, (hi * lo).sqrt(), hi)


#: costs spanning more than this ratio are scaled by the geometric mean of their extremes
COST_SPREAD = 1e3
