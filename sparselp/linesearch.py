r"""Step sizes along a Newton direction of the piecewise quadratic

.. math::

    \phi(x) = c^T x + \frac{1}{2\sigma}\|\Pi(u(x))\|^2 + \frac{1}{2\tau}\|x - x_k\|^2,
    \qquad u(x) = \lambda + \sigma (K x - k).

Along ``x + t d`` the argument is affine, ``u(t) = u + t s`` with ``s = σ K d``, so
``φ'(t) = c^T d + (x - x_k + t d)^T d / τ + Π(u + t s)^T s / σ`` is a nondecreasing
piecewise-linear function of ``t`` that costs O(m) to evaluate, without any product with
``K``. ``exact`` finds its root by safeguarded Newton/bisection (the exact minimiser along
``d``); ``armijo`` is the classical backtracking on ``φ`` (Mangasarian 2004). Both are
batched: every batch element gets its own step.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["exact_step", "armijo_step"]


def _proj(u: Tensor, eq: Tensor) -> Tensor:
    return torch.where(eq, u, u.clamp_min(0))


def exact_step(u: Tensor, s: Tensor, eq: Tensor, lin0: Tensor, lin1: Tensor, sigma: Tensor,
               todo: Tensor, iters: int = 60) -> Tensor:
    """Root ``t >= 0`` of ``φ'(t) = lin0 + t lin1 + Π(u + t s)^T s / σ`` per batch element.

    ``lin0 = c^T d + (x - x_k)^T d / τ`` (< 0 for a descent direction), ``lin1 = d^T d / τ``.
    Returns ``t`` of shape (B,); zero where ``todo`` is False.
    """
    inv_sigma = 1.0 / sigma.squeeze(-1)
    s_fin = torch.where(torch.isfinite(u), s, torch.zeros_like(s))

    def dphi(t):
        p = _proj(u + t.unsqueeze(-1) * s, eq)
        return lin0 + t * lin1 + (p * s_fin).sum(-1) * inv_sigma

    def ddphi(t):
        act = eq | (u + t.unsqueeze(-1) * s > 0)
        return lin1 + (torch.where(act, s_fin * s_fin, torch.zeros_like(s))).sum(-1) * inv_sigma

    lo = torch.zeros_like(lin0)
    hi = torch.ones_like(lin0)
    d_hi = dphi(hi)
    # Bracket the root: double hi while phi is still decreasing there.
    for _ in range(60):
        grow = (d_hi < 0) & todo
        if not bool(grow.any()):
            break
        lo = torch.where(grow, hi, lo)
        hi = torch.where(grow, 2 * hi, hi)
        d_hi = torch.where(grow, dphi(hi), d_hi)
    scale = lin0.abs().clamp_min(torch.finfo(lin0.dtype).tiny)
    t = hi.clone()
    d_t = d_hi
    for _ in range(iters):
        conv = (d_t.abs() <= 1e-13 * scale) | ((hi - lo) <= 1e-15 * hi) | ~todo
        if bool(conv.all()):
            break
        # Newton on the piecewise-linear derivative from the current point, kept in bracket.
        curv = ddphi(t)
        t_new = t - d_t / curv.clamp_min(torch.finfo(t.dtype).tiny)
        inside = (t_new > lo) & (t_new < hi) & (curv > 0)
        t_new = torch.where(inside, t_new, 0.5 * (lo + hi))
        t_new = torch.where(conv, t, t_new)
        d_new = dphi(t_new)
        lo = torch.where(~conv & (d_new < 0), t_new, lo)
        hi = torch.where(~conv & (d_new >= 0), t_new, hi)
        t, d_t = t_new, torch.where(conv, d_t, d_new)
    # A root must leave phi'(t) >= 0 or near zero; the bracket's upper end guarantees it.
    t = torch.where(d_t > 1e-13 * scale, torch.where(d_t.abs() <= 1e-13 * scale, t, hi), t)
    return torch.where(todo, t, torch.zeros_like(t))


def armijo_step(phi, x: Tensor, d: Tensor, val: Tensor, slope: Tensor, todo: Tensor,
                c1: float, max_halvings: int = 40):
    """Backtracking ``t = 1, 1/2, ...`` until ``φ(x + t d) <= φ(x) + c1 t slope``.

    Returns ``(t, accepted)``; ``t`` is zero where ``todo`` is False or nothing was accepted.
    """
    t = torch.ones_like(val)
    accepted = ~todo
    best = torch.zeros_like(val)
    for _ in range(max_halvings):
        vt = phi(x + t.unsqueeze(-1) * d)
        ok = (vt <= val + c1 * t * slope + 1e-14 * val.abs()) & ~accepted
        best = torch.where(ok, t, best)
        accepted = accepted | ok
        if bool(accepted.all()):
            break
        t = torch.where(accepted, t, 0.5 * t)
    return torch.where(todo, best, torch.zeros_like(best)), accepted
