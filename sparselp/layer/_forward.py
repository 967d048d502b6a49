"""Forward solves of the LP layer (sparselp's Newton solver, or SciPy's HiGHS as a
reference) and the re-solve that makes the answer exact on its active set."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..linsolve import NewtonSystem, get_strategy
from ..operators import (StackedOperator, all_finite, as_float, finite_rows, float_mask,
                         is_expanded_scalar)
from ..problem import LinearProgram
from ..reference import highs_solve
from ..solution import Status
from ..warmstart import WarmStart

__all__ = ["ForwardResult", "solve_backend", "ActiveSet", "active_set", "resolve_on_active_set"]


@dataclass
class ForwardResult:
    x: Tensor        # (B, n)
    v: Tensor        # (B, m)
    v_eq: Tensor     # (B, m_eq)
    status: list
    message: list
    polished: Tensor | None = None  # (B,) bool: already exact on its active set


def solve_backend(lp: LinearProgram, backend: str, options, warm_start=None) -> ForwardResult:
    """Solve ``lp`` (batched) with ``backend`` in {"sparselp", "highs"}.

    ``warm_start`` (sparselp only): a :class:`~sparselp.Solution` or a primal point (a
    tensor) to start from, or a
    :class:`~sparselp.warmstart.WarmStart` holder, which starts the solve from its last
    solution where the shapes fit and then records this one.
    """
    if backend == "sparselp":
        from ..solver import solve  # the solver imports nothing from the layer
        holder = warm_start if isinstance(warm_start, WarmStart) else None
        start = holder.start_for(lp) if holder is not None else warm_start
        sol = solve(lp, options, warm_start=start)
        if holder is not None:
            holder.record(sol)
        return ForwardResult(sol.x, sol.v, sol.v_eq, list(sol.status), list(sol.message),
                             sol.polished)
    ref = highs_solve(lp)  # one scipy HiGHS call per batch element, on CPU
    return ForwardResult(ref.x, ref.v, ref.v_eq, ref.status, ref.message)


@dataclass
class ActiveSet:
    """Rows that are tight at ``x``, and the factorized ``H = A_J^T A_J (+ A_eq^T A_eq + bounds)``.

    ``tight_rows`` (B, m) is 1 on the tight inequality rows, ``tight_lb``/``tight_ub``
    (B, n) on the tight bounds; ``solve(rhs)`` applies ``H^{-1}`` through the solver's own
    Hessian strategies (:func:`sparselp.linsolve.get_strategy`), the one linear-solver
    interface. ``b_finite``, ``lb_finite``, ``ub_finite`` are ``b``, ``lb``, ``ub`` with
    infinite entries set to 0 (None where the problem has no such finite entry), computed
    once for :func:`resolve_on_active_set`.
    """

    tight_rows: Tensor | None
    tight_lb: Tensor
    tight_ub: Tensor
    solve: Callable[[Tensor], Tensor]
    b_finite: Tensor | None = None
    lb_finite: Tensor | None = None
    ub_finite: Tensor | None = None


def _finite_or_none(t: Tensor | None) -> Tensor | None:
    """``t`` with +-inf set to 0; ``t`` itself when all finite; None when none is finite."""
    if t is None:
        return None
    if is_expanded_scalar(t):
        return t if bool(torch.isfinite(t.reshape(-1)[:1]).all()) else None
    if all_finite(t):
        return t
    fin = torch.isfinite(t)
    if not bool(fin.any()):
        return None
    return torch.where(fin, t, torch.zeros_like(t))


def _tight(dist: Tensor, ref: Tensor, atol: float) -> Tensor:
    """1.0 where ``dist <= atol (1 + |ref|)``, else 0.0."""
    return float_mask(torch.le, dist, ref.abs().mul_(atol).add_(atol))


def active_set(lp: LinearProgram, x: Tensor, atol: float, strategy="auto") -> ActiveSet:
    """Tight rows at ``x`` (slack <= atol (1 + |rhs|)) and the factor of their Gram matrix."""
    tight_rows = b_finite = None
    parts, weights = [], []
    if lp.A is not None:
        b_finite = _finite_or_none(lp.b)
        b_finite = torch.zeros_like(lp.b) if b_finite is None else b_finite
        tight_rows = _tight(lp.A.mv(x).neg_().add_(lp.b), b_finite, atol)  # b - A x
        parts.append(lp.A)
        weights.append(tight_rows)
    if lp.A_eq is not None:
        parts.append(lp.A_eq)
        weights.append(torch.ones_like(lp.b_eq))
    lb_finite, ub_finite = _finite_or_none(lp.lb), _finite_or_none(lp.ub)
    zeros = torch.zeros_like(x)
    tight_lb = zeros if lb_finite is None else \
        _tight(x - lb_finite, lb_finite, atol) * as_float(torch.isfinite(lp.lb), x.dtype)
    tight_ub = zeros if ub_finite is None else \
        _tight(ub_finite - x, ub_finite, atol) * as_float(torch.isfinite(lp.ub), x.dtype)
    op = parts[0] if len(parts) == 1 else StackedOperator(parts)
    w = weights[0] if len(weights) == 1 else torch.cat(weights, 1)
    # A tiny shift keeps H invertible when x is not a vertex (a non-unique optimum); on a
    # vertex it changes the solves only at round-off level.
    delta = 1e-12 if x.dtype == torch.float64 else 1e-6
    shift = tight_lb + tight_ub + delta
    return ActiveSet(tight_rows, tight_lb, tight_ub, _lazy_solve(strategy, op, w, shift),
                     b_finite, lb_finite, ub_finite)


def _lazy_solve(strategy, op, w: Tensor, shift: Tensor) -> Callable[[Tensor], Tensor]:
    """``rhs -> H^{-1} rhs``, choosing the strategy and factoring ``H`` at the first call:
    a polished, certified forward of a loss on the optimal value never solves with it."""
    factor = None

    def solve(rhs: Tensor) -> Tensor:
        nonlocal factor
        if factor is None:
            factor = get_strategy(strategy, op).factor(NewtonSystem(op, w, shift))
        return factor(rhs)
    return solve


def _pick(ok: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Per batch element ``new`` where ``ok`` (B,), else ``old``; no copy when uniform."""
    if bool(ok.all()):
        return new
    if not bool(ok.any()):
        return old
    return torch.where(ok.unsqueeze(-1), new, old)


def _bound_duals(active: ActiveSet, reduced_cost: Tensor):
    """``v_lb, v_ub``: the reduced cost ``c + A^T v + A_eq^T v_eq`` split over tight bounds."""
    return (active.tight_lb * reduced_cost.clamp_min(0),
            active.tight_ub * (-reduced_cost).clamp_min(0))


def resolve_on_active_set(lp: LinearProgram, forward: ForwardResult, active: ActiveSet,
                          atol: float):
    """Re-solve ``x = A_J^+ b_J`` and ``v_J = -A_J H^{-1} c`` on the active set.

    Each batch element keeps the re-solved pair only when it is feasible, no worse in
    objective and dual feasible to ``atol``; the forward output is then exactly the point
    whose derivative the backward pass computes. (Not :func:`sparselp.polish.polish`: that
    one corrects the solver's scaled iterate on the rows its multipliers mark; this one
    solves the original problem on the rows tight at ``x``, with ``H`` the backward
    pass reuses.)

    Returns ``x, v, v_eq, v_lb, v_ub`` (all (B, .)).
    """
    x, v, v_eq = forward.x, forward.v, forward.v_eq
    has_bounds = active.lb_finite is not None or active.ub_finite is not None
    if forward.polished is not None and bool(forward.polished.all()) \
            and all(st == Status.OPTIMAL for st in forward.status):
        # The solver already re-solved every element on its active set and certified it:
        # solving again would reproduce it. Only the bound duals are left.
        if not has_bounds:
            zeros = torch.zeros_like(x)
            return x, v, v_eq, zeros, zeros
        return (x, v, v_eq) + _bound_duals(active, _reduced_cost(lp, v, v_eq))
    x_new = active.solve(_active_rhs(lp, active))
    Hinv_c = active.solve(lp.c)
    x_ok = _primal_acceptable(lp, active, x, x_new, atol)
    x = _pick(x_ok, x_new, x)
    # Duals: v_J = -A_J H^{-1} c (and likewise for the equality rows).
    v_new, v_eq_new = v, v_eq
    dual_violation = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    if lp.A is not None:
        v_new = lp.A.mv(Hinv_c).mul_(active.tight_rows).neg_()
        dual_violation = torch.maximum(dual_violation, v_new.amin(-1).neg_())  # max of -v
    if lp.A_eq is not None:
        v_eq_new = -lp.A_eq.mv(Hinv_c)
    v_new = v_new.clamp_min_(0)
    reduced_cost_new = _reduced_cost(lp, v_new, v_eq_new)
    # Bound duals absorb the stationarity residual only on tight bounds.
    leftover = reduced_cost_new * (1 - torch.maximum(active.tight_lb, active.tight_ub)) \
        if has_bounds else reduced_cost_new
    scale = 1 + lp.c.abs().amax(-1)
    v_ok = (dual_violation <= atol * scale) & (leftover.abs().amax(-1) <= atol * scale)
    del leftover
    v = _pick(v_ok, v_new, v)
    v_eq = _pick(v_ok, v_eq_new, v_eq)
    reduced_cost = reduced_cost_new if bool(v_ok.all()) else _reduced_cost(lp, v, v_eq)
    return (x, v, v_eq) + _bound_duals(active, reduced_cost)


def _active_rhs(lp: LinearProgram, active: ActiveSet) -> Tensor:
    """``A_J^T b_J + A_eq^T b_eq + lb`` (tight) ``+ ub`` (tight): ``H x`` at the vertex."""
    rhs = torch.zeros_like(lp.c)
    if active.lb_finite is not None:
        rhs += active.tight_lb * active.lb_finite
    if active.ub_finite is not None:
        rhs += active.tight_ub * active.ub_finite
    if lp.A is not None:
        rhs += lp.A.rmv(active.tight_rows * active.b_finite)
    if lp.A_eq is not None:
        rhs += lp.A_eq.rmv(lp.b_eq)
    return rhs


def _primal_acceptable(lp: LinearProgram, active: ActiveSet, x: Tensor, x_new: Tensor,
                       atol: float) -> Tensor:
    """(B,) bool: ``x_new`` is finite, feasible to ``atol`` and no worse than ``x``."""
    violation = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    if lp.A is not None:
        r = lp.A.mv(x_new).sub_(lp.b).div_(active.b_finite.abs().add_(1))
        violation = torch.maximum(violation, r.amax(-1))
        del r
    if lp.A_eq is not None:
        violation = torch.maximum(violation, ((lp.A_eq.mv(x_new) - lp.b_eq).abs()
                                              / (1 + lp.b_eq.abs())).amax(-1))
    if active.lb_finite is not None:
        violation = torch.maximum(
            violation, ((active.lb_finite - x_new) * torch.isfinite(lp.lb)).amax(-1))
    if active.ub_finite is not None:
        violation = torch.maximum(
            violation, ((x_new - active.ub_finite) * torch.isfinite(lp.ub)).amax(-1))
    f, f_new = (lp.c * x).sum(-1), (lp.c * x_new).sum(-1)
    return (violation <= atol) & (f_new <= f + atol * (1 + f.abs())) \
        & finite_rows(x_new)


def _reduced_cost(lp, v, v_eq):
    """``c + A^T v + A_eq^T v_eq`` (= v_lb - v_ub at a KKT point)."""
    r = lp.c.clone()
    if lp.A is not None:
        r += lp.A.rmv(v)
    if lp.A_eq is not None:
        r += lp.A_eq.rmv(v_eq)
    return r
