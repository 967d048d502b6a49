"""Presolve and postsolve (sparselp.presolve, ``presolve=True``) against HiGHS: each
reduction alone and together, the statuses it decides itself, and the duals it restores
(checked through the residuals of the original problem)."""
from __future__ import annotations

import pytest
import torch

from sparselp import LinearProgram, SolverOptions, Status, linprog, solve
from sparselp.presolve import presolve

from lpcheck import assert_matches_highs, random_lp

F64 = dict(dtype=torch.float64)


def _with_structure(seed=0, m=12, n=6):
    """A feasible bounded LP plus one of each reducible structure: a fixed variable, an
    empty row, singleton inequality rows (one tightening, one redundant), a singleton
    equality row and an empty column."""
    p = random_lp(m, n, seed, box=2.0)
    A, b, c = p["A"], p["b"], p["c"]
    lb, ub = p["lb"].clone(), p["ub"].clone()
    g = torch.Generator().manual_seed(seed)
    x0 = (lb + ub) / 2
    k = n  # new columns: k = fixed, k+1 = singleton-eq, k+2 = empty column (cost > 0)
    A = torch.cat([A, torch.randn(m, 2, generator=g, **F64), torch.zeros(m, 1, **F64)], 1)
    b = b + A[:, k] * 0.5 + A[:, k + 1] * 0.25
    rows = torch.zeros(4, n + 3, **F64)
    rows[1, 0] = 2.0                      # 2 x_0 <= 2 x0_0 + 0.1: may tighten ub of x_0
    rows[2, 1] = -1.0                     # -x_1 <= 100: redundant
    rows[3, 2] = 3.0                      # 3 x_2 <= 3 * ub_2: equal to the bound
    b_new = torch.tensor([1.0, float(2 * x0[0] + 0.1), 100.0, float(3 * ub[2])], **F64)
    A, b = torch.cat([A, rows]), torch.cat([b, b_new])     # row m is empty (0 <= 1)
    A_eq = torch.zeros(1, n + 3, **F64)
    A_eq[0, k + 1] = 4.0
    b_eq = torch.tensor([1.0], **F64)                      # x_{k+1} = 0.25
    c = torch.cat([c, torch.tensor([1.0, -2.0, 0.5], **F64)])
    lb = torch.cat([lb, torch.tensor([0.5, -5.0, -1.0], **F64)])
    ub = torch.cat([ub, torch.tensor([0.5, 5.0, 3.0], **F64)])
    return dict(c=c, A=A, b=b, A_eq=A_eq, b_eq=b_eq, lb=lb, ub=ub)


@pytest.mark.parametrize("seed", range(4))
def test_every_reduction_together_matches_highs(seed):
    p = _with_structure(seed)
    pre = presolve(LinearProgram(**p))
    assert pre.status is None and pre.removed_columns >= 3 and pre.removed_rows >= 4
    sol = solve(LinearProgram(**p), presolve=True)
    assert "presolve removed" in sol.message
    assert_matches_highs(sol, **p)  # status, objective and the residuals of (x, duals)
    plain = solve(LinearProgram(**p))
    torch.testing.assert_close(sol.fun, plain.fun, rtol=1e-7, atol=1e-8)


def test_duals_are_restored_through_each_kind_of_row():
    """Residuals of the restored pair are within tol only if every removed row and column
    got its multiplier back (a zero dual on a binding singleton row would break them)."""
    c = torch.tensor([-2.0, -1.0, 1.0], **F64)
    A = torch.tensor([[1.0, 0.0, 0.0],     # singleton: x0 <= 1 (binding)
                      [0.0, -2.0, 0.0],    # singleton: x1 >= -1 (slack)
                      [1.0, 1.0, 0.0]], **F64)
    b = torch.tensor([1.0, 2.0, 3.0], **F64)
    A_eq = torch.tensor([[0.0, 0.0, 5.0]], **F64)          # x2 = 1 (fixes it)
    b_eq = torch.tensor([5.0], **F64)
    p = dict(c=c, A=A, b=b, A_eq=A_eq, b_eq=b_eq, lb=torch.full((3,), -10.0, **F64),
             ub=torch.full((3,), 10.0, **F64))
    sol = solve(LinearProgram(**p), presolve=True)
    assert_matches_highs(sol, **p)
    # x = (1, 2, 1): row 0 binds with multiplier 1 (it became x0's bound), row 2 too;
    # the equality 5 x2 = 5 takes the whole cost of x2: 1 + 5 v_eq = 0.
    torch.testing.assert_close(sol.v, torch.tensor([1.0, 0.0, 1.0], **F64), atol=1e-8, rtol=0)
    assert float(sol.v_eq[0]) == pytest.approx(-0.2)


def test_presolve_alone_settles_a_problem_with_zero_iterations():
    c = torch.tensor([1.0, -1.0], **F64)
    A = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], **F64)
    b = torch.tensor([3.0, 2.0, 0.0], **F64)
    p = dict(c=c, A=A, b=b, lb=torch.tensor([-1.0, 0.0], **F64))
    sol = solve(LinearProgram(**p), presolve=True)
    assert sol.nit == 0 and sol.linear_solver == "presolve"
    assert_matches_highs(sol, **p)
    torch.testing.assert_close(sol.x, torch.tensor([-1.0, 2.0], **F64))


@pytest.mark.parametrize("case", ["empty_row", "crossed_after_tightening", "eq_outside",
                                  "eq_empty_row"])
def test_presolve_proves_infeasibility_like_highs(case):
    c = torch.ones(2, **F64)
    lb, ub = torch.zeros(2, **F64), torch.full((2,), 5.0, **F64)
    p = dict(c=c, lb=lb, ub=ub)
    if case == "empty_row":
        p.update(A=torch.tensor([[0.0, 0.0], [1.0, 1.0]], **F64), b=torch.tensor([-1.0, 4.0], **F64))
    elif case == "crossed_after_tightening":
        p.update(A=torch.tensor([[-1.0, 0.0], [1.0, 1.0]], **F64), b=torch.tensor([-7.0, 20.0], **F64))
    elif case == "eq_outside":
        p.update(A_eq=torch.tensor([[0.0, 2.0]], **F64), b_eq=torch.tensor([12.0], **F64))
    else:
        p.update(A_eq=torch.tensor([[0.0, 0.0]], **F64), b_eq=torch.tensor([1.0], **F64))
    sol = solve(LinearProgram(**p), presolve=True)
    assert sol.status == Status.INFEASIBLE and sol.nit == 0 and "presolve" in sol.message
    assert_matches_highs(sol, **p)


@pytest.mark.parametrize("rest_feasible", [True, False])
def test_empty_column_with_an_unbounded_cost(rest_feasible):
    """A variable in no row whose cost points at an infinite bound: UNBOUNDED if the rest
    is feasible, INFEASIBLE if not (unbounded needs a feasible point)."""
    c = torch.tensor([-1.0, 1.0, 1.0], **F64)
    A = torch.tensor([[0.0, 1.0, 1.0], [0.0, -1.0, -1.0]], **F64)
    b = torch.tensor([1.0, -0.5 if rest_feasible else -2.0], **F64)
    p = dict(c=c, A=A, b=b, lb=torch.zeros(3, **F64))
    sol = solve(LinearProgram(**p), presolve=True)
    assert sol.status == (Status.UNBOUNDED if rest_feasible else Status.INFEASIBLE), sol.message
    assert_matches_highs(sol, **p)


@pytest.mark.parametrize("seed", range(6))
def test_random_lps_with_fixed_variables_and_singletons(seed):
    p = random_lp(15, 6, seed, eq=2, box=1.5)
    g = torch.Generator().manual_seed(100 + seed)
    j = int(torch.randint(0, 6, (1,), generator=g))
    p["lb"], p["ub"] = p["lb"].clone(), p["ub"].clone()
    p["ub"][j] = p["lb"][j]  # a fixed variable
    sol = solve(LinearProgram(**p), presolve=True)
    assert_matches_highs(sol, **p)


def test_linprog_takes_the_option_and_batches_ignore_it():
    res = linprog([1, 1], A_ub=[[-1, 0], [0, -1]], b_ub=[-1, -2], options={"presolve": True})
    assert res.status == 0 and res.fun == pytest.approx(3.0) and res.nit == 0
    assert res.ineqlin.marginals.tolist() == pytest.approx([-1.0, -1.0])
    p = random_lp(8, 3, 0, batch=2, box=1.0)
    sol = solve(LinearProgram(**p), presolve=True)
    assert sol.linear_solver != "presolve" and all(s == Status.OPTIMAL for s in sol.status)
    with pytest.raises(ValueError, match="unbatched"):
        presolve(LinearProgram(**p))
    assert SolverOptions().presolve is False


def _with_duplicates(seed=0, m=10, n=5):
    """A feasible bounded LP plus rows parallel to its rows: looser and tighter copies of
    an inequality (scaled by 3 and by -2, the latter flipped into a lower limit that
    holds), and an equality with a consistent inequality and a scaled copy of it."""
    p = random_lp(m, n, seed, box=2.0)
    A, b = p["A"], p["b"]
    x0 = (p["lb"] + p["ub"]) / 2
    eq_row = torch.randn(n, generator=torch.Generator().manual_seed(seed), **F64)
    t = float(eq_row @ x0)
    extra = torch.stack([3 * A[0], 0.5 * A[0], -2 * A[1], eq_row * 2])
    b_extra = torch.tensor([3 * float(b[0]) + 1.0, 0.5 * float(b[0]) - 0.01,
                            -2 * float(b[1]) + 100.0, 2 * t + 1.0], **F64)
    A_eq = torch.stack([eq_row, -4 * eq_row])
    b_eq = torch.tensor([t, -4 * t], **F64)
    return dict(c=p["c"], A=torch.cat([A, extra]), b=torch.cat([b, b_extra]), A_eq=A_eq,
                b_eq=b_eq, lb=p["lb"], ub=p["ub"])


@pytest.mark.parametrize("seed", range(4))
def test_duplicate_rows_are_removed_and_the_duals_restored(seed):
    p = _with_duplicates(seed)
    pre = presolve(LinearProgram(**p))
    # rows 0 and 1 of A lose a copy each (row 0 to its tighter 0.5 copy), the equality
    # its scaled copy, and the inequality parallel to it goes too
    assert pre.status is None and pre.removed_rows >= 4
    sol = solve(LinearProgram(**p), presolve=True)
    assert_matches_highs(sol, **p)  # status, objective, residuals of the restored pair
    m = p["A"].shape[0]
    assert float(sol.v[0]) == 0.0 and float(sol.v[m - 3]) >= 0  # the looser copy: 0
    assert float(sol.v[m - 1]) == 0.0 and float(sol.v_eq[1]) == 0.0


@pytest.mark.parametrize("case", ["equalities", "inequalities", "mixed"])
def test_contradicting_parallel_rows_prove_infeasibility_like_highs(case):
    c = torch.tensor([1.0, 1.0, -1.0], **F64)
    a = torch.tensor([[1.0, 2.0, -1.0]], **F64)
    p = dict(c=c, lb=torch.full((3,), -5.0, **F64), ub=torch.full((3,), 5.0, **F64))
    if case == "equalities":
        p.update(A_eq=torch.cat([a, 2 * a]), b_eq=torch.tensor([1.0, 3.0], **F64))
    elif case == "inequalities":  # a x <= 1 and -3 a x <= -6 (a x >= 2)
        p.update(A=torch.cat([a, -3 * a]), b=torch.tensor([1.0, -6.0], **F64))
    else:  # a x = 1 and 2 a x <= 1
        p.update(A=2 * a, b=torch.tensor([1.0], **F64), A_eq=a,
                 b_eq=torch.tensor([1.0], **F64))
    pre = presolve(LinearProgram(**p))
    assert pre.status == Status.INFEASIBLE and "parallel" in pre.message
    assert_matches_highs(solve(LinearProgram(**p), presolve=True), **p)


def test_parallel_rows_are_found_by_hash_not_by_pairs():
    """10,000 rows in 2,000 groups of 5 multiples, shuffled: every group found, with its
    factors, and no two rows that are not multiples put together."""
    import numpy as np
    import scipy.sparse as sp
    from sparselp.presolve_dup import parallel_groups
    rng = np.random.default_rng(0)
    base = sp.random(2000, 50, density=0.1, random_state=1, format="csr")
    base.data += 0.5  # no zero entries; rows with fewer than 2 entries are skipped
    factors = rng.choice([-3.0, -1.0, 0.5, 2.0, 7.0], (5, 2000))
    M = sp.vstack([sp.diags(f) @ base for f in factors], format="csr")
    perm = rng.permutation(M.shape[0])
    groups = parallel_groups(M[perm])
    counts = np.diff(base.indptr)
    assert len(groups) == int((counts >= 2).sum())
    for rows, alpha in groups:
        orig = perm[rows] % 2000
        assert np.all(orig == orig[0])
        f = factors[perm[rows] // 2000, orig]
        np.testing.assert_allclose(alpha / alpha[0], f / f[0], rtol=1e-12)
