"""Mixed precision (:mod:`sparselp.mixed`): float32 solves certified in float64."""
from __future__ import annotations

import types

import torch

import sparselp
from sparselp import Status
from sparselp.formulations import fscore, precision_at_recall
from sparselp.mixed import STALL_PATIENCE, keep_best

import lpcheck
from lpcheck import assert_matches_highs


def _lp(kind, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, generator=g, dtype=torch.float32)
    y = torch.zeros(n, dtype=torch.long)
    y[:n // 5] = 1
    return (fscore if kind == "fscore" else precision_at_recall)(s, y)


def _highs_check(sol, lp):
    eq = lp.A_eq is not None
    return assert_matches_highs(sol, lp.c[0], lp.A.to_scipy(0), lp.b[0],
                                lp.A_eq.to_scipy(0) if eq else None,
                                lp.b_eq[0] if eq else None)


def test_float32_coupled_lps_certified_against_highs():
    """At a batch of 4,096 the float32 residuals' own round-off is at tol: certified only
    because they are measured (and the polish run) in float64; the recomputed float64
    residuals of the returned float32 point are within tol and the objective is HiGHS's."""
    for kind in ("fscore", "precision-at-recall"):
        lp = _lp(kind, 4096)
        sol = sparselp.solve(lp)
        assert sol.x.dtype == torch.float32 and sol.linear_solver == "structured"
        assert sol.status == Status.OPTIMAL, sol.message
        _highs_check(sol, lp)


def test_term_scaled_residuals_certify_float32_at_65536():
    """The t column of the F-score LP sums n terms: at 65,536 scores even the float64
    optimum rounded to float32 has a plain dual residual of 4e-5 > tol, and the solve
    ended ITERATION_LIMIT. Term-scaled (a backward error) the rounded optimum is at 1e-8:
    certified at the closed-form optimum (HiGHS takes minutes on this LP; it checks the
    smaller ones). The plain residual of the returned pair sits near tol, on either side
    with the summation order of the products (above 1e-5 with the per-part products,
    just below with one CSR of the whole stack): only the term-scaled one is promised."""
    n = 65536
    lp = _lp("fscore", n)
    sol = sparselp.solve(lp)
    assert sol.status == Status.OPTIMAL, sol.message
    data = (sol.x, sol.v, sol.v_eq, sol.v_lb, sol.v_ub, lp.c[0], lp.A.to_scipy(0), lp.b[0],
            lp.A_eq.to_scipy(0), lp.b_eq[0])
    pr, du, gap = lpcheck.residuals(*data)  # float64, term-scaled as the solver promises
    assert max(pr, du, gap) <= 2e-5, (pr, du, gap)
    plain = lpcheck.residuals(*data, tol=1.0)  # plain: never term-scaled
    assert plain[1] <= 1e-4, plain
    s = torch.rand(n, generator=torch.Generator().manual_seed(0), dtype=torch.float32).double()
    u = (0.5 + s / 2).clamp(0, 1)  # relaxed predictions, eps = 1; the first n // 5 positive
    f_star = 2 * u[:n // 5].sum() / (u.sum() + n // 5)
    assert abs(float(sol.fun) + float(f_star)) <= 1e-5 * 10, (float(sol.fun), float(f_star))


def test_without_the_float64_shadow_float32_certifies_by_term_scaled_residuals():
    """In float32 arithmetic alone the term-scaled residuals are measured to their own
    round-off (eps relative to the terms), so the plain float32 solve certifies too."""
    lp = _lp("fscore", 4096)
    sol = sparselp.solve(lp, mixed_precision=False, max_outer=60)
    assert sol.status == Status.OPTIMAL, sol.message
    _highs_check(sol, lp)


def _res(worst):
    w = torch.tensor(worst, dtype=torch.float64)
    return types.SimpleNamespace(primal=w, dual=w, gap=w, worst=w)


def test_keep_best_keeps_the_smallest_worst_residual_and_counts_stalls():
    x = torch.zeros(2, 3)
    best = keep_best(None, x, x, _res([1.0, 1.0]), torch.zeros(2, dtype=torch.bool))
    best = keep_best(best, x + 1, x + 1, _res([0.9, 2.0]), torch.zeros(2, dtype=torch.bool))
    assert best.worst.tolist() == [0.9, 1.0] and best.x[:, 0].tolist() == [1.0, 0.0]
    assert best.since == 1  # 0.9 is not half of 1.0
    best = keep_best(best, x + 2, x + 2, _res([0.4, 2.0]), torch.zeros(2, dtype=torch.bool))
    assert best.since == 0 and best.level.tolist() == [0.4, 1.0]
    # A decided element's progress does not count.
    done = torch.tensor([True, False])
    for _ in range(STALL_PATIENCE):
        best = keep_best(best, x, x, _res([0.01, 2.0]), done)
    assert best.since == STALL_PATIENCE


def test_newton_loop_stops_at_the_float32_floor():
    """The exact line search reports a step that no longer moves x as stalled: the
    float32 precision-at-recall LP at 1,024 took 255 Newton steps (60 per outer step at
    the floor) without it, 26 with it."""
    sol = sparselp.solve(_lp("precision-at-recall", 1024))
    assert sol.status == Status.OPTIMAL and sol.nit <= 60, sol.nit


def test_long_float32_inner_loops_stop_at_the_round_off_of_phi():
    """At 4,096 scores the float32 precision-at-recall LP's threshold column sums 4,096
    terms: its gradient circles at 3e-4..3e-3 against an inner tolerance of 3e-4, and one
    inner loop spent max_inner = 60 steps there (76 Newton steps in all). Late in a long
    inner loop a step below phi's round-off now counts as stalled."""
    lp = _lp("precision-at-recall", 4096)
    sol = sparselp.solve(lp)
    assert sol.status == Status.OPTIMAL, sol.message
    assert sol.nit <= 40, sol.nit
    _highs_check(sol, lp)
