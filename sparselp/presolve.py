r"""Presolve: settle what needs no iteration, solve the rest, and undo it (duals included).

For an unbatched :class:`~sparselp.LinearProgram`

.. math::

    \min_x c^T x \quad \text{s.t.}\quad A x \le b,\; A_{eq} x = b_{eq},\; lb \le x \le ub,

the reductions below are applied until none applies (each is recorded for the postsolve):

- a *fixed variable* (``lb = ub``) is substituted into the rows and removed;
- an *empty row* (no nonzero left) is dropped, or proves infeasibility (``0 <= b < 0``,
  ``0 = b_eq != 0``);
- a *singleton inequality row* ``a x_j <= b_i`` becomes a bound on ``x_j`` (kept only if
  tighter than the bound there);
- a *singleton equality row* ``a x_j = b_i`` fixes ``x_j = b_i / a``;
- an *empty column* (a variable in no row left) goes to the bound its cost points at; with
  no such bound the problem is unbounded if the rest is feasible;
- bounds that cross (``lb > ub``, also after tightening) prove infeasibility;
- *duplicate rows* (scalar multiples of one another): the binding ones are kept, the
  others removed or found contradictory (:mod:`sparselp.presolve_dup`).

The postsolve undoes the records in reverse order and recovers the dual from the
stationarity ``c + A^T v + A_eq^T v_eq - v_lb + v_ub = 0`` of each removed column: a fixed
column's reduced cost goes to its bound multipliers, a singleton row takes the multiplier
of the bound it set, a singleton equality row the whole reduced cost of its column, a
removed duplicate row the multiplier 0 (its kept parallel row carries the group's). The
restored pair is then certified on the original problem by the solver's own residuals:
``OPTIMAL`` only within ``tol``.

References
----------
E. D. Andersen and K. D. Andersen, "Presolving in linear programming", Math. Programming
71 (1995).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from .presolve_dup import remove_duplicate_rows
from .problem import LinearProgram
from .residuals import Residuals
from .scaling import build_rows, equilibrate
from .solution import Solution, Status

__all__ = ["presolve", "Presolved"]

# Feasibility slack of the presolve's own tests (relative to the entries compared).
_FEAS = 1e-9


@dataclass
class Presolved:
    """The result of :func:`presolve`.

    ``reduced`` is the LP left to solve (None when presolve settled everything or found
    the problem infeasible); ``status`` is INFEASIBLE when presolve proved it, else None;
    ``unbounded_column`` a column that makes the problem unbounded if the rest is
    feasible. :meth:`postsolve` maps a solution of ``reduced`` back.
    """

    problem: LinearProgram
    reduced: LinearProgram | None
    status: Status | None = None
    message: str = ""
    unbounded_column: int | None = None
    removed_rows: int = 0
    removed_columns: int = 0
    _ops: list = field(default_factory=list, repr=False)
    _cols: np.ndarray | None = field(default=None, repr=False)
    _rows: np.ndarray | None = field(default=None, repr=False)
    _rows_eq: np.ndarray | None = field(default=None, repr=False)
    _fixed: dict = field(default_factory=dict, repr=False)
    _arrays: dict = field(default_factory=dict, repr=False)

    def postsolve(self, sol: Solution | None, tol: float) -> Solution:
        """The solution of the original problem from ``sol`` (that of ``reduced``; None
        when there is nothing left to solve or presolve proved infeasibility)."""
        if self.status == Status.INFEASIBLE:
            return self._infeasible()
        a = self._arrays
        n = a["c"].size
        x = np.zeros(n)
        v, v_eq = np.zeros(a["b"].size), np.zeros(a["b_eq"].size)
        v_lb, v_ub = np.zeros(n), np.zeros(n)
        nit, outer, solver = 0, 0, "presolve"
        if sol is not None:
            x[self._cols] = _np(sol.x)
            v[self._rows], v_eq[self._rows_eq] = _np(sol.v), _np(sol.v_eq)
            v_lb[self._cols], v_ub[self._cols] = _np(sol.v_lb), _np(sol.v_ub)
            nit, outer, solver = sol.nit, sol.outer_iterations, sol.linear_solver
        for j, value in self._fixed.items():
            x[j] = value
        duals = {"v": v, "v_eq": v_eq, "v_lb": v_lb, "v_ub": v_ub}
        for op in reversed(self._ops):
            op.undo(a, x, duals)
        return _certified(self, x, duals, sol, tol, nit, outer, solver)


    def _infeasible(self) -> Solution:
        lp = self.problem
        z = torch.zeros(lp.n, dtype=lp.dtype, device=lp.device)
        nan = torch.tensor(math.nan, dtype=lp.dtype, device=lp.device)
        return Solution(x=z, v=z.new_zeros(lp.m), v_eq=z.new_zeros(lp.m_eq), v_lb=z,
                        v_ub=z.clone(), fun=nan, status=Status.INFEASIBLE,
                        message=self.message, nit=0, primal_residual=nan, dual_residual=nan,
                        gap=nan, active=z.new_zeros(lp.m, dtype=torch.bool),
                        linear_solver="presolve", batched=False)


class _Fix:
    """Column ``j`` fixed at ``value``: its reduced cost goes to its bound multipliers."""

    def __init__(self, j, value):
        self.j, self.value = j, value

    def undo(self, a, x, d):
        j = self.j
        r = a["c"][j] + a["A"][:, [j]].T @ d["v"] + a["A_eq"][:, [j]].T @ d["v_eq"]
        r = float(np.asarray(r).reshape(-1)[0])
        d["v_lb"][j], d["v_ub"][j] = max(r, 0.0), max(-r, 0.0)


class _RowBound:
    """Singleton row ``a x_j <= b_i`` that set the bound ``side`` of ``x_j``: the row takes
    that bound's multiplier (the last such row on a side holds it; earlier ones get 0)."""

    def __init__(self, i, j, a, side):
        self.i, self.j, self.a, self.side = i, j, a, side

    def undo(self, a, x, d):
        key = "v_ub" if self.side == "ub" else "v_lb"
        d["v"][self.i] = d[key][self.j] / abs(self.a)
        d[key][self.j] = 0.0


class _EqSingleton:
    """Singleton equality row ``a x_j = b_i`` that fixed ``x_j``: the row takes the whole
    reduced cost of the column (its bound multipliers return to 0)."""

    def __init__(self, i, j, a):
        self.i, self.j, self.a = i, j, a

    def undo(self, a, x, d):
        j = self.j
        d["v_eq"][self.i] = (d["v_ub"][j] - d["v_lb"][j]) / self.a
        d["v_lb"][j] = d["v_ub"][j] = 0.0


def presolve(problem: LinearProgram) -> Presolved:
    """Apply the reductions of this module to an unbatched ``problem``.

    Raises
    ------
    ValueError
        If ``problem`` is batched (its elements would need reductions of their own).
    """
    if problem.batched:
        raise ValueError("presolve takes an unbatched LinearProgram; solve batches "
                         "without presolve")
    a = _host_arrays(problem)
    state = _State(a)
    infeasible = state.run()
    pre = Presolved(problem, None, _ops=state.ops, _arrays=a, _fixed=state.fixed,
                    removed_rows=int((~state.row_on).sum() + (~state.eq_on).sum()),
                    removed_columns=int((~state.col_on).sum()))
    if infeasible:
        pre.status, pre.message = Status.INFEASIBLE, f"presolve: {infeasible}"
        return pre
    pre.unbounded_column = state.unbounded
    pre._cols = np.flatnonzero(state.col_on)
    pre._rows, pre._rows_eq = np.flatnonzero(state.row_on), np.flatnonzero(state.eq_on)
    if pre._cols.size:
        pre.reduced = _reduced_problem(problem, a, state, pre)
    return pre


def _host_arrays(lp: LinearProgram) -> dict:
    """c, A, b, A_eq, b_eq, lb, ub of an unbatched problem as float64 numpy / CSR."""
    n = lp.n

    def mat(op, m):
        return sp.csr_matrix((0, n)) if op is None else sp.csr_matrix(op.to_scipy(0),
                                                                       dtype=np.float64)
    return {"c": _np(lp.c[0]), "A": mat(lp.A, lp.m), "b": _np(lp.b[0]),
            "A_eq": mat(lp.A_eq, lp.m_eq), "b_eq": _np(lp.b_eq[0]),
            "lb": _np(lp.lb[0]).copy(), "ub": _np(lp.ub[0]).copy()}


def _np(t) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy().reshape(-1)


class _State:
    """The reductions, applied in passes until none applies."""

    def __init__(self, a):
        self.a = a
        self.A, self.Aeq = a["A"].tocsc(), a["A_eq"].tocsc()
        self.b, self.beq = a["b"].copy(), a["b_eq"].copy()
        self.lb, self.ub = a["lb"].copy(), a["ub"].copy()
        n = a["c"].size
        self.col_on = np.ones(n, bool)
        self.row_on, self.eq_on = np.ones(a["b"].size, bool), np.ones(a["b_eq"].size, bool)
        self.ops, self.fixed, self.unbounded = [], {}, None

    def run(self) -> str:
        """Apply the reductions; returns why the problem is infeasible, or ""."""
        for _ in range(100):  # each pass removes something, or ends the loop
            before = (self.col_on.sum(), self.row_on.sum(), self.eq_on.sum())
            why = self._fix_columns() or self._rows(self.a["A"], self.b, self.row_on, False) \
                or self._rows(self.a["A_eq"], self.beq, self.eq_on, True) or self._crossed() \
                or remove_duplicate_rows(self, _FEAS)
            if why:
                return why
            if (self.col_on.sum(), self.row_on.sum(), self.eq_on.sum()) == before:
                break
        self._empty_columns()
        return ""

    def _fix_columns(self) -> str:
        for j in np.flatnonzero(self.col_on & (self.lb == self.ub)):
            value = float(self.lb[j])
            self.b -= self.A[:, [j]].toarray().ravel() * value
            self.beq -= self.Aeq[:, [j]].toarray().ravel() * value
            self.col_on[j] = False
            self.fixed[j] = value
            self.ops.append(_Fix(j, value))
        return ""

    def _rows(self, M, rhs, on, equality: bool) -> str:
        """Empty and singleton rows of ``M`` (CSR) among the active columns."""
        if not M.shape[0]:
            return ""
        live = M[:, self.col_on] if not self.col_on.all() else M
        counts = np.diff(live.indptr)
        name = "b_eq" if equality else "b"
        for i in np.flatnonzero(on & (counts <= 1)):
            scale = 1.0 + abs(rhs[i])
            if counts[i] == 0:
                bad = abs(rhs[i]) > _FEAS * scale if equality else rhs[i] < -_FEAS * scale
                if bad:
                    return (f"row {i} of {'A_eq' if equality else 'A'} has no nonzero left "
                            f"but asks 0 {'=' if equality else '<='} {name}[{i}] = {rhs[i]:g}")
                on[i] = False
                continue
            row = M.getrow(i)
            j = int(row.indices[self.col_on[row.indices]][0])
            coef = float(row[0, j])
            on[i] = False
            if equality:
                value = rhs[i] / coef
                if value < self.lb[j] - _FEAS * (1 + abs(value)) or \
                        value > self.ub[j] + _FEAS * (1 + abs(value)):
                    return (f"row {i} of A_eq fixes x[{j}] = {value:g} outside its bounds "
                            f"[{self.lb[j]:g}, {self.ub[j]:g}]")
                self.lb[j] = self.ub[j] = value
                self.ops.append(_EqSingleton(i, j, coef))
            else:
                bound = rhs[i] / coef
                side = "ub" if coef > 0 else "lb"
                cur = self.ub if side == "ub" else self.lb
                if (bound <= cur[j]) if side == "ub" else (bound >= cur[j]):
                    cur[j] = bound
                    self.ops.append(_RowBound(i, j, coef, side))
        return ""

    def _crossed(self) -> str:
        tol = _FEAS * (1 + np.maximum(np.abs(np.nan_to_num(self.lb, posinf=0, neginf=0)),
                                      np.abs(np.nan_to_num(self.ub, posinf=0, neginf=0))))
        bad = np.flatnonzero(self.col_on & ((self.lb > self.ub + tol) | (self.lb == math.inf)
                                            | (self.ub == -math.inf)))
        if bad.size:
            j = int(bad[0])
            return f"the bounds of x[{j}] hold no value: [{self.lb[j]:g}, {self.ub[j]:g}]"
        # Within the slack: the same number twice, so the column is fixed next pass.
        close = self.col_on & (self.lb > self.ub)
        self.lb[close] = self.ub[close]
        return ""

    def _empty_columns(self) -> None:
        used = np.zeros(self.col_on.size, bool)
        for M, on in ((self.a["A"], self.row_on), (self.a["A_eq"], self.eq_on)):
            if M.shape[0]:
                used |= np.asarray(abs(M[on]).sum(0)).ravel() > 0
        c = self.a["c"]
        for j in np.flatnonzero(self.col_on & ~used):
            target = self.lb[j] if c[j] > 0 else self.ub[j] if c[j] < 0 else \
                min(max(0.0, self.lb[j]), self.ub[j])
            if not math.isfinite(target):  # cost points at an infinite bound
                self.unbounded = int(j) if self.unbounded is None else self.unbounded
                target = min(max(0.0, self.lb[j]), self.ub[j])
            self.lb[j] = self.ub[j] = target
        self._fix_columns()


def _reduced_problem(lp: LinearProgram, a: dict, state: _State, pre: Presolved):
    cols, rows, rows_eq = pre._cols, pre._rows, pre._rows_eq
    dt, dev = lp.dtype, lp.device

    def t(v):
        return torch.as_tensor(np.ascontiguousarray(v), dtype=dt, device=dev)

    def block(M, r, rhs):
        if not r.size:
            return None, None
        sub = M[r][:, cols].tocoo()
        idx = torch.as_tensor(np.vstack([sub.row, sub.col]).astype(np.int64), device=dev)
        from .operators import coo_tensor
        return coo_tensor(idx, t(sub.data), sub.shape), t(rhs[r])
    A, b = block(a["A"], rows, state.b)
    A_eq, b_eq = block(a["A_eq"], rows_eq, state.beq)
    return LinearProgram(t(a["c"][cols]), A, b, A_eq, b_eq, t(state.lb[cols]),
                         t(state.ub[cols]))


def _certified(pre: Presolved, x, duals, sol, tol, nit, outer, solver) -> Solution:
    """A Solution of the original problem, its status checked on the original residuals."""
    lp = pre.problem
    dt, dev = lp.dtype, lp.device
    system = equilibrate(build_rows(lp), 0)  # unit scaling: residuals of the problem itself
    m, m_eq, _, _ = system.sizes

    def t(v):
        return torch.as_tensor(v, dtype=dt, device=dev).unsqueeze(0)
    lam = torch.cat([t(duals["v"])[:, :m], t(duals["v_eq"])[:, :m_eq],
                     t(duals["v_lb"])[:, system.lb_idx], t(duals["v_ub"])[:, system.ub_idx]], 1)
    if lam.shape[1] != system.k.shape[1]:  # no constraint at all: one switched-off row
        lam = torch.zeros_like(system.k)
    res = Residuals(system, t(x), lam)
    status, message = _status(pre, sol, res, tol)
    xs = t(x)
    return Solution(x=xs[0], v=t(duals["v"])[0], v_eq=t(duals["v_eq"])[0],
                    v_lb=t(duals["v_lb"])[0], v_ub=t(duals["v_ub"])[0],
                    fun=(lp.c[0] * xs[0]).sum(), status=status, message=message, nit=nit,
                    primal_residual=res.primal[0], dual_residual=res.dual[0], gap=res.gap[0],
                    active=t(duals["v"])[0] > 0, outer_iterations=outer,
                    linear_solver=solver, batched=False)


def _status(pre: Presolved, sol, res, tol: float):
    inner = Status.OPTIMAL if sol is None else sol.status
    note = (f"presolve removed {pre.removed_rows} row(s) and {pre.removed_columns} "
            f"column(s)")
    if inner == Status.OPTIMAL and pre.unbounded_column is not None:
        j = pre.unbounded_column
        return Status.UNBOUNDED, (f"unbounded: x[{j}] lowers the objective without limit "
                                  f"and the rest of the problem is feasible ({note})")
    if inner != Status.OPTIMAL:
        return inner, f"{sol.message} ({note})"
    if float(res.worst[0]) <= tol:
        return Status.OPTIMAL, f"optimal: residuals and gap within tol ({note})"
    return Status.NUMERICAL_ERROR, (f"the postsolved point misses tol {tol:.0e}: primal "
                                    f"{float(res.primal[0]):.2e}, dual {float(res.dual[0]):.2e}, "
                                    f"gap {float(res.gap[0]):.2e} ({note})")
