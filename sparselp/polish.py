r"""Primal and dual from the active set ("polishing").

Once the multipliers identify the active rows ``J = {λ_j > 0}`` (plus the equality rows),
the LP's optimality conditions reduce to two linear least-squares problems:

.. math::

    \min_x \|x - \bar x\|^2 \;\text{s.t.}\; K_J x = k_J,
    \qquad
    \min_{λ_J} \|λ_J - \bar λ_J\|^2 \;\text{s.t.}\; K_J^T λ_J = -c .

Both are solved through the Newton-system interface of :mod:`sparselp.linsolve`
(``K^T diag(w) K + δ I`` with ``w`` the indicator of ``J``) as regularized normal
equations, with a few steps of iterative refinement. The polished pair replaces the ALM
iterate only if its residuals, checked on the unscaled problem, are smaller; it is what
turns the linearly converging outer loop into an exact answer once ``J`` is right
(DESIGN.md: "the primal z comes from the active rows J").
"""
from __future__ import annotations

import torch
from torch import Tensor

from .batching import merge_residuals, take_rows, take_scales, take_system
from .linsolve import HessianStrategy, NewtonSystem
from .mixed import residuals
from .operators import any_true, as_float, float_mask
from .scaling import RowSystem, inf_norm

__all__ = ["polish", "try_polish", "ActiveSystem"]


def _refined_solve(solve, rhs: Tensor, exact_matvec, steps: int = 3) -> Tensor:
    """Solve ``(K_J^T K_J) d = rhs`` via the regularized factor ``solve``, refining on the
    exact one."""
    d = solve(rhs)
    floor = 10 * torch.finfo(rhs.dtype).eps * inf_norm(rhs)
    for _ in range(steps):
        r = rhs - exact_matvec(d)
        if bool((inf_norm(r) <= floor).all()):
            break  # exact up to round-off already (e.g. the diagonal strategy)
        d = d + solve(r)
    return d


def polish(system: RowSystem, strategy: HessianStrategy, x: Tensor, lam: Tensor,
           delta: float = 1e-10):
    """Return ``(x_p, lam_p)`` from the active set of ``lam`` (scaled space)."""
    act = ActiveSystem(system, strategy, x, lam, False, delta)
    return act.primal(x), act.dual(lam)


class ActiveSystem:
    """The factored ``K_J^T K_J + δ I`` of one active set ``J`` and the two least-squares
    steps of :func:`polish` on it (each a refined solve), usable one at a time.

    ``J`` is ``which > 0`` (the multipliers' rows) or, with ``given``, the bool ``which``
    itself; equality rows are always in it and rows with an infinite ``k`` never."""

    def __init__(self, system: RowSystem, strategy: HessianStrategy, x: Tensor,
                 which: Tensor, given: bool, delta: float = 1e-10):
        self.system = system
        K, k, eq = system.K, system.k, system.eq
        all_fin = system.all_finite()
        fin = None if all_fin else torch.isfinite(k)
        self.kf = k if all_fin else torch.where(fin, k, torch.zeros_like(k))
        # The active rows as a 0/1 weight, without bool tensors (slow on CPU,
        # operators.masks): the given ones or lam > 0, or an equality row, and a finite
        # right-hand side.
        w = as_float(which, x.dtype) if given else float_mask(torch.gt, which, 0, x.dtype)
        if any_true(eq):
            torch.maximum(w, as_float(eq, x.dtype), out=w)
        if not all_fin:
            w.mul_(as_float(fin, x.dtype))
        self.w = w
        newton = NewtonSystem(K, w, torch.full_like(x, delta))
        if getattr(strategy, "accepts_gram", False):
            # The dense Gram K_J^T K_J, formed once for the factor, also gives the exact
            # products of the refinement: n^2 per product instead of two passes over K.
            G = K.gram(w)
            self.solve = strategy.factor(newton, gram=G)

            def gram(v):
                return torch.bmm(G, v.unsqueeze(-1)).squeeze(-1)
        else:
            self.solve = strategy.factor(newton)  # once, for the primal and the dual

            def gram(v):  # K_J^T K_J v, without the regularisation
                return K.rmv(K.mv(v).mul_(w))
        self.gram = gram

    def primal(self, x: Tensor) -> Tensor:
        """``x + d``, ``d`` the least-squares correction with ``K_J (x + d) = k_J``."""
        K = self.system.K
        r = (self.kf - K.mv(x)).mul_(self.w)
        return x + _refined_solve(self.solve, K.rmv(r), self.gram)

    def dual(self, lam: Tensor) -> Tensor:
        """``lam_J + w K z`` with ``K_J^T (lam + w K z) = -c``, i.e.
        ``(K_J^T K_J) z = -c - K^T lam``; inequality rows clamped to ``>= 0``."""
        K, eq, w = self.system.K, self.system.eq, self.w
        g = (self.system.c + K.rmv(w * lam)).neg_()
        z = _refined_solve(self.solve, g, self.gram)
        lam_p = K.mv(z).add_(lam).mul_(w)
        return torch.where(eq, lam_p, lam_p.clamp_min(0)) if bool(eq.any()) \
            else lam_p.clamp_min_(0)


def try_polish(su, x, lam, res, candidates, polished):
    """The active-set polish inside the solver's outer step (``su`` its
    :class:`~sparselp.solver.SolverSetup`) of the elements ``candidates`` (B,) bool.

    The polish's Newton systems and residuals are formed for the candidates only where
    the rows allow selecting them (:mod:`sparselp.batching`), and the polished pair is
    kept per element only where it lowers the residuals (which are per element, so the
    kept ones are merged, not measured again). Returns ``(x, lam, res, polished)``.
    """
    idx = torch.nonzero(candidates).squeeze(-1)
    shadow = su.shadow is not None and su.strategy.exact  # in float64, then rounded
    parts = [su.system, su.scales, su.shadow, su.shadow_scales]
    if idx.numel() < candidates.numel():
        sub = take_system(su.system, idx)
        if sub is None:  # rows that cannot be selected: polish the whole batch
            idx = torch.arange(candidates.numel(), device=idx.device)
        else:
            parts = [sub, take_scales(su.scales, idx)] + (
                [None, None] if su.shadow is None else
                [take_system(su.shadow, idx), take_scales(su.shadow_scales, idx)])
    xs, ls = take_rows(x, idx), take_rows(lam, idx)
    try:
        if shadow:
            xp, lp = polish(parts[2], su.strategy, xs.double(), ls.double())
            xp, lp = xp.to(x.dtype), lp.to(x.dtype)
        else:
            xp, lp = polish(parts[0], su.strategy, xs, ls)
    except (RuntimeError, ValueError):  # singular active-set system: keep the iterate
        return x, lam, res, polished
    res_pol = residuals(*parts, xp, lp)
    better = (res_pol.worst < res.worst[idx]) & candidates[idx] & torch.isfinite(res_pol.worst)
    if not bool(better.any()):
        return x, lam, res, polished
    keep = torch.nonzero(better).squeeze(-1)
    rows = idx.index_select(0, keep)
    polished = polished.index_fill(0, rows, True)
    return (x.index_copy(0, rows, xp.index_select(0, keep)),
            lam.index_copy(0, rows, lp.index_select(0, keep)),
            merge_residuals(res, rows, res_pol, keep), polished)
