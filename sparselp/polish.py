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

from .linsolve import HessianStrategy, NewtonSystem
from .scaling import RowSystem, inf_norm

__all__ = ["polish"]


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
    K, k, eq = system.K, system.k, system.eq
    all_fin = system.all_finite()
    fin = None if all_fin else torch.isfinite(k)
    kf = k if all_fin else torch.where(fin, k, torch.zeros_like(k))
    J = lam > 0
    if bool(eq.any()):
        J |= eq
    if not all_fin:
        J &= fin
    w = J.to(x.dtype)
    del J
    shift = torch.full_like(x, delta)
    solve = strategy.factor(NewtonSystem(K, w, shift))  # once, for the primal and the dual

    def gram(v):  # K_J^T K_J v, without the regularisation
        return K.rmv(K.mv(v).mul_(w))

    # Primal: least-squares correction d of x so that K_J (x + d) = k_J.
    r = (kf - K.mv(x)).mul_(w)
    d = _refined_solve(solve, K.rmv(r), gram)
    del r
    x_p = x + d
    del d
    # Dual: lam_J + w * K z with K_J^T (lam + w K z) = -c, i.e. (K_J^T K_J) z = -c - K^T lam.
    g = (system.c + K.rmv(w * lam)).neg_()
    z = _refined_solve(solve, g, gram)
    lam_p = K.mv(z).add_(lam).mul_(w)
    lam_p = torch.where(eq, lam_p, lam_p.clamp_min(0)) if bool(eq.any()) else lam_p.clamp_min_(0)
    return x_p, lam_p
