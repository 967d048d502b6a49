"""Row-separable LPs (at most one nonzero per row): the per-coordinate exact line search.

Every row touches one column, so the Newton Hessian is diagonal and the ALM subproblem
splits per coordinate; the solver then takes one exact step per coordinate
(:func:`sparselp.linesearch.separable_step`) and starts from sigma = tau = 1/tol. Each
answer is compared with HiGHS, for inequalities, equalities, bounds, infeasible and
unbounded columns, batches and both precisions.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import sparselp
from sparselp.linesearch import RowKinds, separable_step
from sparselp.operators import SparseOperator
from lpcheck import assert_matches_highs


def _separable(n, rows_per_col, rng, feasible=True):
    """A random row-separable A (m, n) and b such that the LP is feasible and bounded."""
    cols = np.repeat(np.arange(n), rows_per_col)
    m = cols.size
    vals = rng.choice([-1.0, 1.0], m) * rng.uniform(0.2, 5.0, m)
    A = sp.csr_array((vals, (np.arange(m), cols)), shape=(m, n))
    x0 = rng.normal(size=n)
    b = A @ x0 + rng.uniform(0.0, 2.0, m)
    if not feasible:
        j = 0  # column 0: x <= -1 and x >= 1 in its own rows
        A = sp.vstack([A, sp.csr_array(([1.0, -1.0], ([0, 1], [j, j])), shape=(2, n))]).tocsr()
        b = np.concatenate([b, [-1.0, -1.0]])
    return A, b


def _torch_csr(A, dtype):
    A = A.tocsr()
    return torch.sparse_csr_tensor(torch.from_numpy(A.indptr).long(),
                                   torch.from_numpy(A.indices).long(),
                                   torch.from_numpy(A.data).to(dtype), A.shape,
                                   check_invariants=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", range(4))
def test_random_separable_matches_highs(dtype, seed):
    rng = np.random.default_rng(seed)
    n = 60
    A, b = _separable(n, rng.integers(1, 4, n), rng)
    # A column the rows bound from one side only: its cost must push it into that side.
    c = (A.T @ rng.uniform(0.1, 1.0, A.shape[0]))  # c = -A^T y, y < 0: bounded below
    c = -c
    sol = sparselp.solve(sparselp.LinearProgram(torch.tensor(c, dtype=dtype),
                                                _torch_csr(A, dtype), torch.tensor(b, dtype=dtype)))
    assert sol.linear_solver == "diagonal"
    assert_matches_highs(sol, c, A, b, check_x=True)


def test_separable_with_equalities_bounds_and_batch():
    rng = np.random.default_rng(7)
    n, B = 40, 3
    A, b = _separable(n, np.ones(n, dtype=int), rng)
    Aeq = sp.csr_array((rng.uniform(1, 2, 5), (np.arange(5), np.arange(5))), shape=(5, n))
    beq = rng.normal(size=5)
    C = rng.normal(size=(B, n))
    lb = np.full(n, -3.0)
    ub = np.full(n, 4.0)
    lp = sparselp.LinearProgram(torch.tensor(C), _torch_csr(A, torch.float64), torch.tensor(b),
                                _torch_csr(Aeq, torch.float64), torch.tensor(beq),
                                lb=torch.tensor(lb), ub=torch.tensor(ub))
    sol = sparselp.solve(lp)
    for i in range(B):
        assert_matches_highs(sol[i], C[i], A, b, Aeq, beq, bounds=list(zip(lb, ub)),
                             check_x=True)


def test_separable_infeasible_and_unbounded_are_certified():
    rng = np.random.default_rng(3)
    A, b = _separable(20, np.ones(20, dtype=int), rng, feasible=False)
    c = np.ones(20)
    sol = sparselp.solve(sparselp.LinearProgram(torch.tensor(c), _torch_csr(A, torch.float64),
                                                torch.tensor(b), lb=-10, ub=10))
    assert_matches_highs(sol, c, A, b, bounds=(-10, 10))
    # x_0 has no row bounding it from below and costs 1 per unit: unbounded.
    A2 = sp.csr_array(([1.0, 1.0], ([0, 1], [0, 1])), shape=(2, 3))
    c2 = np.array([1.0, -1.0, 0.0])
    sol = sparselp.solve(sparselp.LinearProgram(torch.tensor(c2), _torch_csr(A2, torch.float64),
                                                torch.tensor([1.0, 1.0], dtype=torch.float64),
                                                lb=torch.tensor([-np.inf, -5.0, 0.0], dtype=torch.float64)))
    assert_matches_highs(sol, c2, A2, [1.0, 1.0], bounds=[(None, None), (-5, None), (0, None)])


def test_separable_step_is_the_exact_coordinate_minimiser():
    """After one step, each coordinate's derivative along d is zero (or t is at a kink)."""
    g = torch.Generator().manual_seed(0)
    n, r = 50, 3
    rows = torch.arange(n * r)
    cols = torch.arange(n).repeat_interleave(r)
    vals = torch.randn(n * r, generator=g, dtype=torch.float64)
    K = SparseOperator(rows, cols, vals, n * r, n, 1, shared=True)
    kinds = RowKinds(torch.zeros(n * r, dtype=torch.bool), torch.float64)
    u = torch.randn(1, n * r, generator=g, dtype=torch.float64)
    c = torch.randn(1, n, generator=g, dtype=torch.float64)
    sigma = torch.tensor([[3.0]], dtype=torch.float64)
    tau = 2.0
    x, xk = torch.zeros(1, n, dtype=torch.float64), torch.zeros(1, n, dtype=torch.float64)
    grad = c + K.rmv(kinds.proj(u))
    d = -grad / (sigma * K.sq_rmv(kinds.active(kinds.proj(u))) + 1 / tau)
    t, v = separable_step(K, u, sigma, kinds, d, grad * d, c * d, d * d / tau,
                          torch.ones(1, dtype=torch.bool))

    def phi(z):  # the coordinate-separable objective at x + z * d
        w = u + sigma * K.mv(z * d)
        return (c * (x + z * d)).sum() + (w.clamp_min(0) ** 2).sum() / (2 * sigma) \
            + ((x + z * d - xk) ** 2).sum() / (2 * tau)
    base = phi(t)
    for h in (1e-4, -1e-4):
        for j in range(0, n, 7):
            e = torch.zeros_like(t)
            e[0, j] = h
            assert phi(t + e) >= base - 1e-12, f"coordinate {j} is not at its minimiser"
    torch.testing.assert_close(v, u + sigma * K.mv(t * d))
