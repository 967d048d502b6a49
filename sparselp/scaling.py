r"""Stacking all constraints into one row operator, and equilibrating it.

The solver sees one operator ``K = [A; A_eq; -I_L; I_U]`` (bound rows only for the
variables with a finite bound in some batch element) with right-hand side
``k = [b; b_eq; -lb_L; ub_U]``; rows with an infinite right-hand side are switched off by
the arithmetic itself (``(u)_+ = 0`` for ``u = -inf``). ``eq`` marks the equality rows.

Equilibration (Ruiz 2001, with 2-norms) finds ``r`` and ``s`` so that
``diag(r) K diag(s)`` has rows and columns of comparable norm; the rows are then brought
to unit norm, as the Newton step is most reliable on a row-normalized problem
(DESIGN.md). Objective and right-hand side are divided by their largest entries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .operators import Operator, SelectionOperator, StackedOperator
from .problem import LinearProgram

__all__ = ["inf_norm", "RowSystem", "build_rows", "equilibrate"]


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
    r: Tensor | None = None      # row scaling (B, M)
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
            self.k_finite = bool(torch.isfinite(self.k).all())
        return self.k_finite


def inf_norm(t: Tensor) -> Tensor:
    """``max |t|`` over the last dimension, without an ``|t|`` temporary (0 when empty)."""
    if not t.shape[-1]:
        return t.new_zeros(t.shape[:-1])
    # amax and amin apart: torch.aminmax is about 15x slower on CPU (torch 2.14, one thread).
    return torch.maximum(t.amin(-1).neg_(), t.amax(-1))


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
    lb_idx = torch.nonzero(torch.isfinite(lp.lb).any(0)).squeeze(-1)
    ub_idx = torch.nonzero(torch.isfinite(lp.ub).any(0)).squeeze(-1)
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
    e = norms <= 0
    return e.to(norms.dtype) if bool(e.any()) else None


def equilibrate(rows: RowSystem, iters: int) -> RowSystem:
    """Return the equilibrated system; ``r, s, c_scale, k_scale`` record the scaling.

    Original and scaled quantities are related by ``x = k_scale * s * x_hat`` and
    ``v = c_scale * r * v_hat``. Ruiz's passes (2-norm) run in place: with millions of
    rows every fresh vector costs page faults as well as bandwidth.
    """
    K, B = rows.K, rows.c.shape[0]
    dt, dev = rows.c.dtype, rows.c.device
    r = torch.ones(B, K.m, dtype=dt, device=dev)
    s = torch.ones(B, K.n, dtype=dt, device=dev)
    if iters > 0:
        Q = K.squared(cache=False)  # formed once: every pass needs products with A∘A
        empty_r, empty_c = _empty(Q.mv(s)), _empty(Q.rmv(r))
        prev = None
        # With at most one entry per row, dividing each row by its norm already is Ruiz's
        # fixed point (every entry becomes +-1; a column pass would only be undone by the
        # next row pass), so the passes are skipped.
        passes = 0 if K.rows_separable else iters
        for _ in range(passes):
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
        del prev
        # Unit row norms at the end: r /= ||row||.
        rn = Q.mv(s * s).clamp_min_(0).sqrt_().mul_(r)
        if empty_r is not None:
            rn.add_(empty_r)
        r.div_(rn)
        del Q, rn
    Ks = K.scaled(r, s)
    c_hat = s * rows.c
    k_hat = r * rows.k
    c_scale = c_hat.abs().amax(1, keepdim=True).clamp_min(1e-12) if iters > 0 else \
        torch.ones(B, 1, dtype=dt, device=dev)
    kmax = torch.maximum(k_hat.amin(1, keepdim=True).neg_(), k_hat.amax(1, keepdim=True))
    k_finite = bool(torch.isfinite(kmax).all())
    if iters > 0:
        if not k_finite:  # switched-off rows hold +inf
            fin = torch.isfinite(k_hat)
            kmax = torch.where(fin, k_hat.abs(), torch.zeros_like(k_hat)).amax(1, keepdim=True)
        k_scale = kmax.clamp_min(1.0)
    else:
        k_scale = torch.ones(B, 1, dtype=dt, device=dev)
    return RowSystem(Ks, k_hat.div_(k_scale), rows.eq, c_hat.div_(c_scale), rows.sizes,
                     rows.lb_idx, rows.ub_idx, r, s, c_scale, k_scale, k_finite)
