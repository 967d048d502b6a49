r"""Warm starts: a previous :class:`~sparselp.Solution` as the first iterate of a solve.

The solver's state is a primal ``x`` and the multipliers ``λ`` of the stacked rows
``K = [A; A_eq; -I_L; I_U]`` (:mod:`sparselp.scaling`), in the equilibrated space. A
solution of an LP of the same shapes gives both: ``x̂ = x / (k_scale s)`` and
``λ̂ = [v; v_eq; v_lb[L]; v_ub[U]] / (c_scale r)``, the inverse of what
:func:`sparselp.solver.finish` does. From the exact ``(x*, λ*)`` of the same LP the first
outer step's gradient is ``c + K^T λ* = 0``: it is certified without a Newton step; from
the answer of a nearby LP (the next minibatch's, a perturbed right-hand side) the
proximal ALM starts next to its answer instead of at ``x = 0, λ = 0``.

:class:`WarmStart` holds the last solution of a layer or a loss and hands it to the next
solve when the shapes match (the same batch size, ``n``, ``m``, ``m_eq``); otherwise the
solve starts cold. The answer never depends on the start: it is certified the same way.

A tensor ``x0`` (shape ``(n,)`` or ``(B, n)``) is a primal start (:func:`primal_iterate`):
the rows tight at ``x0`` are taken as the active set and the multipliers come from it by
the polish's least squares (:func:`sparselp.polish.polish`). A formulation that knows its
optimum in closed form (the F-score and precision-at-recall LPs) starts its loss's solve
there: certified without a Newton step when the vertex is nondegenerate.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .operators import finite_rows
from .problem import LinearProgram
from .scaling import RowSystem
from .solution import Solution

__all__ = ["WarmStart", "warm_start_fits", "check_warm_start", "warm_iterate", "primal_iterate"]


class WarmStart:
    """The last solution of a sequence of solves, reused where the shapes allow.

    Pass one as ``warm_start=`` to :func:`sparselp.layer.lp_solve` (``LPLayer`` and the
    losses hold one when built with ``warm_start=True``): each call starts from the
    solution the holder has when it fits the new LP (:func:`warm_start_fits`), cold
    otherwise, and records its own solution for the next call. ``used`` says whether the
    last call was warm-started.
    """

    def __init__(self):
        self.solution: Solution | None = None
        self.used = False

    def start_for(self, problem: LinearProgram) -> Solution | None:
        """The held solution if it fits ``problem``, else None (a cold start)."""
        fits = self.solution is not None and warm_start_fits(self.solution, problem)
        self.used = fits
        return self.solution if fits else None

    def record(self, solution: Solution | None) -> None:
        self.solution = solution

    def __repr__(self) -> str:
        return f"WarmStart(held={self.solution is not None}, used={self.used})"


def _batched(t: Tensor, batched: bool) -> Tensor:
    return t if batched else t.unsqueeze(0)


def _shapes(sol: Solution):
    b = sol.batched
    return tuple(tuple(_batched(getattr(sol, f), b).shape) for f in ("x", "v", "v_eq"))


def warm_start_fits(sol: Solution | Tensor, problem: LinearProgram) -> bool:
    """True when ``sol`` has the shapes of a solution (or a primal start) of ``problem``."""
    B = problem.batch_size or 1
    if isinstance(sol, Tensor):
        return tuple(sol.shape) in ((B, problem.n),) + (((problem.n,),) if B == 1 else ())
    want = ((B, problem.n), (B, problem.m), (B, problem.m_eq))
    return isinstance(sol, Solution) and _shapes(sol) == want


def check_warm_start(sol, problem: LinearProgram) -> None:
    """Raise a ValueError naming ``warm_start`` when ``sol`` cannot start ``problem``."""
    if isinstance(sol, Tensor):
        if not warm_start_fits(sol, problem):
            B = problem.batch_size or 1
            raise ValueError(f"warm_start, a primal start, has shape {tuple(sol.shape)}; this "
                             f"problem needs ({B}, {problem.n})" + (
                                 f" or ({problem.n},)" if B == 1 else ""))
        return
    if not isinstance(sol, Solution):
        raise TypeError(f"warm_start must be a sparselp Solution, a tensor (a primal start) "
                        f"or None, got {type(sol).__name__}")
    if not warm_start_fits(sol, problem):
        B = problem.batch_size or 1
        raise ValueError(f"warm_start has shapes x, v, v_eq = {_shapes(sol)}; this problem "
                         f"needs {((B, problem.n), (B, problem.m), (B, problem.m_eq))}")


def warm_iterate(system: RowSystem, sol: Solution, dtype, device) -> tuple[Tensor, Tensor]:
    """``(x̂, λ̂)`` of ``sol`` in the equilibrated space of ``system`` (its scaling
    recorded by :func:`sparselp.scaling.equilibrate`). Elements with a non-finite entry
    start cold (at zero)."""
    b = sol.batched

    def get(name):
        return _batched(getattr(sol, name), b).detach().to(dtype=dtype, device=device)

    x = get("x") / (system.k_scale * system.s)
    m, m_eq, n_lb, n_ub = system.sizes
    if system.K.m == m + m_eq + n_lb + n_ub:
        v = torch.cat([get("v"), get("v_eq"), get("v_lb")[:, system.lb_idx],
                       get("v_ub")[:, system.ub_idx]], 1)
        lam = v / (system.c_scale * system.r)
        ineq = ~system.eq
        lam = torch.where(ineq, lam.clamp_min(0), lam)
    else:  # no constraint: one switched-off placeholder row
        lam = torch.zeros_like(system.k)
    ok = torch.isfinite(x).all(-1) & torch.isfinite(lam).all(-1)
    if not bool(ok.all()):
        x = torch.where(ok.unsqueeze(-1), x, torch.zeros_like(x))
        lam = torch.where(ok.unsqueeze(-1), lam, torch.zeros_like(lam))
    return x, lam


def primal_iterate(system: RowSystem, strategy, x0: Tensor, polish: bool = True,
                   shadow: RowSystem | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(x̂, λ̂, polished)`` from a primal start ``x0`` (unscaled, (n,) or (B, n)), in the
    equilibrated space of ``system``: the rows within round-off of tight at ``x0``
    (``|K x̂ - k| <= 1e3 eps (1 + |k| + |K| |x̂|)``) are the active set, and the polish
    (:class:`sparselp.polish.ActiveSystem`, with ``strategy``'s Newton systems) makes them exact
    and gives the multipliers that fit them; where that leaves an inequality row violated,
    once more on the rows tight relative to their own terms (``<= 1e3 eps (|k| + |K| |x̂|)``),
    the better of the two kept. At a nondegenerate optimal vertex that is the
    optimal pair; elsewhere it is a start like any other. Elements with a non-finite entry,
    and batches whose active-set system is singular, start cold (at zero). ``polished``
    (B,) bool marks the elements whose pair came from the polish (exact on its active set,
    as the solver's own polish; the layer then skips its re-solve once it is certified).
    ``polish=False`` (the solver's option): the scaled point with zero multipliers. With a
    float64 ``shadow`` of a float32 system (and an exact strategy) the polish runs on it,
    as the solver's own does: a float32 sum over a coupling row of 65,536 terms is not
    within the primal tolerance otherwise."""
    dt = system.c.dtype
    on = shadow if shadow is not None and getattr(strategy, "exact", False) else system
    x = x0.detach().to(dtype=on.c.dtype, device=on.c.device).reshape(-1, on.c.shape[-1])
    x = x.expand_as(on.c) / (on.k_scale * on.s)
    ok = finite_rows(x)
    x = torch.where(ok.unsqueeze(-1), x, torch.zeros_like(x))
    lam = torch.zeros_like(on.k)
    if not polish:
        return x.to(dt), lam.to(dt), torch.zeros_like(ok)
    eps = torch.finfo(dt).eps
    r0 = on.K.mv(x) - on.k
    terms = on.K.absolute().mv(x.abs()).add_(on.k.abs())
    tight = (r0.abs() <= 1e3 * eps * (terms + 1)) & ok.unsqueeze(-1)
    try:
        xp, lp = _polish_at(on, strategy, x, tight, lam)
        # A row tight only by the absolute floor (the "1 +": rows of small terms) can be
        # the slack one of two nearly parallel rows; the dropped one is then left
        # violated (the hinge F-score LP in float32: a positive's w <= t beside its
        # binding w <= a t, a just below 1; 7 Newton steps followed). Then once more on
        # the rows tight relative to their own terms, kept where it violates less.
        viol = _violation(on, xp, r0)
        if bool((viol > 10 * eps * (terms + 1)).any()):
            strict = tight & (r0.abs() <= 1e3 * eps * terms)
            xs, ls = _polish_at(on, strategy, x, strict, lam)
            better = (_violation(on, xs, r0).amax(-1) < viol.amax(-1)).unsqueeze(-1)
            xp, lp = torch.where(better, xs, xp), torch.where(better, ls, lp)
    except (RuntimeError, ValueError):  # a singular active-set system: the bare point
        return x.to(dt), lam.to(dt), torch.zeros_like(ok)
    good = (ok & finite_rows(xp) & finite_rows(lp)).unsqueeze(-1)
    return (torch.where(good, xp, x).to(dt), torch.where(good, lp, lam).to(dt),
            good.squeeze(-1))


def _polish_at(on: RowSystem, strategy, x: Tensor, tight: Tensor, lam: Tensor):
    """The polished pair ``(x̂, λ̂)`` on the active set ``tight`` from ``x``."""
    from .polish import ActiveSystem  # it imports the batching helpers, as the solver does

    act = ActiveSystem(on, strategy, x, tight, True)
    lp = act.dual(lam)
    # At a degenerate vertex (more tight rows than columns, e.g. both sides of a clipped
    # ramp) the least-squares multipliers split between parallel rows and some come out
    # negative (clamped to zero): once more without those rows.
    drop = tight & (lp <= 0) & ~on.eq
    if bool(drop.any()):
        act = ActiveSystem(on, strategy, x, tight & ~drop, True)
        lp = act.dual(lam)
    return act.primal(x), lp


def _violation(on: RowSystem, xp: Tensor, r0: Tensor) -> Tensor:
    """How much more than the start's own residual ``r0`` each inequality row is violated
    at ``xp`` (0 on equality rows, whose residual the polish sets)."""
    return (on.K.mv(xp) - on.k - r0.clamp_min(0)).clamp_min_(0).masked_fill_(on.eq, 0.0)
