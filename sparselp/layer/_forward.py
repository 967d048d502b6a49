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
from ..operators import StackedOperator, is_expanded_scalar
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
    polished: Tensor | None = None  # (B,) bool: already exact on its active set


def solve_backend(lp: LinearProgram, backend: str, options) -> ForwardResult:
    """Solve ``lp`` (batched) with ``backend`` in {"sparselp", "highs"}."""
    if backend == "sparselp":
        from ..solver import solve  # the solver imports nothing from the layer
        sol = solve(lp, options)
        return ForwardResult(sol.x, sol.v, sol.v_eq, list(sol.status), list(sol.message),
                             sol.polished)
    return _solve_highs(lp)


def _to_scipy(op, b: int):
    if op.is_sparse:
        return op.to_scipy(b)
    return op.to_dense(b).detach().cpu().numpy()


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
    ``bf``, ``lbf``, ``ubf`` are ``b``, ``lb``, ``ub`` with infinite entries set to 0
    (None where the problem has no such finite entry), computed once for the polish.
    """

    wA: Tensor | None
    mlb: Tensor
    mub: Tensor
    solve: Callable[[Tensor], Tensor]
    bf: Tensor | None = None
    lbf: Tensor | None = None
    ubf: Tensor | None = None


def _finite(t: Tensor) -> Tensor:
    return torch.where(torch.isfinite(t), t, torch.zeros_like(t))


def _finite_or_none(t: Tensor | None) -> Tensor | None:
    """``t`` with +-inf set to 0; ``t`` itself when all finite; None when none is finite."""
    if t is None:
        return None
    if is_expanded_scalar(t):
        return t if bool(torch.isfinite(t.reshape(-1)[:1]).all()) else None
    fin = torch.isfinite(t)
    if bool(fin.all()):
        return t
    if not bool(fin.any()):
        return None
    return torch.where(fin, t, torch.zeros_like(t))


def _tight(dist: Tensor, ref: Tensor, atol: float) -> Tensor:
    """1.0 where ``dist <= atol (1 + |ref|)``, else 0.0."""
    return (dist <= ref.abs().mul_(atol).add_(atol)).to(dist.dtype)


def active_set(lp: LinearProgram, x: Tensor, atol: float, strategy="auto") -> ActiveSet:
    """Tight rows at ``x`` (slack <= atol (1 + |rhs|)) and the factor of their Gram matrix."""
    wA = bf = None
    parts, ws = [], []
    if lp.A is not None:
        bf = _finite_or_none(lp.b)
        bf = torch.zeros_like(lp.b) if bf is None else bf
        wA = _tight(lp.b - lp.A.mv(x), bf, atol)
        parts.append(lp.A)
        ws.append(wA)
    if lp.A_eq is not None:
        parts.append(lp.A_eq)
        ws.append(torch.ones_like(lp.b_eq))
    lbf, ubf = _finite_or_none(lp.lb), _finite_or_none(lp.ub)
    zeros = torch.zeros_like(x)
    mlb = zeros if lbf is None else \
        _tight(x - lbf, lbf, atol) * torch.isfinite(lp.lb).to(x.dtype)
    mub = zeros if ubf is None else \
        _tight(ubf - x, ubf, atol) * torch.isfinite(lp.ub).to(x.dtype)
    op = parts[0] if len(parts) == 1 else StackedOperator(parts)
    w = ws[0] if len(ws) == 1 else torch.cat(ws, 1)
    # A tiny shift keeps H invertible when x is not a vertex (a non-unique optimum); on a
    # vertex it changes the solves only at round-off level.
    delta = 1e-12 if x.dtype == torch.float64 else 1e-6
    shift = mlb + mub + delta
    strat = get_strategy(strategy, op)
    return ActiveSet(wA, mlb, mub, strat.factor(NewtonSystem(op, w, shift)), bf, lbf, ubf)


def _pick(ok: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Per batch element ``new`` where ``ok`` (B,), else ``old``; no copy when uniform."""
    if bool(ok.all()):
        return new
    if not bool(ok.any()):
        return old
    return torch.where(ok.unsqueeze(-1), new, old)


def polish(lp: LinearProgram, fr: ForwardResult, act: ActiveSet, atol: float):
    """Re-solve ``x = A_J^+ b_J`` and ``v_J = -A_J H^{-1} c`` on the active set.

    Each batch element keeps the polished pair only when it is feasible, no worse in
    objective and dual feasible to ``atol``; the forward output is then exactly the point
    whose derivative the backward pass computes.
    Returns ``x, v, v_eq, v_lb, v_ub`` (all (B, .)).
    """
    x, v, v_eq = fr.x, fr.v, fr.v_eq
    has_bounds = act.lbf is not None or act.ubf is not None
    if fr.polished is not None and bool(fr.polished.all()) \
            and all(st == Status.OPTIMAL for st in fr.status):
        # The solver already re-solved every element on its active set and certified it:
        # solving again would reproduce it. Only the bound duals are left.
        if not has_bounds:
            zeros = torch.zeros_like(x)
            return x, v, v_eq, zeros, zeros
        rc = _stationarity(lp, v, v_eq)
        return x, v, v_eq, act.mlb * rc.clamp_min(0), act.mub * (-rc).clamp_min(0)
    rhs = torch.zeros_like(x)
    if act.lbf is not None:
        rhs += act.mlb * act.lbf
    if act.ubf is not None:
        rhs += act.mub * act.ubf
    if lp.A is not None:
        rhs += lp.A.rmv(act.wA * act.bf)
    if lp.A_eq is not None:
        rhs += lp.A_eq.rmv(lp.b_eq)
    xp = act.solve(rhs)
    del rhs
    uc = act.solve(lp.c)
    viol = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    dviol = torch.zeros_like(viol)
    vp, veqp = v, v_eq
    if lp.A is not None:
        r = lp.A.mv(xp).sub_(lp.b).div_(act.bf.abs().add_(1))
        viol = torch.maximum(viol, r.amax(-1))
        del r
        vp = lp.A.mv(uc).mul_(act.wA).neg_()
        dviol = torch.maximum(dviol, (-vp).amax(-1))
    if lp.A_eq is not None:
        viol = torch.maximum(viol, ((lp.A_eq.mv(xp) - lp.b_eq).abs()
                                    / (1 + lp.b_eq.abs())).amax(-1))
        veqp = -lp.A_eq.mv(uc)
    if act.lbf is not None:
        viol = torch.maximum(viol, ((act.lbf - xp) * torch.isfinite(lp.lb)).amax(-1))
    if act.ubf is not None:
        viol = torch.maximum(viol, ((xp - act.ubf) * torch.isfinite(lp.ub)).amax(-1))
    f, fp = (lp.c * x).sum(-1), (lp.c * xp).sum(-1)
    ok_x = (viol <= atol) & (fp <= f + atol * (1 + f.abs())) & torch.isfinite(xp).all(-1)
    x = _pick(ok_x, xp, x)
    vp = vp.clamp_min_(0)
    rc_p = _stationarity(lp, vp, veqp)
    # Bound duals absorb the stationarity residual only on tight bounds.
    leftover = rc_p * (1 - torch.maximum(act.mlb, act.mub)) if has_bounds else rc_p
    scale = 1 + lp.c.abs().amax(-1)
    ok_v = (dviol <= atol * scale) & (leftover.abs().amax(-1) <= atol * scale)
    del leftover
    v = _pick(ok_v, vp, v)
    v_eq = _pick(ok_v, veqp, v_eq)
    rc = rc_p if bool(ok_v.all()) else _stationarity(lp, v, v_eq)
    v_lb = act.mlb * rc.clamp_min(0)
    v_ub = act.mub * (-rc).clamp_min(0)
    return x, v, v_eq, v_lb, v_ub


def _stationarity(lp, v, v_eq):
    """``c + A^T v + A_eq^T v_eq`` (= v_lb - v_ub at a KKT point)."""
    r = lp.c.clone()
    if lp.A is not None:
        r += lp.A.rmv(v)
    if lp.A_eq is not None:
        r += lp.A_eq.rmv(v_eq)
    return r
