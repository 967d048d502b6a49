"""The scipy-style facade: argument names, default bounds, status codes and marginals."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog as scipy_linprog

from sparselp import linprog


def problem(seed=0, m=25, n=8):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, n))
    x0 = rng.random(n)
    b = A @ x0 + rng.random(m)
    Aeq = rng.normal(size=(2, n))
    return rng.random(n) - 0.3, A, b, Aeq, Aeq @ x0


@pytest.mark.parametrize("sparse", [False, True])
def test_default_bounds_and_marginals(sparse):
    c, A, b, Aeq, beq = problem()
    A_in = sp.csr_array(A) if sparse else A
    ours = linprog(c, A_ub=A_in, b_ub=b, A_eq=Aeq, b_eq=beq)
    ref = scipy_linprog(c, A_ub=A, b_ub=b, A_eq=Aeq, b_eq=beq, method="highs")
    assert ours.status == ref.status == 0 and ours.success
    assert abs(ours.fun - ref.fun) <= 1e-7 * max(1, abs(ref.fun))
    np.testing.assert_allclose(ours.ineqlin.marginals, ref.ineqlin.marginals, atol=1e-6)
    np.testing.assert_allclose(ours.eqlin.marginals, ref.eqlin.marginals, atol=1e-6)
    np.testing.assert_allclose(ours.lower.marginals, ref.lower.marginals, atol=1e-6)
    assert ours.nit > 0 and isinstance(ours.message, str)
    np.testing.assert_allclose(ours.ineqlin.residual, b - A @ ours.x, atol=1e-12)


def test_bounds_with_none_per_variable():
    c, A, b, _, _ = problem(1, n=3)
    bounds = [(None, 2), (-1, None), (0.5, 0.5)]
    ours = linprog(c, A_ub=A, b_ub=b, bounds=bounds)
    ref = scipy_linprog(c, A_ub=A, b_ub=b, bounds=bounds, method="highs")
    assert ours.status == ref.status
    if ref.status == 0:
        assert abs(ours.fun - ref.fun) <= 1e-7 * max(1, abs(ref.fun))


@pytest.mark.parametrize("case,code", [("infeasible", 2), ("unbounded", 3)])
def test_status_codes(case, code):
    if case == "infeasible":
        res = linprog([1, 1], A_ub=[[1, 1], [-1, -1]], b_ub=[-1, -1])
    else:
        res = linprog([-1, 0], A_ub=[[0, 1]], b_ub=[1])
    ref = scipy_linprog(*([[1, 1]] if case == "infeasible" else [[-1, 0]]),
                        A_ub=[[1, 1], [-1, -1]] if case == "infeasible" else [[0, 1]],
                        b_ub=[-1, -1] if case == "infeasible" else [1], method="highs")
    assert res.status == ref.status == code
    assert not res.success


def test_iteration_limit_code():
    c, A, b, _, _ = problem(2)
    res = linprog(c, A_ub=A, b_ub=b, options={"max_iter": 1})
    assert res.status == 1 and not res.success


def test_highs_reference_batched_statuses_duals_and_signs():
    """sparselp.reference.highs_solve on a batch: closed-form answers, Status, v >= 0."""
    import torch

    from sparselp import LinearProgram, Status
    from sparselp.reference import highs_solve

    f64 = dict(dtype=torch.float64)
    A = torch.tensor([[1.0], [-1.0]], **f64)       # x <= b_0, -x <= b_1
    b = torch.tensor([[5.0, -1.0], [-1.0, -1.0]], **f64)  # 1 <= x <= 5; x <= -1 and x >= 1
    ref = highs_solve(LinearProgram(torch.ones(2, 1, **f64), A, b))
    assert ref.status == [Status.OPTIMAL, Status.INFEASIBLE]
    assert ref.x.shape == (2, 1) and ref.x.dtype == torch.float64
    assert float(ref.x[0, 0]) == pytest.approx(1.0) and ref.fun[0] == pytest.approx(1.0)
    # d fun / d b_1 = -1 (raising b_1 lowers the bound x >= -b_1), so v_1 = 1, v_0 = 0.
    np.testing.assert_allclose(ref.v[0].numpy(), [0.0, 1.0], atol=1e-12)
    assert bool(torch.isnan(ref.x[1]).all()) and not bool(ref.v[1].any())
    assert "infeasible" in ref.message[1].lower()
