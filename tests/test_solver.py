"""The Newton solver against HiGHS: random dense/sparse, feasible/infeasible/unbounded LPs."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, HealthCheck, strategies as st

from sparselp import LinearProgram, Status, solve
from lpcheck import assert_matches_highs, element, random_lp


def boxed_lp(m, n, seed, dtype=torch.float64, sparse=False, box=5.0):
    """A random c over a feasible polytope cut by the box [-box, box]^n (so bounded)."""
    return random_lp(m, n, seed, dtype=dtype, cost="random", interior="uniform", box=(box,),
                     density=0.3 if sparse else None, layout="coo" if sparse else "strided")


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed", range(3))
def test_random_bounded(sparse, dtype, seed):
    p = boxed_lp(40, 12, seed, dtype, sparse)
    assert_matches_highs(solve(LinearProgram(**p)), **p)


@pytest.mark.parametrize("solver", ["cholesky", "cg", "scipy"])
def test_linear_solvers_agree(solver):
    p = boxed_lp(60, 15, 7, sparse=True, box=3.0)
    sol = solve(LinearProgram(**p), linear_solver=solver)
    assert sol.linear_solver == solver
    assert_matches_highs(sol, **p, check_x=True)


def test_equalities_and_one_sided_bounds():
    g = torch.Generator().manual_seed(3)
    n = 10
    A = torch.randn(15, n, generator=g, dtype=torch.float64)
    Aeq = torch.randn(3, n, generator=g, dtype=torch.float64)
    x0 = torch.rand(n, generator=g, dtype=torch.float64)
    b, beq = A @ x0 + 1, Aeq @ x0
    c = torch.rand(n, generator=g, dtype=torch.float64)
    sol = solve(LinearProgram(c, A, b, Aeq, beq, lb=0.0))
    ref = assert_matches_highs(sol, c, A, b, Aeq, beq, lb=0.0)
    # duals: stationarity with the bound duals, and d fun / d b = -v matches HiGHS marginals
    np.testing.assert_allclose(-sol.v.numpy(), ref.ineqlin.marginals, atol=1e-6)
    np.testing.assert_allclose(-sol.v_eq.numpy(), ref.eqlin.marginals, atol=1e-6)


def test_infeasible():
    g = torch.Generator().manual_seed(1)
    A = torch.randn(20, 6, generator=g, dtype=torch.float64)
    a = torch.randn(1, 6, generator=g, dtype=torch.float64)
    A = torch.cat([A, a, -a])            # a x <= -1 and a x >= 1
    b = torch.cat([torch.rand(20, generator=g, dtype=torch.float64) + 1,
                   torch.tensor([-1.0, -1.0], dtype=torch.float64)])
    c = torch.randn(6, generator=g, dtype=torch.float64)
    sol = solve(LinearProgram(c, A, b))
    assert_matches_highs(sol, c, A, b)
    assert not sol.success


def test_unbounded():
    g = torch.Generator().manual_seed(2)
    A = -torch.rand(12, 5, generator=g, dtype=torch.float64)   # A d <= 0 for every d >= 0
    b = torch.rand(12, generator=g, dtype=torch.float64)
    c = -torch.ones(5, dtype=torch.float64)
    sol = solve(LinearProgram(c, A, b))
    assert_matches_highs(sol, c, A, b)


def test_batched_matches_elementwise():
    p = random_lp(30, 8, 0, batch=3, cost="random", interior="uniform", box=(2.0,))
    sol = solve(LinearProgram(**p))
    assert sol.x.shape == (3, 8) and len(sol.status) == 3
    for i, s in enumerate(sol):
        assert_matches_highs(s, **element(p, i))
    # the same batch with a batched sparse A
    sol2 = solve(LinearProgram(**dict(p, A=p["A"].to_sparse())))
    for i, s in enumerate(sol2):
        assert_matches_highs(s, **element(p, i))
    torch.testing.assert_close(sol2.fun, sol.fun, rtol=1e-7, atol=1e-7)


def test_shared_matrix_batch():
    p = boxed_lp(30, 8, 11, sparse=True, box=1.0)
    p["c"] = torch.stack([p["c"], -p["c"]])
    sol = solve(LinearProgram(**p))
    for i in range(2):
        assert_matches_highs(sol[i], **element(p, i))


def test_diagonal_path_closed_form():
    """Row-separable A (binary-AUC structure): min 1^T z, z >= 0, z >= d -> z = max(0, d)."""
    g = torch.Generator().manual_seed(0)
    p = 50
    d = torch.randn(p, generator=g, dtype=torch.float64)
    eye = torch.sparse_coo_tensor(torch.stack([torch.arange(p), torch.arange(p)]),
                                  -torch.ones(p, dtype=torch.float64), (p, p),
                                  check_invariants=True)
    A = torch.cat([eye, eye]).coalesce()
    b = torch.cat([torch.zeros(p, dtype=torch.float64), -d])
    sol = solve(LinearProgram(torch.ones(p, dtype=torch.float64), A, b))
    assert sol.linear_solver == "diagonal"
    assert sol.status == Status.OPTIMAL
    torch.testing.assert_close(sol.x, d.clamp_min(0), atol=1e-7, rtol=0)


def test_status_downgraded_when_not_converged():
    p = boxed_lp(40, 12, 0)
    sol = solve(LinearProgram(**p), max_iter=2)
    assert sol.status == Status.ITERATION_LIMIT
    assert "max_iter" in sol.message
    assert max(float(sol.primal_residual), float(sol.dual_residual), float(sol.gap)) > 1e-8


def test_penalty_method_reaches_optimum():
    p = boxed_lp(40, 10, 5)
    sol = solve(LinearProgram(**p), method="penalty", tol=1e-6)
    assert_matches_highs(sol, **p, tol=1e-6)


def test_unknown_option_rejected():
    p = boxed_lp(5, 2, 0)
    c, A, b = p["c"], p["A"], p["b"]
    with pytest.raises(TypeError, match=r"unknown solver option\(s\) \['tolerance'\]"):
        solve(LinearProgram(c, A, b), tolerance=1e-3)
    with pytest.raises(ValueError, match="method must be 'alm' or 'penalty'"):
        solve(LinearProgram(c, A, b), method="simplex")
    with pytest.raises(ValueError, match="linear_solver must be"):
        solve(LinearProgram(c, A, b), linear_solver="lu")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 8), n=st.integers(1, 5), seed=st.integers(0, 10_000),
       integer=st.booleans())
def test_property_matches_highs(m, n, seed, integer):
    """Any small LP with a box: same status as HiGHS, same objective; OPTIMAL => certified."""
    rng = np.random.default_rng(seed)
    A = rng.integers(-3, 4, (m, n)).astype(float) if integer else rng.normal(size=(m, n))
    b = rng.integers(-3, 4, m).astype(float) if integer else rng.normal(size=m)
    c = rng.normal(size=n)
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    sol = solve(LinearProgram(t(c), t(A), t(b), lb=-4.0, ub=4.0))
    if sol.status == Status.OPTIMAL:
        assert max(float(sol.primal_residual), float(sol.dual_residual), float(sol.gap)) <= 1e-8
    assert_matches_highs(sol, c, A, b, lb=-4.0, ub=4.0)


def test_small_cpu_solves_run_on_one_thread_and_restore_the_count(monkeypatch):
    """serial_if_small: one intra-op thread inside a small CPU solve (a waiting OpenMP
    thread costs milliseconds per CSR product on a loaded machine), the caller's count
    after it, also when the solve raises; a large LP keeps every thread."""
    import sparselp.solver as solver_mod
    from sparselp import LinearProgram

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        lp = LinearProgram(torch.ones(3, dtype=torch.float64),
                           -torch.eye(3, dtype=torch.float64),
                           torch.zeros(3, dtype=torch.float64))
        with solver_mod.serial_if_small(lp):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"):
            with solver_mod.serial_if_small(lp):
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(solver_mod, "SERIAL_SIZE", 4)  # the same LP is now "large"
        with solver_mod.serial_if_small(lp):
            assert torch.get_num_threads() == 2
        seen = []
        monkeypatch.setattr(solver_mod, "SERIAL_SIZE", 1 << 15)
        real = solver_mod._solve
        monkeypatch.setattr(solver_mod, "_solve",
                            lambda p, o, *w: seen.append(torch.get_num_threads()) or real(p, o, *w))
        sol = solver_mod.solve(lp)
        assert seen == [1] and sol.status.name == "OPTIMAL" and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
