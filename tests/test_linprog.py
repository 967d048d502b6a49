"""The scipy-style facade: argument names, default bounds, status codes and marginals."""
import numpy as np
import pytest
import scipy.sparse as sp

from sparselp import linprog

from lpcheck import highs, random_lp


def problem(seed=0, m=25, n=8):
    """A feasible LP for the default bounds x >= 0, bounded, with two equality rows."""
    p = random_lp(m, n, seed, eq=2, interior="uniform")
    return tuple(p[k].numpy() for k in ("c", "A", "b", "A_eq", "b_eq"))


@pytest.mark.parametrize("sparse", [False, True])
def test_default_bounds_and_marginals(sparse):
    c, A, b, Aeq, beq = problem()
    A_in = sp.csr_array(A) if sparse else A
    ours = linprog(c, A_ub=A_in, b_ub=b, A_eq=Aeq, b_eq=beq)
    ref = highs(c, A, b, Aeq, beq, lb=0.0)
    assert ours.status == ref.status == 0 and ours.success
    assert abs(ours.fun - ref.fun) <= 1e-7 * max(1, abs(ref.fun))
    np.testing.assert_allclose(ours.ineqlin.marginals, ref.ineqlin.marginals, atol=1e-6)
    np.testing.assert_allclose(ours.eqlin.marginals, ref.eqlin.marginals, atol=1e-6)
    np.testing.assert_allclose(ours.lower.marginals, ref.lower.marginals, atol=1e-6)
    assert ours.nit > 0 and isinstance(ours.message, str)
    np.testing.assert_allclose(ours.ineqlin.residual, b - A @ ours.x, atol=1e-12)



def test_x0_a_guess_of_the_optimum_is_certified_at_once():
    """scipy's x0: HiGHS's optimal vertex as the guess gives HiGHS's answer with no Newton
    step (the active set is read off the tight rows); a poor guess the same answer."""
    c, A, b, Aeq, beq = problem(2)
    ref = highs(c, A, b, Aeq, beq, lb=0.0)
    cold = linprog(c, A_ub=A, b_ub=b, A_eq=Aeq, b_eq=beq)
    warm = linprog(c, A_ub=A, b_ub=b, A_eq=Aeq, b_eq=beq, x0=ref.x)
    assert cold.status == warm.status == 0 and cold.nit > 0 and warm.nit == 0
    assert abs(warm.fun - ref.fun) <= 1e-9 * max(1, abs(ref.fun))
    np.testing.assert_allclose(warm.ineqlin.marginals, ref.ineqlin.marginals, atol=1e-8)
    poor = linprog(c, A_ub=A, b_ub=b, A_eq=Aeq, b_eq=beq, x0=np.full(c.size, 5.0))
    assert poor.status == 0 and abs(poor.fun - ref.fun) <= 1e-7 * max(1, abs(ref.fun))
    with pytest.raises(ValueError, match="x0 must have shape"):
        linprog(c, A_ub=A, b_ub=b, x0=ref.x[:-1])

def test_bounds_with_none_per_variable():
    c, A, b, _, _ = problem(1, n=3)
    # x0 in [0, 1)^3 meets the first two bounds; moving x0_2 to 0.5 changes A x0 by less
    # than |A[:, 2]|, which the raised b absorbs: the LP is feasible (and c = -A^T v with
    # v >= 0 keeps it bounded), so the objective check always runs.
    b = b + np.abs(A[:, 2])
    bounds = [(None, 2), (-1, None), (0.5, 0.5)]
    ours = linprog(c, A_ub=A, b_ub=b, bounds=bounds)
    ref = highs(c, A, b, bounds=bounds)
    assert ref.status == 0, ref.message
    assert ours.status == 0, ours.message
    assert abs(ours.fun - ref.fun) <= 1e-7 * max(1, abs(ref.fun))
    assert ours.x[2] == pytest.approx(0.5, abs=1e-9)
    assert ours.x[0] <= 2 + 1e-9 and ours.x[1] >= -1 - 1e-9


@pytest.mark.parametrize("case,code", [("infeasible", 2), ("unbounded", 3)])
def test_status_codes(case, code):
    if case == "infeasible":
        args = dict(c=[1, 1], A=[[1, 1], [-1, -1]], b=[-1, -1])
    else:
        args = dict(c=[-1, 0], A=[[0, 1]], b=[1])
    res = linprog(args["c"], A_ub=args["A"], b_ub=args["b"])
    ref = highs(**args, lb=0.0)
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
