"""Forward solves of the LP layer (sparselp's Newton solver, or SciPy's HiGHS as a
reference) and the active-set polish that makes the answer exact on its active set."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..linsolve import NewtonSystem, get_strategy
from ..operators import StackedOperator
from ..problem import LinearProgram
from ..solution import Status

__all__ = ["ForwardResult", "solve_backend", "ActiveSet", "active_set", "polish"]


@dataclass
class ForwardResult:
    x: Tensor        # (B, n)
    v: Tensor        # (B, m)
    v_eq: Tensor     # (B, m_eq)
    status: list
    message: list


def solve_backend(lp: LinearProgram, backend: str, options) -> ForwardResult:
    """Solve ``lp`` (batched) with ``backend`` in {"sparselp", "highs"}."""
    if backend == "sparselp":
        from ..solver import solve  # the solver imports nothing from the layer
        sol = solve(lp, options)
        return ForwardResult(sol.x, sol.v, sol.v_eq, list(sol.status), list(sol.message))
    return _solve_highs(lp)


def _to_scipy(op, b: int):
    if op.is_sparse:
        return op.to_scipy(b)
    return op.data[0 if op.shared else b].detach().cpu().numpy()


def _solve_highs(lp: LinearProgram) -> ForwardResult:
    """One ``scipy.optimize.linprog(method="highs")`` per batch element (CPU reference)."""
    from scipy.optimize import linprog
    B, dt, dev = lp.batch_size, lp.dtype, lp.device
    xs, vs, veqs, st, msg = [], [], [], [], []
    codes = {0: Status.OPTIMAL, 1: Status.ITERATION_LIMIT, 2: Status.INFEASIBLE,
             3: Status.UNBOUNDED, 4: Status.NUMERICAL_ERROR}
    for i in range(B):
        lb = lp.lb[i].detach().cpu().numpy()
        ub = lp.ub[i].detach().cpu().numpy()
        bounds = [(None if math.isinf(lo) else lo, None if math.isinf(hi) else hi)
                  for lo, hi in zip(lb, ub)]
        kw = {}
        if lp.A is not None:
            kw.update(A_ub=_to_scipy(lp.A, i), b_ub=lp.b[i].detach().cpu().numpy())
        if lp.A_eq is not None:
            kw.update(A_eq=_to_scipy(lp.A_eq, i), b_eq=lp.b_eq[i].detach().cpu().numpy())
        res = linprog(lp.c[i].detach().cpu().numpy(), bounds=bounds, method="highs", **kw)
        st.append(codes.get(res.status, Status.NUMERICAL_ERROR))
        msg.append(res.message)
        n = lp.n
        xs.append(res.x if res.x is not None else np.full(n, np.nan))
        ok = res.status == 0
        vs.append(-res.ineqlin.marginals if ok and lp.A is not None else np.zeros(lp.m))
        veqs.append(-res.eqlin.marginals if ok and lp.A_eq is not None else np.zeros(lp.m_eq))

    def t(a):
        return torch.as_tensor(np.stack(a), dtype=dt, device=dev)
    return ForwardResult(t(xs), t(vs), t(veqs), st, msg)


@dataclass
class ActiveSet:
    """Rows that are tight at ``x``, and the factorized ``H = A_J^T A_J (+ A_eq^T A_eq + bounds)``.

    ``wA`` (B, m) is 1 on the tight inequality rows, ``mlb``/``mub`` (B, n) on the tight
    bounds; ``solve(rhs)`` applies ``H^{-1}`` through the solver's own Hessian strategies
    (:func:`sparselp.linsolve.get_strategy`), the one linear-solver interface.
    """

    wA: Tensor | None
    mlb: Tensor
    mub: Tensor
    solve: Callable[[Tensor], Tensor]


def _finite(t: Tensor) -> Tensor:
    return torch.where(torch.isfinite(t), t, torch.zeros_like(t))


def active_set(lp: LinearProgram, x: Tensor, atol: float, strategy="auto") -> ActiveSet:
    """Tight rows at ``x`` (slack <= atol (1 + |rhs|)) and the factor of their Gram matrix."""
    wA = None
    parts, ws = [], []
    if lp.A is not None:
        slack = lp.b - lp.A.mv(x)
        wA = (slack <= atol * (1 + _finite(lp.b).abs())).to(x.dtype)
        parts.append(lp.A)
        ws.append(wA)
    if lp.A_eq is not None:
        parts.append(lp.A_eq)
        ws.append(torch.ones_like(lp.b_eq))
    fin_lb, fin_ub = torch.isfinite(lp.lb), torch.isfinite(lp.ub)
    mlb = (fin_lb & (x - _finite(lp.lb) <= atol * (1 + _finite(lp.lb).abs()))).to(x.dtype)
    mub = (fin_ub & (_finite(lp.ub) - x <= atol * (1 + _finite(lp.ub).abs()))).to(x.dtype)
    op = parts[0] if len(parts) == 1 else StackedOperator(parts)
    w = ws[0] if len(ws) == 1 else torch.cat(ws, 1)
    # A tiny shift keeps H invertible when x is not a vertex (a non-unique optimum); on a
    # vertex it changes the solves only at round-off level.
    delta = 1e-12 if x.dtype == torch.float64 else 1e-6
    shift = mlb + mub + delta
    strat = get_strategy(strategy, op)
    return ActiveSet(wA, mlb, mub, strat.factor(NewtonSystem(op, w, shift)))


def polish(lp: LinearProgram, fr: ForwardResult, act: ActiveSet, atol: float):
    """Re-solve ``x = A_J^+ b_J`` and ``v_J = -A_J H^{-1} c`` on the active set.

    Each batch element keeps the polished pair only when it is feasible, no worse in
    objective and dual feasible to ``atol``; the forward output is then exactly the point
    whose derivative the backward pass computes.
    Returns ``x, v, v_eq, v_lb, v_ub`` (all (B, .)).
    """
    x, v, v_eq = fr.x, fr.v, fr.v_eq
    rhs = act.mlb * _finite(lp.lb) + act.mub * _finite(lp.ub)
    if lp.A is not None:
        rhs = rhs + lp.A.rmv(act.wA * _finite(lp.b))
    if lp.A_eq is not None:
        rhs = rhs + lp.A_eq.rmv(lp.b_eq)
    xp = act.solve(rhs)
    uc = act.solve(lp.c)
    viol = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    dviol = torch.zeros_like(viol)
    vp, veqp = v, v_eq
    if lp.A is not None:
        viol = torch.maximum(viol, ((lp.A.mv(xp) - lp.b) / (1 + _finite(lp.b).abs())).amax(-1))
        vp = -act.wA * lp.A.mv(uc)
        dviol = torch.maximum(dviol, (-vp).amax(-1))
    if lp.A_eq is not None:
        viol = torch.maximum(viol, ((lp.A_eq.mv(xp) - lp.b_eq).abs()
                                    / (1 + lp.b_eq.abs())).amax(-1))
        veqp = -lp.A_eq.mv(uc)
    viol = torch.maximum(viol, ((_finite(lp.lb) - xp) * torch.isfinite(lp.lb)).amax(-1))
    viol = torch.maximum(viol, ((xp - _finite(lp.ub)) * torch.isfinite(lp.ub)).amax(-1))
    f, fp = (lp.c * x).sum(-1), (lp.c * xp).sum(-1)
    ok_x = (viol <= atol) & (fp <= f + atol * (1 + f.abs())) & torch.isfinite(xp).all(-1)
    x = torch.where(ok_x.unsqueeze(-1), xp, x)
    rc_p = _stationarity(lp, vp.clamp_min(0), veqp)
    # Bound duals absorb the stationarity residual only on tight bounds.
    leftover = rc_p * (1 - torch.maximum(act.mlb, act.mub))
    scale = 1 + lp.c.abs().amax(-1)
    ok_v = (dviol <= atol * scale) & (leftover.abs().amax(-1) <= atol * scale)
    v = torch.where(ok_v.unsqueeze(-1), vp.clamp_min(0), v)
    v_eq = torch.where(ok_v.unsqueeze(-1), veqp, v_eq)
    rc = _stationarity(lp, v, v_eq)
    v_lb = torch.where(act.mlb > 0, rc.clamp_min(0), torch.zeros_like(rc))
    v_ub = torch.where(act.mub > 0, (-rc).clamp_min(0), torch.zeros_like(rc))
    return x, v, v_eq, v_lb, v_ub


def _stationarity(lp, v, v_eq):
    """``c + A^T v + A_eq^T v_eq`` (= v_lb - v_ub at a KKT point)."""
    r = lp.c.clone()
    if lp.A is not None:
        r = r + lp.A.rmv(v)
    if lp.A_eq is not None:
        r = r + lp.A_eq.rmv(v_eq)
    return r
