"""A ``scipy.optimize.linprog``-style facade over :func:`sparselp.solve`."""
from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp
import torch

from .operators import scipy_to_torch
from .problem import clean_problem
from .solution import Status
from .solver import solve

__all__ = ["linprog", "LinprogResult", "clean_bounds"]


class LinprogResult(dict):
    """Result in the shape of scipy's ``OptimizeResult``: a dict with attribute access.

    Keys: ``x, fun, status, success, message, nit, ineqlin, eqlin, lower, upper,
    primal_residual, dual_residual, gap, solution`` (the full :class:`~sparselp.Solution`).
    ``ineqlin.marginals`` follows scipy's HiGHS sign convention: ``d fun / d b_ub`` (<= 0).
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    def __repr__(self):
        keys = ("status", "success", "message", "fun", "nit", "x")
        return "\n".join(f"{k:>8}: {self[k]!r}" for k in keys if k in self)


def clean_bounds(bounds, n: int):
    """scipy-style ``bounds`` -> numpy arrays ``(lb, ub)`` of shape (n,), with +-inf.

    Accepts ``None`` (x >= 0 as in scipy), one ``(lo, hi)`` pair for every variable, or a
    sequence of ``n`` pairs / an array of shape (n, 2); ``None`` means no bound.
    """
    if bounds is None:
        bounds = (0, None)
    arr = np.asarray(bounds, dtype=object)
    if arr.ndim == 1 and arr.size == 2:
        arr = np.tile(arr, (n, 1))
    arr = arr.reshape(-1, 2) if arr.size == 2 * n else arr
    if arr.shape != (n, 2):
        raise ValueError(f"bounds must be one (lo, hi) pair or {n} pairs (shape ({n}, 2)), "
                         f"got shape {np.shape(bounds)}")

    def conv(col, inf):  # NaN and crossed bounds are the problem cleaner's to reject
        return np.array([inf if v is None else float(v) for v in col], dtype=np.float64)
    return conv(arr[:, 0], -math.inf), conv(arr[:, 1], math.inf)


def _matrix(A, name, n):
    if A is None:
        return None
    if sp.issparse(A):
        return A
    A = np.asarray(A, dtype=np.float64) if not isinstance(A, torch.Tensor) else A
    if A.ndim != 2 or A.shape[1] != n:
        raise ValueError(f"{name} must have exactly two dimensions, and the number of columns "
                         f"in {name} must be equal to the size of c ({n}); got shape "
                         f"{tuple(A.shape)}")
    return A


# Over 60 lines only through its public docstring; the body is about 30.
def linprog(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, bounds=(0, None), options=None,
            dtype=torch.float64, device=None, x0=None) -> LinprogResult:
    r"""Solve a linear program with scipy's argument names and result fields.

    .. math::

        \min_x \; c^T x \quad \text{s.t.} \quad A_{ub} x \le b_{ub}, \;
        A_{eq} x = b_{eq}, \; l \le x \le u

    Parameters
    ----------
    c : array_like of shape (n,)
    A_ub, A_eq : array_like or scipy.sparse matrix or torch tensor of shape (m, n), optional
    b_ub, b_eq : array_like of shape (m,), optional
    bounds : sequence, optional
        As in scipy: ``(lo, hi)`` for all variables or one pair per variable, ``None``
        for no bound. Default ``(0, None)``.
    options : SolverOptions or dict, optional
    dtype, device : torch dtype and device the problem is solved in.
    x0 : array_like of shape (n,), optional
        A guess of ``x`` (scipy's name): the solve starts there, with the rows tight at
        ``x0`` as the active set (:func:`sparselp.warmstart.primal_iterate`); a vertex
        that is optimal is certified without a Newton step. The answer does not depend
        on it. Dropped when the presolve removes rows or columns.

    Returns
    -------
    LinprogResult
        ``x, fun, status`` (0 optimal, 1 iteration limit, 2 infeasible, 3 unbounded,
        4 numerical difficulties), ``success, message, nit``; ``ineqlin.marginals`` and
        ``eqlin.marginals`` (sensitivities of ``fun`` to ``b_ub`` and ``b_eq``, as in
        scipy's HiGHS result); ``lower.marginals``, ``upper.marginals``.
    """
    start = time.perf_counter()
    lp, empty, given = scipy_problem(c, A_ub, b_ub, A_eq, b_eq, bounds, dtype, device)
    if empty.size:
        return _empty_bounds_result(empty, given, time.perf_counter() - start)
    start_x = None
    if x0 is not None:
        start_x = torch.as_tensor(np.asarray(x0, dtype=float), dtype=dtype, device=lp.device)
        if tuple(start_x.shape) != (lp.n,):
            raise ValueError(f"x0 must have shape ({lp.n},) like c, got {tuple(start_x.shape)}")
    sol = solve(lp, options, warm_start=start_x)
    elapsed = time.perf_counter() - start
    st = Status(sol.status)
    x = sol.x.detach().cpu().numpy()
    res = LinprogResult(
        x=x, fun=float(sol.fun), status=int(st), success=st == Status.OPTIMAL,
        message=sol.message, nit=sol.nit,
        ineqlin=LinprogResult(marginals=-sol.v.detach().cpu().numpy(),
                              residual=None),
        eqlin=LinprogResult(marginals=-sol.v_eq.detach().cpu().numpy(), residual=None),
        lower=LinprogResult(marginals=sol.v_lb.detach().cpu().numpy()),
        upper=LinprogResult(marginals=-sol.v_ub.detach().cpu().numpy()),
        primal_residual=float(sol.primal_residual), dual_residual=float(sol.dual_residual),
        gap=float(sol.gap), time=elapsed, solution=sol)
    if A_ub is not None and b_ub is not None:
        res["ineqlin"]["residual"] = np.asarray(b_ub, dtype=np.float64) - _apply(A_ub, x)
    if A_eq is not None and b_eq is not None:
        res["eqlin"]["residual"] = np.asarray(b_eq, dtype=np.float64) - _apply(A_eq, x)
    return res


def scipy_problem(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, bounds=(0, None),
                  dtype=torch.float64, device=None):
    """The :class:`LinearProgram` of scipy-style ``linprog`` arguments, the indices of the
    variables whose bounds leave no value (their bounds are freed in the problem), and
    the given ``(lb, ub)``."""
    c_np = np.asarray(c, dtype=np.float64) if not isinstance(c, torch.Tensor) else c
    if c_np.ndim != 1:  # scipy's linprog solves one problem; batches go to sparselp.solve
        raise ValueError(f"c must be one-dimensional, got shape {tuple(c_np.shape)}")
    n = c_np.shape[0]
    lb, ub = clean_bounds(bounds, n)
    rows = {}
    for key, name, M, v in (("A", "A_ub", A_ub, b_ub), ("A_eq", "A_eq", A_eq, b_eq)):
        M = _matrix(M, name, n)
        if M is not None and v is not None and M.shape[0] == 0:
            continue  # no rows: nothing to constrain
        rhs = None if v is None else (v.reshape(-1) if isinstance(v, torch.Tensor)
                                      else np.asarray(v, dtype=np.float64).reshape(-1))
        rows[key], rows["b" if key == "A" else "b_eq"] = _torch(M, dtype, device), \
            _torch(rhs, dtype, device)

    # Bounds that leave a variable no value make the problem infeasible, which scipy
    # reports as status 2, not as an error; the cleaner still checks everything else.
    empty = np.flatnonzero((lb > ub) | (lb == math.inf) | (ub == -math.inf))
    given = lb, ub
    if empty.size:
        lb, ub = lb.copy(), ub.copy()
        lb[empty], ub[empty] = -math.inf, math.inf
    # The problem's cleaner checks everything else, naming scipy's arguments.
    lp = clean_problem(_torch(c_np, dtype, device), lb=_torch(lb, dtype, device),
                       ub=_torch(ub, dtype, device), names={"A": "A_ub", "b": "b_ub"}, **rows)
    return lp, empty, given


def _empty_bounds_result(empty, bounds, elapsed: float) -> LinprogResult:
    """The infeasible answer for bounds that leave variables ``empty`` no value."""
    j = int(empty[0])
    lo, hi = float(bounds[0][j]), float(bounds[1][j])
    def none():
        return LinprogResult(marginals=None, residual=None)
    return LinprogResult(
        x=None, fun=None, status=int(Status.INFEASIBLE), success=False, nit=0,
        message=f"infeasible: the bounds of {empty.size} variable(s) hold no value "
                f"(first: x[{j}] in [{lo:g}, {hi:g}])",
        ineqlin=none(), eqlin=none(), lower=none(), upper=none(),
        primal_residual=None, dual_residual=None, gap=None, time=elapsed, solution=None)


def _torch(a, dtype, device):
    """numpy, scipy.sparse or torch input as a torch tensor in the solve's dtype and device."""
    if a is None:
        return None
    if isinstance(a, torch.Tensor):
        return a.to(dtype=dtype, device=device or a.device)
    if sp.issparse(a):
        return scipy_to_torch(a, dtype=dtype, device=device)
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


def _apply(A, x):
    if isinstance(A, torch.Tensor):
        A = A.detach().cpu()
        return (A @ torch.as_tensor(x, dtype=A.dtype)).numpy()
    return np.asarray(A @ x).reshape(-1)
