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


@pytest.mark.parametrize("family,seed,status", [
    ("infeasible", 412, 2), ("infeasible", 520, 2), ("infeasible", 5322, 2),
    ("unbounded", 5161, 3), ("unbounded", 5521, 3), ("unbounded", 5557, 3)])
def test_float32_certificate_made_exact_in_float64(family, seed, status):
    """Fuzzed LPs whose float32 certificate stalled at its round-off (||K^T y|| or the
    ray's violation about 1e-7 to 3e-7 against infeasibility_tol 1e-7; iteration limit
    before the float64 refinement) get HiGHS's status."""
    from scipy.optimize import linprog as highs

    from benchmarks.fuzz_lp import make_lp
    from sparselp import linprog

    lp = make_lp(family, seed)
    assert highs(method="highs", **lp).status == status
    res = linprog(**lp, dtype=torch.float32)
    assert res.status == status, res.message


def test_float64_refinement_proves_only_what_is_true(monkeypatch):
    """A near candidate of a feasible system is refused; of a system infeasible by a
    hair (x <= 1 and x >= 1.001, in float32), accepted."""
    from scipy.optimize import linprog as highs

    import sparselp.residuals as R
    from sparselp.residuals import certificates
    from sparselp.scaling import build_rows

    calls = []
    refine = R._farkas_in_float64
    monkeypatch.setattr(R, "_farkas_in_float64", lambda *a: calls.append(1) or refine(*a))

    F = torch.float32
    cases = [  # (A, b, candidate y, infeasible)
        ([[1.0, 0.0], [-1.0, 1e-5]], [1.0, -1.5], [1.0, 1.0], False),  # x2 free: feasible
        ([[1.0, 0.0], [-1.0, 0.0]], [1.0, -1.001], [1.0, 1.0 + 3e-6], True),
    ]
    for A, b, y, infeasible in cases:
        ref = highs([0.0, 0.0], A_ub=A, b_ub=b, bounds=[(None, None)] * 2, method="highs")
        assert (ref.status == 2) == infeasible
        rows = build_rows(LinearProgram(torch.zeros(2, dtype=F), torch.tensor(A, dtype=F),
                                        torch.tensor(b, dtype=F)))
        dv = torch.tensor([y], dtype=F)
        plain, _ = certificates(rows.astype(torch.float64), dv.double(), torch.zeros(1, 2,
                                dtype=torch.float64), 1e-7)
        assert not bool(plain)  # the candidate as it is proves nothing
        got, _ = certificates(rows, dv, torch.zeros(1, 2, dtype=F), 1e-7)
        assert bool(got) == infeasible
    assert len(calls) == 2  # both candidates were near enough to be refined


def test_float64_ray_refinement_proves_only_what_is_true(monkeypatch):
    """A near ray of an unbounded LP is accepted (min -x1 - x2, x1 - x2 <= 0, x free; the
    candidate d = (1, 1 - 3e-6) violates its row by 3e-6); of a bounded one, refused
    (min -x, 1e-5 x <= 1; d = 1 violates it by 1e-5)."""
    from scipy.optimize import linprog as highs

    import sparselp.residuals as R
    from sparselp.residuals import certificates
    from sparselp.scaling import build_rows

    calls = []
    refine = R._ray_in_float64
    monkeypatch.setattr(R, "_ray_in_float64", lambda *a: calls.append(1) or refine(*a))
    F = torch.float32
    cases = [  # (c, A, b, candidate d, unbounded)
        ([-1.0, -1.0], [[1.0, -1.0]], [0.0], [1.0, 1.0 - 3e-6], True),
        ([-1.0], [[1e-5]], [1.0], [1.0], False),
    ]
    for c, A, b, d, unbounded in cases:
        ref = highs(c, A_ub=A, b_ub=b, bounds=[(None, None)] * len(c), method="highs")
        assert (ref.status == 3) == unbounded
        rows = build_rows(LinearProgram(torch.tensor(c, dtype=F), torch.tensor(A, dtype=F),
                                        torch.tensor(b, dtype=F)))
        dx = torch.tensor([d], dtype=F)
        zeros = torch.zeros(1, len(b), dtype=F)
        _, plain = certificates(rows.astype(torch.float64), zeros.double(), dx.double(), 1e-7)
        assert not bool(plain)
        _, got = certificates(rows, zeros, dx, 1e-7)
        assert bool(got) == unbounded
    assert len(calls) == 2
