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

import math

import torch
from torch import Tensor

__all__ = ["exact_step", "armijo_step", "separable_step"]


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
    s_sq = s_fin * s_fin
    # Tolerances relative to the precision: float32 cannot resolve 1e-13.
    eps = torch.finfo(lin0.dtype).eps
    dtol, ttol = 500 * eps, 4 * eps

    def both(t):
        """phi'(t) and the (right) slope phi''(t) from one pass over the rows."""
        v = u + t.unsqueeze(-1) * s
        act = eq | (v > 0)
        p = torch.where(act, v, torch.zeros_like(v))
        d = lin0 + t * lin1 + (p * s_fin).sum(-1) * inv_sigma
        c = lin1 + torch.where(act, s_sq, torch.zeros_like(s_sq)).sum(-1) * inv_sigma
        return d, c

    lo = torch.zeros_like(lin0)
    hi = torch.ones_like(lin0)
    d_hi, c_hi = both(hi)
    # Bracket the root: double hi while phi is still decreasing there.
    for _ in range(60):
        grow = (d_hi < 0) & todo
        if not bool(grow.any()):
            break
        lo = torch.where(grow, hi, lo)
        hi = torch.where(grow, 2 * hi, hi)
        d_new, c_new = both(hi)
        d_hi, c_hi = torch.where(grow, d_new, d_hi), torch.where(grow, c_new, c_hi)
    scale = lin0.abs().clamp_min(torch.finfo(lin0.dtype).tiny)
    t, d_t, curv = hi.clone(), d_hi, c_hi
    for _ in range(iters):
        conv = (d_t.abs() <= dtol * scale) | ((hi - lo) <= ttol * hi) | ~todo
        if bool(conv.all()):
            break
        # Newton on the piecewise-linear derivative from the current point, kept in bracket.
        t_new = t - d_t / curv.clamp_min(torch.finfo(t.dtype).tiny)
        inside = (t_new > lo) & (t_new < hi) & (curv > 0)
        t_new = torch.where(inside, t_new, 0.5 * (lo + hi))
        t_new = torch.where(conv, t, t_new)
        d_new, c_new = both(t_new)
        lo = torch.where(~conv & (d_new < 0), t_new, lo)
        hi = torch.where(~conv & (d_new >= 0), t_new, hi)
        t = t_new
        d_t = torch.where(conv, d_t, d_new)
        curv = torch.where(conv, curv, c_new)
    # Where no near-root was found, the bracket's upper end (phi'(hi) >= 0) is the answer.
    t = torch.where(d_t.abs() <= dtol * scale, t, torch.where(d_t > 0, hi, t))
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


def separable_step(K, u: Tensor, sigma: Tensor, eq: Tensor, d: Tensor, g: Tensor,
                   lin0: Tensor, lin1: Tensor, todo: Tensor, iters: int = 60):
    r"""One exact step per coordinate when every row of ``K`` touches one column.

    Then ``φ`` is a sum of one-dimensional piecewise quadratics,
    ``φ(x) = Σ_j φ_j(x_j)``, and each coordinate gets its own exact minimiser along
    ``d_j``: the root ``t_j >= 0`` of the nondecreasing piecewise-linear

    .. math::

        φ_j'(t) = \mathrm{lin0}_j + t\,\mathrm{lin1}_j + d_j \,[K^T Π(u + σ K (t ∘ d))]_j .

    Because a one-dimensional exact line search is an exact minimisation, one Newton
    direction followed by this step minimises ``φ`` outright, whatever ``σ``. All
    coordinates are searched at once, each in its own bracket ``[lo, hi]``: Newton from
    the newest point, else Newton from the other end of the bracket (the root lies on the
    linear piece of one of the two ends once the bracket is tight), else false position,
    else bisection. An evaluation costs three products with ``K``; nothing of size
    ``m x n`` is formed.

    ``g`` is the gradient of ``φ`` at the current point (so ``φ_j'(0) = g_j d_j``),
    ``lin0 = c ∘ d + (x - x_k) ∘ d / τ`` and ``lin1 = d ∘ d / τ``, all (B, n).
    Returns ``(t, v)``: ``t`` (B, n), zero where ``todo`` is False, and
    ``v = u + σ K (t ∘ d)``, the argument of ``Π`` at the new point.
    """
    eps = torch.finfo(lin0.dtype).eps
    dtol, ttol = 500 * eps, 4 * eps
    tiny = torch.finfo(lin0.dtype).tiny
    live = todo.unsqueeze(-1) & (d != 0)
    Q = K.squared()  # the curvature needs A∘A; formed once per step

    def both(t):
        v = u + sigma * K.mv(t * d)
        act = eq | (v > 0)
        p = torch.where(act, v, torch.zeros_like(v))
        deriv = lin0 + t * lin1 + d * K.rmv(p)
        curv = lin1 + sigma * d * d * Q.rmv(act.to(d.dtype))
        return deriv, curv, v

    def newton_from(t0, d0, c0):
        return t0 - d0 / c0.clamp_min(tiny)

    scale = lin0.abs().clamp_min(tiny)
    # The lower end t = 0: phi'(0) = g d < 0, and Newton from it is the full step t = 1.
    lo, d_lo = torch.zeros_like(lin0), g * d
    c_lo = -d_lo
    hi = torch.full_like(lin0, math.inf)
    d_hi, c_hi = torch.zeros_like(lin0), torch.zeros_like(lin0)
    t = torch.where(live, torch.ones_like(lin0), torch.zeros_like(lin0))
    deriv, curv, v = both(t)
    for _ in range(iters):
        conv = ~live | (deriv.abs() <= dtol * scale) \
            | (torch.isfinite(hi) & ((hi - lo) <= ttol * hi))
        if bool(conv.all()):
            break
        below = ~conv & (deriv < 0)
        above = ~conv & (deriv >= 0)
        lo, d_lo, c_lo = (torch.where(below, a, b) for a, b in
                          ((t, lo), (deriv, d_lo), (curv, c_lo)))
        hi, d_hi, c_hi = (torch.where(above, a, b) for a, b in
                          ((t, hi), (deriv, d_hi), (curv, c_hi)))

        def inside(z):
            return (z > lo) & (z < hi)
        t_new = newton_from(t, deriv, curv)
        other = torch.where(below, newton_from(hi, d_hi, c_hi), newton_from(lo, d_lo, c_lo))
        t_new = torch.where(inside(t_new), t_new, other)
        false_pos = lo - d_lo * (hi - lo) / (d_hi - d_lo).clamp_min(tiny)
        t_new = torch.where(inside(t_new), t_new, false_pos)
        fallback = torch.where(torch.isinf(hi), 2 * lo.clamp_min(0.5), 0.5 * (lo + hi))
        t_new = torch.where(inside(t_new), t_new, fallback)
        t = torch.where(conv, t, t_new)
        d_new, c_new, v = both(t)
        deriv = torch.where(conv, deriv, d_new)
        curv = torch.where(conv, curv, c_new)
    t = torch.where(live, t, torch.zeros_like(t))
    return t, v
