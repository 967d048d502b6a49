"""The shared test helpers: ONE comparison with scipy's HiGHS and ONE random-LP generator.

Every test that compares a sparselp answer with HiGHS goes through
:func:`assert_matches_highs`, and every test that needs a random LP draws it with
:func:`random_lp`. The comparison checks what the solver's certificate promises and
nothing looser: the status is HiGHS's (``Status`` carries scipy's codes); an OPTIMAL
answer has primal residual, dual residual and gap within the solver's ``tol``, recomputed
here in float64 on the original data, and its objective lies within a few ``tol`` of
HiGHS's. ``x`` is compared only where the caller knows the optimum is unique.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog as scipy_linprog

import torch

from sparselp import Status
from sparselp.operators import DenseOperator, SelectionOperator, StackedOperator

F64 = torch.float64

# The objective of a certified answer is within this many tol of the optimum: the gap is
# within tol, and the residuals, times the duals and primals they meet, add a few more.
OBJ_TOLS = 10
# At a unique optimum x's error is the residuals times the conditioning of the active set;
# the random LPs here (generic vertices) stay within this.
X_TOLS = 10


def default_tol(dtype) -> float:
    """The solver's own default tolerance (:class:`sparselp.SolverOptions`)."""
    return 1e-8 if dtype == torch.float64 else 1e-5


def to_numpy(a):
    """float64 numpy array (scipy CSR for a sparse tensor or operator); None stays None."""
    if a is None:
        return None
    if hasattr(a, "to_scipy"):  # a sparselp SparseOperator: its first batch element
        return sp.csr_array(a.to_scipy(0))
    if hasattr(a, "data") and hasattr(a, "shared"):  # a sparselp DenseOperator
        a = a.data[0]
    if isinstance(a, torch.Tensor):
        if a.layout != torch.strided:
            a = a.to_sparse_coo().coalesce()
            i = a.indices().cpu().numpy()
            return sp.csr_array((a.values().detach().cpu().double().numpy(), (i[0], i[1])),
                                shape=tuple(a.shape))
        return a.detach().cpu().double().numpy()
    if sp.issparse(a):
        return sp.csr_array(a, dtype=float)
    return np.asarray(a, dtype=float)


def _bounds(bounds, lb, ub, n):
    """scipy's bounds from ``bounds`` or from (lb, ub) vectors or scalars (inf -> None)."""
    if lb is None and ub is None:
        return (None, None) if bounds is None else bounds
    lo = np.broadcast_to(-np.inf if lb is None else to_numpy(lb), (n,))
    hi = np.broadcast_to(np.inf if ub is None else to_numpy(ub), (n,))
    return [(None if not np.isfinite(a) else a, None if not np.isfinite(b) else b)
            for a, b in zip(lo, hi)]


def bound_vectors(bounds, lb, ub, n):
    """(lo, hi) numpy vectors of length n, +-inf where unbounded."""
    bnd = _bounds(bounds, lb, ub, n)
    bnd = [bnd] * n if isinstance(bnd, tuple) else list(bnd)
    lo = np.array([-np.inf if a is None else a for a, _ in bnd], dtype=float)
    hi = np.array([np.inf if z is None else z for _, z in bnd], dtype=float)
    return lo, hi


def highs(c, A=None, b=None, A_eq=None, b_eq=None, bounds=None, lb=None, ub=None):
    """scipy's HiGHS on ``min c^T x, A x <= b, A_eq x = b_eq``; x free unless bounded."""
    c = to_numpy(c)
    return scipy_linprog(c, A_ub=to_numpy(A), b_ub=to_numpy(b), A_eq=to_numpy(A_eq),
                         b_eq=to_numpy(b_eq), bounds=_bounds(bounds, lb, ub, c.size),
                         method="highs")


def residuals(x, v, v_eq, v_lb, v_ub, c, A=None, b=None, A_eq=None, b_eq=None,
              lo=None, hi=None, tol=None):
    """(primal, dual, gap) of a primal-dual pair as :class:`sparselp.Solution` defines them,
    computed in float64 from the original data; lo/hi are numpy bound vectors. A float32
    pair's dual residual is term-scaled where the plain one exceeds ``tol``
    (its default for float32; see :class:`sparselp.residuals.Residuals`)."""
    term = isinstance(x, torch.Tensor) and x.dtype == torch.float32
    tol = default_tol(torch.float32) if tol is None else tol
    x, c = to_numpy(x), to_numpy(c)
    n = c.size
    lo = np.full(n, -np.inf) if lo is None else lo
    hi = np.full(n, np.inf) if hi is None else hi
    viol, rhs = [np.zeros(1)], [np.zeros(1)]
    grad, col_terms = c.copy(), np.abs(c)
    dual_obj = 0.0
    if A is not None:
        A, b, v = to_numpy(A), to_numpy(b), to_numpy(v)
        fin = np.isfinite(b)
        viol.append(np.clip(A @ x - b, 0, None)[fin])
        rhs.append(b[fin])
        grad += A.T @ v
        col_terms = col_terms + abs(A).T @ np.abs(v)
        dual_obj -= b[fin] @ v[fin]
        assert v.min(initial=0) >= 0, f"negative inequality dual {v.min():.2e}"
    if A_eq is not None:
        A_eq, b_eq, v_eq = to_numpy(A_eq), to_numpy(b_eq), to_numpy(v_eq)
        viol.append(np.abs(A_eq @ x - b_eq))
        rhs.append(b_eq)
        grad += A_eq.T @ v_eq
        col_terms = col_terms + abs(A_eq).T @ np.abs(v_eq)
        dual_obj -= b_eq @ v_eq
    v_lb, v_ub = to_numpy(v_lb), to_numpy(v_ub)
    for bnd, dual, sign in ((lo, v_lb, -1.0), (hi, v_ub, 1.0)):
        fin = np.isfinite(bnd)
        viol.append(np.clip(sign * (x - bnd), 0, None)[fin])
        rhs.append(bnd[fin])
        grad += sign * dual
        col_terms = col_terms + np.abs(dual)
        dual_obj -= sign * (bnd[fin] @ dual[fin])
        assert dual.min(initial=0) >= 0, f"negative bound dual {dual.min():.2e}"
    primal = np.concatenate(viol).max() / (1 + np.abs(np.concatenate(rhs)).max())
    plain = 1 + np.abs(c).max()
    dual = np.abs(grad).max() / plain
    if term and dual > tol:
        dual = (np.abs(grad) / np.maximum(plain, 1 + np.asarray(col_terms).ravel())).max()
    pobj = c @ x
    gap = abs(pobj - dual_obj) / (1 + abs(pobj) + abs(dual_obj))
    return primal, dual, gap


def assert_matches_highs(sol, c, A=None, b=None, A_eq=None, b_eq=None, bounds=None,
                         lb=None, ub=None, *, tol=None, check_x=False, certificate=False,
                         ref=None):
    """Assert that ``sol`` (one element's :class:`sparselp.Solution`) agrees with HiGHS.

    The status must be HiGHS's. OPTIMAL: the residuals recomputed here (float64, original
    data) within ``2 tol`` (the solver measures them in its own precision), the objective
    within ``OBJ_TOLS tol`` relative to HiGHS's and, with ``check_x`` (only for an LP whose
    optimum is unique), ``x`` within ``X_TOLS tol`` of HiGHS's vertex. INFEASIBLE: the
    returned ``x`` is not feasible to ``tol`` either. ``certificate=True`` also asks the
    returned pair to show the certificate: the duals of an INFEASIBLE answer a Farkas ray
    (:func:`farkas_ratio`), the ``x`` of an UNBOUNDED one a ray of decrease
    (:func:`ray_violation`). The solver verifies its certificate on the differences of its
    iterates and does not return it; the returned pair shows it only where the iterates ran
    far along it, so this is for LPs built to do so. ``tol`` defaults to the solver's
    default for the dtype of ``sol.x``. Returns HiGHS's result.
    """
    ref = ref if ref is not None else highs(c, A, b, A_eq, b_eq, bounds, lb, ub)
    tol = tol if tol is not None else default_tol(sol.x.dtype)
    info = (f"\n  sparselp: status={sol.status.name} message={sol.message!r} "
            f"fun={float(sol.fun):.10g} nit={sol.nit} primal_res="
            f"{float(sol.primal_residual):.2e} dual_res={float(sol.dual_residual):.2e} "
            f"gap={float(sol.gap):.2e}\n  HiGHS:    status={Status(ref.status).name} "
            f"message={ref.message!r} fun={getattr(ref, 'fun', None)}")
    assert sol.status == Status(ref.status), "status differs from HiGHS" + info
    lo, hi = bound_vectors(bounds, lb, ub, to_numpy(c).size)
    if sol.status in (Status.OPTIMAL, Status.INFEASIBLE):
        pr, du, gap = residuals(sol.x, sol.v, sol.v_eq, sol.v_lb, sol.v_ub, c, A, b, A_eq,
                                b_eq, lo, hi, tol)
        info += f"\n  recomputed: primal={pr:.2e} dual={du:.2e} gap={gap:.2e} (tol {tol:.0e})"
    if sol.status == Status.OPTIMAL:
        assert max(pr, du, gap) <= 2 * tol, "certificate not within tol" + info
        err = abs(float(sol.fun) - ref.fun) / max(1.0, abs(ref.fun))
        assert err <= OBJ_TOLS * tol, \
            f"objective differs from HiGHS by {err:.2e} > {OBJ_TOLS} tol" + info
        if check_x:
            x = to_numpy(sol.x)
            np.testing.assert_allclose(x, ref.x, rtol=0,
                                       atol=X_TOLS * tol * max(1, np.abs(ref.x).max()),
                                       err_msg="x differs from HiGHS" + info)
    elif sol.status == Status.INFEASIBLE:
        assert pr > tol, "an infeasible answer holds a feasible x" + info
    if certificate and sol.status == Status.INFEASIBLE:
        farkas = farkas_ratio(sol, c, A, b, A_eq, b_eq, lo, hi)
        assert farkas <= FARKAS, f"the duals carry no Farkas certificate ({farkas:.2e})" + info
    if certificate and sol.status == Status.UNBOUNDED:
        ray = ray_violation(sol.x, c, A, A_eq, lo, hi)
        assert ray <= RAY, f"x / ||x|| is no ray of decrease ({ray:.2e})" + info
    return ref


# An infeasible answer's duals, normalised to y, must have ||K^T y||_inf <= FARKAS |k^T y|
# with k^T y < 0: then y^T (K x - k) > 0, so no x with ||x||_1 < 1 / FARKAS is feasible.
FARKAS = 0.05
# An unbounded answer's x, normalised to d = x / ||x||_inf, must have c^T d < 0 and
# violate the homogeneous constraints (A d <= 0, A_eq d = 0, bound signs) by at most RAY
# relative to the largest entry of the matrix.
RAY = 1e-3


def farkas_ratio(sol, c, A, b, A_eq, b_eq, lo, hi) -> float:
    """``||K^T y||_inf / -k^T y`` for the duals ``y`` of ``sol`` (inf unless k^T y < 0)."""
    n = to_numpy(c).size
    kty, Kty = 0.0, np.zeros(n)
    for M, rhs, y, sign in ((A, b, sol.v, 1.0), (A_eq, b_eq, sol.v_eq, 1.0)):
        if M is not None:
            y, rhs = to_numpy(y), to_numpy(rhs)
            Kty += to_numpy(M).T @ y
            kty += rhs[np.isfinite(rhs)] @ y[np.isfinite(rhs)]
    for bnd, y, sign in ((lo, sol.v_lb, -1.0), (hi, sol.v_ub, 1.0)):
        y, fin = to_numpy(y), np.isfinite(bnd)
        Kty += sign * y
        kty += sign * (bnd[fin] @ y[fin])
    return np.abs(Kty).max() / -kty if kty < 0 else np.inf


def ray_violation(x, c, A, A_eq, lo, hi) -> float:
    """How far ``d = x / ||x||_inf`` is from a ray of decrease (inf unless c^T d < 0)."""
    x = to_numpy(x)
    d = x / max(np.abs(x).max(), np.finfo(float).tiny)
    if not to_numpy(c) @ d < 0:
        return np.inf
    viol, scale = [np.zeros(1)], 1.0
    if A is not None:
        A = to_numpy(A)
        viol.append(np.clip(A @ d, 0, None))
        scale = max(scale, np.abs(A).max())
    if A_eq is not None:
        A_eq = to_numpy(A_eq)
        viol.append(np.abs(A_eq @ d))
        scale = max(scale, np.abs(A_eq).max())
    viol += [np.clip(-d, 0, None)[np.isfinite(lo)], np.clip(d, 0, None)[np.isfinite(hi)]]
    return np.concatenate(viol).max() / scale


def random_lp(m=10, n=4, seed=0, *, batch=None, dtype=F64, eq=0, box=None, density=None,
              cost="dual", interior="normal", layout="strided"):
    """A random LP ``min c^T x, A x <= b [, A_eq x = b_eq, lb <= x <= ub]`` as a dict of
    tensors named as :class:`sparselp.LinearProgram` (and :func:`highs`) take them.

    Feasible: ``b = A x0 + slack`` with a strictly positive slack (and ``b_eq = A_eq x0``).
    ``cost="dual"``: ``c = -A^T v`` with a random sparse ``v >= 0``, so the LP is bounded
    and its optimum generic (a unique vertex); ``cost="random"``: ``c`` standard normal,
    bounded only by a ``box``. ``box``: bounds ``x0 +- box`` (a float), or the symmetric
    ``(-box[0], box[0])`` for a 1-tuple. ``interior="uniform"`` draws ``x0`` in [0, 1)
    (feasible for ``x >= 0``). ``density`` keeps that fraction of the entries of ``A``;
    ``layout`` is "strided", "coo" or "csr" (2-D only).
    """
    g = torch.Generator().manual_seed(seed)
    shape = (batch,) if batch else ()
    A = torch.randn(*shape, m, n, generator=g, dtype=dtype)
    if interior == "uniform":
        x0 = torch.rand(*shape, n, generator=g, dtype=dtype)
    else:
        x0 = torch.randn(*shape, n, generator=g, dtype=dtype)
    slack = torch.rand(*shape, m, generator=g, dtype=dtype)
    v = torch.rand(*shape, m, generator=g, dtype=dtype) * (torch.rand(*shape, m, generator=g) < 0.6)
    if density is not None:
        A = A * (torch.rand(*shape, m, n, generator=g) < density)
    b = (A @ x0.unsqueeze(-1)).squeeze(-1) + slack
    c = -(A.transpose(-1, -2) @ v.unsqueeze(-1)).squeeze(-1) if cost == "dual" else \
        torch.randn(*shape, n, generator=g, dtype=dtype)
    out = dict(c=c, A=A, b=b)
    if eq:
        E = torch.randn(*shape, eq, n, generator=g, dtype=dtype)
        out.update(A_eq=E, b_eq=(E @ x0.unsqueeze(-1)).squeeze(-1))
    if isinstance(box, tuple):
        out.update(lb=-box[0], ub=box[0])
    elif box is not None:
        out.update(lb=x0 - box, ub=x0 + box)
    if layout != "strided":
        out["A"] = A.to_sparse_coo() if layout == "coo" else A.to_sparse_csr()
    return out


def element(p: dict, i: int) -> dict:
    """Batch element ``i`` of a batched :func:`random_lp` dict (scalars and shared 2-D
    matrices are kept)."""
    out = {}
    for k, t in p.items():
        shared = not isinstance(t, torch.Tensor) or (k in ("A", "A_eq") and t.dim() == 2) \
            or (k not in ("A", "A_eq") and t.dim() == 1)
        out[k] = t if shared else (t.to_dense()[i] if t.layout != torch.strided else t[i])
    return out


def mixed_status_lp(m=20, n=5, seed=0, layout="strided", dtype=F64):
    """A batch of three LPs on one matrix: optimal, infeasible and unbounded, in that order.

    ``A = [A0; a; -a]`` with every row of ``A0`` making a non-positive product with a
    direction ``d0`` and ``a`` orthogonal to it, so ``d0`` is a recession direction.
    Element 0: ``b`` from an interior point, ``c = -A0^T v`` (bounded); element 1: the
    pair asks ``a x <= a x0 - 1`` and ``a x >= a x0 + 1`` (infeasible); element 2:
    ``c = -d0`` (unbounded). "strided" and "coo" give a (3, m + 2, n) matrix, "csr" one
    (m + 2, n) matrix shared by the batch.
    """
    g = torch.Generator().manual_seed(seed)
    d0 = torch.randn(n, generator=g, dtype=dtype)
    A0 = torch.randn(m, n, generator=g, dtype=dtype)
    A0 = A0 * torch.where(A0 @ d0 > 0, -1.0, 1.0).to(dtype).unsqueeze(-1)
    a = torch.randn(n, generator=g, dtype=dtype)
    a = a - (a @ d0) / (d0 @ d0) * d0
    A = torch.cat([A0, a[None], -a[None]])
    x0 = torch.randn(n, generator=g, dtype=dtype)
    slack = torch.rand(m, generator=g, dtype=dtype)
    v = torch.rand(m, generator=g, dtype=dtype) * (torch.rand(m, generator=g) < 0.6)
    ax = a @ x0
    b_ok = torch.cat([A0 @ x0 + slack, torch.stack([ax + 1, 1 - ax])])
    b_bad = torch.cat([A0 @ x0 + slack, torch.stack([ax - 1, -1 - ax])])
    c_ok = -(A0.T @ v)
    c = torch.stack([c_ok, c_ok, -d0])
    b = torch.stack([b_ok, b_bad, b_ok])
    if layout == "csr":
        return dict(c=c, A=A.to_sparse_csr(), b=b)
    A3 = A.expand(3, -1, -1).contiguous()
    return dict(c=c, A=A3.to_sparse_coo() if layout == "coo" else A3, b=b)


def stacked_operator(B=5, m=7, n=4, seed=0, shared=False):
    """A stack of a dense part and two bound-row parts (one scaled), and its generator."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(1 if shared else B, m, n, generator=g, dtype=F64)
    lb_idx, ub_idx = torch.tensor([0, 2]), torch.tensor([1, 2, 3])
    parts = [DenseOperator(A, B),
             SelectionOperator(lb_idx, n, -1.0, B, F64, "cpu",
                               torch.rand(B, 2, generator=g, dtype=F64) + 0.5),
             SelectionOperator(ub_idx, n, 1.0, B, F64, "cpu")]
    return StackedOperator(parts), g
