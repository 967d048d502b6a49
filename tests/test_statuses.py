"""Batches that mix outcomes, and the options that change an outcome.

Every element of a batch gets its own status, and each is compared with HiGHS: the
status, and for an optimal element its certificate and objective
(:func:`lpcheck.assert_matches_highs`), for an infeasible or unbounded one the ray
that its returned duals or primal point along.
"""
from __future__ import annotations

import pytest
import torch

from sparselp import LinearProgram, Status, solve

from lpcheck import assert_matches_highs, element, mixed_status_lp, random_lp, residuals


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("layout", ["strided", "coo", "csr"])
def test_batch_mixing_optimal_infeasible_unbounded(layout, dtype):
    p = mixed_status_lp(layout=layout, dtype=dtype)
    sol = solve(LinearProgram(**p))
    assert sol.status == [Status.OPTIMAL, Status.INFEASIBLE, Status.UNBOUNDED], sol.message
    # These LPs drive the iterates far along their certificates (measured: Farkas ratio
    # <= 0.009, ray violation <= 9e-5), so the returned pair shows them.
    for i in range(3):
        assert_matches_highs(sol[i], **element(p, i), certificate=True)
    assert sol.success.tolist() == [True, False, False]


def test_mixed_batch_matches_its_elements_solved_alone():
    p = mixed_status_lp(seed=1)
    sol = solve(LinearProgram(**p))
    for i in range(3):
        alone = solve(LinearProgram(**element(p, i)))
        assert alone.status == sol.status[i]
        if alone.status == Status.OPTIMAL:
            torch.testing.assert_close(sol.fun[i], alone.fun, rtol=1e-7, atol=1e-8)


def test_numerical_error_beside_an_optimal_element():
    """An optimal value beyond the floating range: NUMERICAL_ERROR for that element only."""
    F = torch.float64
    big = torch.finfo(F).max / 4
    A = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=F)
    b = torch.ones(2, dtype=F)
    c = torch.tensor([[1.0, 2.0], [big, -big]], dtype=F)
    lb = torch.tensor([[-1.0, -1.0], [-big, -big]], dtype=F)
    sol = solve(LinearProgram(c, A, b, lb=lb, ub=-lb))
    assert sol.status == [Status.OPTIMAL, Status.NUMERICAL_ERROR], sol.message
    assert "non-finite" in sol.message[1]
    assert_matches_highs(sol[0], c[0], A, b, lb=lb[0], ub=-lb[0])
    # HiGHS fails on it as well (min x0 - x1 reaches -2 big, times big overflows).
    assert_matches_highs(sol[1], c[1], A, b, lb=lb[1], ub=-lb[1])


def test_time_limit_stops_with_true_residuals_in_the_message():
    p = random_lp(40, 10, 0, eq=2, box=0.5)
    sol = solve(LinearProgram(**p), time_limit=1e-9)
    assert sol.status == Status.ITERATION_LIMIT and sol.outer_iterations == 1
    assert sol.message.startswith("time limit of 1e-09 s reached; worst relative residual")
    # The residuals reported are those of the point returned, and above tol.
    got = residuals(sol.x, sol.v, sol.v_eq, sol.v_lb, sol.v_ub, p["c"], p["A"], p["b"],
                    p["A_eq"], p["b_eq"], p["lb"].numpy(), p["ub"].numpy())
    reported = (float(sol.primal_residual), float(sol.dual_residual), float(sol.gap))
    assert got == pytest.approx(reported, rel=1e-9)
    assert max(reported) > 1e-8
    assert_matches_highs(solve(LinearProgram(**p), time_limit=60.0), **p)


@pytest.mark.parametrize("seed", range(2))
def test_polish_option(seed):
    p = random_lp(40, 10, seed, eq=2, box=0.5)
    plain = solve(LinearProgram(**p), polish=False)
    polished = solve(LinearProgram(**p), polish=True)
    assert not bool(plain.polished) and bool(polished.polished)
    for sol in (plain, polished):
        assert_matches_highs(sol, **p, check_x=True)
    # The active-set re-solve lands on the vertex: fewer Newton steps than without it.
    assert polished.nit < plain.nit


def test_infeasible_with_a_descent_ray_is_infeasible_not_unbounded():
    """scipy's "enzo example c with infeasibility": no feasible point, and a ray with
    c^T d < 0. Unbounded needs a feasible point, so HiGHS and we say INFEASIBLE."""
    from scipy.optimize import linprog as highs
    m = 50
    c = -torch.ones(m, dtype=torch.float64)
    t = 2 * torch.pi * torch.arange(m, dtype=torch.float64) / (m + 1)
    A_eq = torch.stack([torch.cos(t) - 1, torch.sin(t)])
    b_eq = torch.ones(2, dtype=torch.float64)
    sol = solve(LinearProgram(c, A_eq=A_eq, b_eq=b_eq, lb=0.0))
    ref = highs(c.numpy(), A_eq=A_eq.numpy(), b_eq=b_eq.numpy(), method="highs")
    assert ref.status == 2
    assert sol.status == Status.INFEASIBLE, sol.message


def test_unbounded_patience_is_validated():
    from sparselp import SolverOptions
    with pytest.raises(ValueError, match="unbounded_patience"):
        SolverOptions(unbounded_patience=0)
