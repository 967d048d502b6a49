r"""Step sizes along a Newton direction of the piecewise quadratic

.. math::

    \phi(x) = c^T x + \frac{1}{2\sigma}\|\Pi(u(x))\|^2 + \frac{1}{2\tau}\|x - x_k\|^2,
    \qquad u(x) = \lambda + \sigma (K x - k).

Along ``x + t d`` the argument is affine, ``u(t) = u + t s`` with ``s = σ K d``, so
``φ'(t) = c^T d + (x - x_k + t d)^T d / τ + Π(u + t s)^T s / σ`` is a nondecreasing
piecewise-linear function of ``t`` that costs O(m) to evaluate, without any product with
``K``. ``exact`` finds its root by safeguarded Newton/bisection (the exact minimiser along
``d``); ``armijo`` is the classical backtracking on ``φ`` (Mangasarian 2004). Both are
batched: every batch element gets its own step. ``separable_step`` is the exact search
with one step per coordinate, for matrices whose rows each touch one column (then ``φ``
is a sum of one-dimensional functions and the search minimises it outright).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .breakpoints import MAX_ROWS, breakpoint_step, numpy_step, searched_in_numpy
from .operators import any_neginf, any_true, as_float, finite_rows, float_mask
from .scaling import inf_norm

__all__ = ["exact_step", "armijo_step", "separable_step", "RowKinds", "Step", "LineSearch",
           "ExactLineSearch", "SeparableLineSearch", "ArmijoLineSearch", "make_line_search"]


def _proj(u: Tensor, eq: Tensor) -> Tensor:
    return torch.where(eq, u, u.clamp_min(0))


class RowKinds:
    """Projection ``Π`` and active-row indicator for rows that are ``<=`` or ``=``.

    Both are written without ``torch.where``, which on CPU costs ten times an
    elementwise product; with no equality row ``Π`` is a plain ``clamp_min(0)``.
    """

    def __init__(self, eq: Tensor, dtype):
        self.has_eq = any_true(eq)
        self.eqf = self.floor = None
        if self.has_eq:
            self.eqf = eq.to(dtype)
            self.floor = torch.zeros_like(self.eqf).masked_fill(eq, -math.inf)

    def proj(self, u: Tensor) -> Tensor:
        return torch.maximum(u, self.floor) if self.has_eq else u.clamp_min(0)

    def active(self, p: Tensor, inplace: bool = False) -> Tensor:
        """1 where the row is in the generalized Hessian: ``Π(u) > 0``, or an equality.

        ``p = Π(u)`` is overwritten when ``inplace``.
        """
        a = p.sign_() if inplace else torch.sign(p)
        if not self.has_eq:
            return a
        return torch.maximum(a, self.eqf, out=a) if inplace else torch.maximum(a, self.eqf)


# Just over 60 lines: the bracketing and the safeguarded Newton iteration share the
# bracket and one evaluation function; apart, each would carry all of it.
def exact_step(u: Tensor, s: Tensor, eq: Tensor, lin0: Tensor, lin1: Tensor, sigma: Tensor,
               todo: Tensor, iters: int = 60) -> Tensor:
    """Root ``t >= 0`` of ``φ'(t) = lin0 + t lin1 + Π(u + t s)^T s / σ`` per batch element.

    ``lin0 = c^T d + (x - x_k)^T d / τ`` (< 0 for a descent direction), ``lin1 = d^T d / τ``.
    Returns ``t`` of shape (B,); zero where ``todo`` is False. ``iters`` bounds the
    bracket doublings and the refinement steps, each.
    """
    inv_sigma = 1.0 / sigma.squeeze(-1)
    fin = torch.isfinite(u)
    s_fin = s if bool(fin.all()) else torch.where(fin, s, torch.zeros_like(s))
    s_sq = s_fin * s_fin
    # Tolerances relative to the precision: float32 cannot resolve 1e-13.
    eps = torch.finfo(lin0.dtype).eps
    dtol, ttol = 500 * eps, 4 * eps
    # Rows are active where v > floor: 0 on inequality rows, -inf on equality rows (always
    # active); no torch.where, which costs ten times a clamp on CPU, and dot products by
    # vecdot (a third of a product and a sum). Switched-off rows (u = -inf) stay at 0.
    floor = torch.zeros(u.shape[-1], dtype=u.dtype, device=u.device).masked_fill_(eq, -math.inf) \
        if bool(eq.any()) else None

    def both(t):
        """phi'(t) and the (right) slope phi''(t) from one pass over the rows."""
        v = torch.addcmul(u, t.unsqueeze(-1), s)
        if floor is None:
            p = v.clamp_min_(0)
            act = torch.sign(p)
        else:
            act, p = (v > floor).to(v.dtype), torch.maximum(v, floor, out=v)
        d = lin0 + t * lin1 + torch.linalg.vecdot(p, s_fin) * inv_sigma
        c = lin1 + torch.linalg.vecdot(act, s_sq) * inv_sigma
        return d, c

    lo = torch.zeros_like(lin0)
    hi = torch.ones_like(lin0)
    d_hi, c_hi = both(hi)
    # Bracket the root: double hi while phi is still decreasing there.
    for _ in range(iters):
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


# Over 60 lines on purpose: one loop of in-place updates that holds two m-vectors at a
# time (the memory of a 1e7-pair solve); split into functions, more would stay alive.
def separable_step(K, u: Tensor, sigma: Tensor, rows: "RowKinds", d: Tensor, gd: Tensor,
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
    linear piece of one of the two ends once the bracket is tight), else false position
    clamped to the representable numbers strictly inside the bracket (a root within one
    rounding of an end then closes the bracket at once), or doubling while no upper end
    is known. An evaluation costs three products with ``K``; nothing of size ``m x n`` is
    formed.

    ``rows`` describes the row kinds (:class:`RowKinds`); ``gd = g ∘ d`` with ``g`` the
    gradient of ``φ`` at the current point (``φ_j'(0)``), ``lin0 = c ∘ d + (x - x_k) ∘ d / τ``
    and ``lin1 = d ∘ d / τ``, all (B, n). Returns ``(t, v)``: ``t`` (B, n), zero where
    ``todo`` is False, and ``v = u + σ K (t ∘ d)``, the argument of ``Π`` at the new point.
    """
    eps = torch.finfo(lin0.dtype).eps
    dtol, ttol = 500 * eps, 4 * eps
    tiny = torch.finfo(lin0.dtype).tiny
    f = lin0.dtype
    # Masks are 0/1 tensors of dtype f, combined by products and maxima: torch's bool
    # comparisons and conversions cost several times these on CPU (operators.masks).
    live = float_mask(torch.ne, d, 0).mul_(as_float(todo, f).unsqueeze(-1))
    # Switched-off rows (k = +inf) have u = -inf and never turn active.
    u0 = torch.nan_to_num(u, neginf=0.0) if any_neginf(u) else u

    # The vectors here have m or n entries, m and n in the millions: every operation
    # below works in place where it can, so that a step holds two m-vectors at a time.
    def piece(t):
        """The linear piece of phi' through t: phi'(t') = a0 + t' curv on it.

        Its intercept a0 comes from the rows' values at t = 0, so the root -a0 / curv
        carries no cancellation against t (roots near 1e-10 t are common when a
        column starts with no active row and the Newton step overshoots).
        """
        v = K.mv(t * d).mul_(sigma).add_(u)
        act = rows.active(rows.proj(v), inplace=True)
        curv = K.sq_rmv(act).mul_(d).mul_(d).mul_(sigma).add_(lin1)
        a0 = K.rmv(act.mul_(u0)).mul_(d).add_(lin0)
        return a0, curv, v

    def root(a0, c):
        r = a0 / c.clamp_min(tiny)
        return torch.nan_to_num(r.neg_(), nan=-1.0, posinf=-1.0, neginf=-1.0)

    # The lower end t = 0: phi'(0) = g d < 0, and Newton from it is the full step t = 1.
    lo, a_lo = torch.zeros_like(lin0), gd
    c_lo = -a_lo
    # The upper end is unknown (+inf) until phi' >= 0 is seen; its entries are finite
    # placeholders while known_hi is 0. Brackets are updated by lerp_ with 0/1 weights,
    # an in-place where() that costs a tenth of it on CPU.
    hi, a_hi, c_hi = torch.ones_like(lin0), torch.zeros_like(lin0), torch.ones_like(lin0)
    known_hi = torch.zeros_like(live)
    t = live.clone()
    a0, curv, v = piece(t)
    for _ in range(iters):
        deriv = (t * curv).add_(a0)
        conv = float_mask(torch.le, deriv.abs(), lin0.abs().clamp_min_(tiny).mul_(dtol))
        torch.maximum(conv, 1.0 - live, out=conv)
        torch.maximum(conv, float_mask(torch.le, hi - lo, ttol * hi).mul_(known_hi), out=conv)
        # The root of t's own piece is within rounding of t: t is the root up to rounding
        # (a root one ulp past a kink would otherwise need a bracket first).
        torch.maximum(conv, float_mask(torch.le, (a0 / curv.clamp_min(tiny)).add_(t).abs_(),
                                       ttol * t), out=conv)
        if bool(conv.amin() > 0):
            break
        open_ = conv.neg_().add_(1.0)
        del conv
        below = float_mask(torch.lt, deriv, 0).mul_(open_)
        del deriv
        above = open_ - below
        lo.lerp_(t, below)
        a_lo.lerp_(a0, below)
        c_lo.lerp_(curv, below)
        hi.lerp_(t, above)
        a_hi.lerp_(a0, above)
        c_hi.lerp_(curv, above)
        torch.maximum(known_hi, above, out=known_hi)  # above is 0 or 1
        del above
        kh = known_hi

        def outside(z):
            inside = float_mask(torch.lt, z, hi)
            torch.maximum(inside, 1.0 - kh, out=inside)
            return inside.mul_(float_mask(torch.gt, z, lo)).neg_().add_(1.0)
        # Newton from the newest point, else from the other end of the bracket.
        t_new = root(a0, curv)
        cand = root(a_lo, c_lo).lerp_(root(a_hi, c_hi), below)
        t_new.lerp_(cand, outside(t_new))
        del cand
        # False position, kept on representable numbers strictly inside [lo, hi]; while
        # no upper end is known, doubling.
        d_lo, d_hi = (lo * c_lo).add_(a_lo), (hi * c_hi).add_(a_hi)
        fp = (hi - lo).mul_(d_lo).div_(d_hi.sub_(d_lo).clamp_min_(tiny)).neg_().add_(lo)
        del d_lo, d_hi
        torch.maximum(fp, torch.nextafter(lo, hi), out=fp)
        torch.minimum(fp, torch.nextafter(hi, lo), out=fp)
        torch.nan_to_num(fp, nan=0.0, posinf=0.0, neginf=0.0, out=fp)
        fp = lo.clamp_min(0.5).mul_(2).lerp_(fp, known_hi)
        t_new.lerp_(fp, outside(t_new))
        del fp
        t.lerp_(t_new, open_)
        del t_new, below
        a_new, c_new, v = piece(t)
        a0.lerp_(a_new, open_)
        curv.lerp_(c_new, open_)
        del a_new, c_new, open_
    return t.mul_(live), v


# ---------------------------------------------------------------------------------------
# The three searches behind one interface, chosen once per solve (make_line_search).

class Step(NamedTuple):
    """The result of one line search: the new point and what the Newton loop needs."""

    x: Tensor          # (B, n) new iterate
    u: Tensor          # (B, M) argument of the projection at the new iterate
    accepted: Tensor   # (B,) bool: a finite step was found
    stalled: bool      # no element moved beyond round-off: the gradient is at its floor


class LineSearch:
    """A step along a Newton direction ``d`` of a subproblem (:class:`sparselp.newton.Subproblem`).

    ``step(sub, x, u, d, gd, todo)``: ``u`` is the projection's argument at ``x``,
    ``gd = g ∘ d`` with ``g`` the gradient of ``φ`` at ``x`` (the caller hands it over and
    may not use it again: a search is free to overwrite it), ``todo`` (B,) the elements
    that move.
    """

    def step(self, sub, x: Tensor, u: Tensor, d: Tensor, gd: Tensor, todo: Tensor,
             late: bool = False) -> Step:
        """``late``: the inner loop has run ``newton.ROUNDOFF_AFTER`` steps already (a
        search may then also call a step below round-off stalled)."""
        raise NotImplementedError


class ExactLineSearch(LineSearch):
    """The exact minimiser of ``φ`` along ``d``, one ``t`` per element: by sorting the
    breakpoints for a small batch (:func:`sparselp.breakpoints.breakpoint_step`; in numpy
    for a few float64 LPs on CPU, :func:`~sparselp.breakpoints.numpy_step`), else by
    :func:`exact_step`."""

    def __init__(self, iters: int = 60):
        self.iters = iters

    def step(self, sub, x, u, d, gd, todo, late=False):
        if x.dtype == torch.float64 and searched_in_numpy(u):
            return Step(*numpy_step(sub, x, u, d, todo))
        s = sub.sigma * sub.system.K.mv(d)
        lin0, lin1 = (sub.system.c * d).sum(-1), torch.zeros_like(x[:, 0])
        if sub.proximal:
            tau = sub.tau.squeeze(-1)
            lin0, lin1 = lin0 + ((x - sub.center) * d).sum(-1) / tau, (d * d).sum(-1) / tau
        if u.numel() <= MAX_ROWS:  # small: sort the breakpoints, no iteration
            t = breakpoint_step(u, s, sub.system.eq, lin0, lin1, sub.sigma, todo)
        else:
            t = exact_step(u, s, sub.system.eq, lin0, lin1, sub.sigma, todo, self.iters)
        accepted = torch.isfinite(t)
        t = torch.where(accepted, t, torch.zeros_like(t))
        # A step that no longer moves x (the exact minimiser along d is at round-off
        # distance) means the gradient is at its precision floor: a float32 solve of a
        # coupled LP otherwise spends max_inner steps there every outer step. Late in a long
        # float32 inner loop, so does a step that lowers phi by no more than its round-off
        # (measured: 60 steps circling at 3e-4..3e-3 against an inner tolerance of 3e-4,
        # precision at recall, 4,096 scores; tested from the first step, the rule also cut
        # short inner loops still making progress, at 65,536 scores).
        eps, move = torch.finfo(x.dtype).eps, t.unsqueeze(-1) * d
        moved = inf_norm(move) > 8 * eps * (1 + inf_norm(x))
        if late and x.dtype != torch.float64:
            moved &= -0.5 * t * gd.sum(-1) > 4 * eps * _phi_size(sub, x, u)
        x, u = x + move, u + t.unsqueeze(-1) * s
        return Step(x, u, accepted, not bool((moved & todo).any()))


def _phi_size(sub, x: Tensor, u: Tensor) -> Tensor:
    """The size of the terms of ``φ`` at ``x`` (B,): the scale of its round-off."""
    p = sub.rows.proj(u)
    size = (sub.system.c * x).abs_().sum(-1) + (p * p).sum(-1) / (2 * sub.sigma.squeeze(-1))
    if sub.proximal:
        size = size + ((x - sub.center) ** 2).sum(-1) / (2 * sub.tau.squeeze(-1))
    return size


class SeparableLineSearch(LineSearch):
    """One exact step per coordinate (:func:`separable_step`), for matrices whose rows each
    touch one column: ``φ`` splits per coordinate, so one step minimises it outright."""

    def __init__(self, iters: int = 60):
        self.iters = iters

    def step(self, sub, x, u, d, gd, todo, late=False):
        lin0 = sub.system.c * d
        lin1 = torch.zeros_like(d)
        if sub.proximal:
            lin0 = lin0 + (x - sub.center) * d / sub.tau
            lin1 = d * d / sub.tau
        t, u = separable_step(sub.system.K, u, sub.sigma, sub.rows, d, gd, lin0, lin1, todo,
                              self.iters)
        del lin0, lin1, gd  # m- and n-vectors at the memory peak of a large solve
        accepted = finite_rows(t)
        if not bool(accepted.all()):
            t = torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)
        move = t.mul_(d)
        x = x + move
        # Each coordinate is now at its own minimiser, up to round-off: a step that no
        # longer moves x means the gradient is at its precision floor.
        eps = torch.finfo(x.dtype).eps
        moved = inf_norm(move) > 8 * eps * (1 + inf_norm(x))
        return Step(x, u, accepted, not bool((moved & todo).any()))


class ArmijoLineSearch(LineSearch):
    """Backtracking with sufficient decrease (:func:`armijo_step`; Mangasarian 2004)."""

    def __init__(self, c1: float = 1e-4, max_halvings: int = 40):
        self.c1, self.max_halvings = c1, max_halvings

    def step(self, sub, x, u, d, gd, todo, late=False):
        val = sub.value(x)[0]
        t, accepted = armijo_step(lambda z: sub.value(z)[0], x, d, val, gd.sum(-1), todo,
                                  self.c1, self.max_halvings)
        x = x + t.unsqueeze(-1) * d
        return Step(x, sub.argument(x), accepted, False)


def make_line_search(options, separable: bool) -> LineSearch:
    """The search of ``options.line_search``; per coordinate when the rows are separable."""
    if options.line_search == "armijo":
        return ArmijoLineSearch(options.armijo, options.max_backtracks)
    if separable:
        return SeparableLineSearch(options.line_search_iters)
    return ExactLineSearch(options.line_search_iters)
