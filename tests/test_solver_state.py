"""The solver's explicit state: init_state / outer_step / finish, the schedules, the
line-search choice and the limits in SolverOptions."""
import math
from types import SimpleNamespace

import pytest
import torch

from sparselp import LinearProgram, SolverOptions, Status, solve
from sparselp.linesearch import (ArmijoLineSearch, ExactLineSearch, SeparableLineSearch,
                                 make_line_search)
from sparselp.newton import Subproblem, newton_minimise
from sparselp.schedule import (ALMSchedule, PenaltySchedule, SHORTEN,
                              extrapolate_multipliers)
from sparselp.solver import finish, init_state, outer_step

from lpcheck import assert_matches_highs, random_lp


def _lp(seed=0, m=40, n=12):
    """A random c over a feasible polytope boxed by [-1, 1]: (LinearProgram, its data)."""
    p = random_lp(m, n, seed, cost="random", interior="uniform", box=(1.0,))
    return LinearProgram(**p), p


@pytest.mark.parametrize("method", ["alm", "penalty"])
def test_stepping_by_hand_equals_solve(method):
    lp, p = _lp()
    opt = SolverOptions(method=method)
    state = init_state(lp, opt)
    assert state.nit == 0 and state.outer == 0 and state.stop_reason is None
    nits = []
    while state.stop_reason is None:
        state = outer_step(state)
        nits.append(state.nit)
    by_hand, direct = finish(state), solve(lp, opt)
    assert nits == sorted(nits) and state.outer == len(nits)
    assert by_hand.status == direct.status == Status.OPTIMAL
    assert by_hand.nit == direct.nit and by_hand.outer_iterations == direct.outer_iterations
    torch.testing.assert_close(by_hand.x, direct.x, rtol=0, atol=0)
    assert_matches_highs(by_hand, **p)


def test_state_is_not_mutated_by_a_step():
    lp, _ = _lp(1)
    s0 = init_state(lp)
    x0 = s0.x.clone()
    s1 = outer_step(s0)
    assert s1 is not s0 and s0.outer == 0 and s0.nit == 0
    torch.testing.assert_close(s0.x, x0, rtol=0, atol=0)
    assert s1.outer == 1 and s1.nit >= 1 and s1.residuals is not None


def test_max_inner_bounds_newton_steps_per_outer_step():
    lp, p = _lp(2)
    sol = solve(lp, max_inner=1, max_outer=2000, max_iter=2000)
    assert sol.nit <= sol.outer_iterations
    free = solve(lp)
    assert free.nit > free.outer_iterations  # the limit changed the run
    assert sol.status == Status.OPTIMAL
    assert_matches_highs(sol, **p)


def test_limits_end_with_iteration_limit_and_say_which():
    lp, _ = _lp(3)
    sol = solve(lp, max_outer=1, polish=False)
    assert sol.status == Status.ITERATION_LIMIT and "max_outer=1" in sol.message
    sol = solve(lp, max_iter=2, polish=False)
    assert sol.status == Status.ITERATION_LIMIT and "max_iter=2" in sol.message
    assert sol.nit == 2


@pytest.mark.parametrize("name", ["max_inner", "line_search_iters", "max_backtracks"])
def test_new_limits_are_validated(name):
    with pytest.raises(ValueError, match=name):
        SolverOptions(**{name: 0})


def test_line_search_chosen_once_from_options_and_structure():
    assert isinstance(make_line_search(SolverOptions(), separable=True), SeparableLineSearch)
    assert isinstance(make_line_search(SolverOptions(), separable=False), ExactLineSearch)
    s = make_line_search(SolverOptions(line_search="armijo", max_backtracks=7), separable=True)
    assert isinstance(s, ArmijoLineSearch) and s.max_halvings == 7
    assert make_line_search(SolverOptions(line_search_iters=9), False).iters == 9


def test_schedules():
    opt = SolverOptions()
    alm, pen = ALMSchedule(opt, 1e-8, 1e12), PenaltySchedule(opt, 1e-8, 1e12)
    lam = torch.ones(2, 3, dtype=torch.float64)
    tau = torch.full((2, 1), 4.0, dtype=torch.float64)
    sigma = torch.ones(2, 1, dtype=torch.float64)
    assert torch.equal(alm.multiplier(lam), lam) and not pen.multiplier(lam).any()
    assert alm.proximal and not pen.proximal and math.isinf(pen.initial_tau(1.0))
    torch.testing.assert_close(alm.shift(tau), 1 / tau)
    torch.testing.assert_close(pen.shift(tau), torch.full_like(tau, opt.rho))
    # ALM: primal residual far above the dual one stiffens sigma; the reverse softens it.
    res = SimpleNamespace(primal=torch.tensor([1e-2, 1e-9], dtype=torch.float64),
                          dual=torch.tensor([1e-9, 1e-2], dtype=torch.float64),
                          gap=torch.tensor([1e-2, 1e-2], dtype=torch.float64))
    s, t = alm.update(sigma, tau, res)
    assert float(s[0]) == opt.sigma_growth and float(s[1]) == 1 / opt.sigma_growth
    torch.testing.assert_close(t, tau * opt.tau_growth)
    # Both residuals within tol and the gap open: sigma stiffens; all within tol: it stays.
    done = SimpleNamespace(primal=torch.tensor([1e-9, 1e-9], dtype=torch.float64),
                           dual=torch.tensor([1e-9, 1e-9], dtype=torch.float64),
                           gap=torch.tensor([1e-6, 1e-9], dtype=torch.float64))
    s, _ = alm.update(sigma, tau, done)
    assert s.squeeze(-1).tolist() == [opt.sigma_growth, 1.0]
    # sigma * tau stays below max_cond.
    s, t = ALMSchedule(opt, 1e-8, 10.0).update(sigma, tau, res)
    assert bool((s * t <= 10.0 * (1 + 1e-12)).all())
    s, t = pen.update(sigma, tau, res)
    torch.testing.assert_close(s, sigma * opt.sigma_growth)
    # An element whose inner solve ran out of Newton steps keeps its sigma, and its tau,
    # or a shorter one after a long inner solve.
    s, t = alm.update(sigma, tau, res, torch.tensor([True, False]))
    assert float(s[0]) == 1.0 and float(s[1]) == 1 / opt.sigma_growth
    assert t.squeeze(-1).tolist() == [4.0, 4.0 * opt.tau_growth]
    s, t = alm.update(sigma, tau, res, torch.tensor([True, False]), shorten=True)
    assert float(s[0]) == 1.0
    assert t.squeeze(-1).tolist() == [4.0 / SHORTEN, 4.0 * opt.tau_growth]


def test_multiplier_drift_is_taken_at_once_where_x_stands_still():
    """With x fixed, outer steps add sigma r to the positive multipliers (an inequality
    row's stopping at 0): the extrapolation lands where those steps would, at the step on
    which the first positive multiplier on the way down reaches 0."""
    eq = torch.tensor([False, False, False, True])
    lam0 = torch.tensor([[5.0, 1.0, 0.0, 2.0], [5.0, 1.0, 0.0, 2.0]], dtype=torch.float64)
    drift = torch.tensor([-0.5, 0.25, -1.0, -0.1], dtype=torch.float64)  # sigma r
    lam1 = torch.where(eq, lam0 + drift, (lam0 + drift).clamp_min(0))
    x0 = torch.ones(2, 3, dtype=torch.float64)
    x1 = x0.clone()
    x1[1, 0] += 1e-3  # element 1's x moved: left alone
    out = extrapolate_multipliers(lam0, lam1, x0, x1, eq, torch.tensor([True, True]))
    # by hand: nine more outer steps bring row 0 from 4.5 to 0
    lam = lam1[0]
    for _ in range(9):
        lam = torch.where(eq, lam + drift, (lam + drift).clamp_min(0))
    torch.testing.assert_close(out[0], lam)
    assert float(out[0, 0]) == 0.0
    torch.testing.assert_close(out[1], lam1[1])
    # a closed element, or a drift of less than two steps, is left alone
    same = extrapolate_multipliers(lam0, lam1, x0, x0, eq, torch.tensor([False, True]))
    torch.testing.assert_close(same[0], lam1[0])
    near = lam0.clone()
    near[:, 0] = 0.7  # reaches 0 on the next step already
    near1 = torch.where(eq, near + drift, (near + drift).clamp_min(0))
    torch.testing.assert_close(extrapolate_multipliers(near, near1, x0, x0, eq,
                                                       torch.tensor([True, True])), near1)


def test_newton_loop_reports_the_elements_it_left_unfinished():
    lp, _ = _lp(2)
    s0 = init_state(lp)
    su = s0.setup
    sub = Subproblem(su.system, su.rows, s0.lam, s0.x, s0.sigma, s0.tau, True)
    args = (sub, s0.x, s0.inner_tol * 1e-6, ~s0.done, su.strategy, su.search,
            su.schedule.shift(s0.tau), su.separable)
    *_, steps, unfinished = newton_minimise(*args, 1)
    assert steps == 1 and unfinished.tolist() == [True]
    *_, steps, unfinished = newton_minimise(*args, 200)
    assert 1 < steps < 200 and unfinished.tolist() == [False]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dense_cholesky_start(dtype):
    # Float64 dense LPs start at DENSE_START (sigma0, tau0), float32 ones at 1; options
    # override either; the answer matches HiGHS from every start.
    from sparselp.schedule import DENSE_START
    lp, p = _lp(seed=3)
    lp = LinearProgram(**{k: v.to(dtype) if torch.is_tensor(v) else v for k, v in p.items()})
    state = init_state(lp)
    assert state.setup.strategy.name == "cholesky"
    want = DENSE_START if dtype == torch.float64 else (1.0, 1.0)
    assert (float(state.sigma[0, 0]), float(state.tau[0, 0])) == want
    state = init_state(lp, SolverOptions(sigma0=7.0))
    assert (float(state.sigma[0, 0]), float(state.tau[0, 0])) == (7.0, want[1])
    sol = solve(lp)
    assert sol.status == Status.OPTIMAL
    assert_matches_highs(sol, **p, tol=1e-8 if dtype == torch.float64 else 1e-5)


@pytest.mark.parametrize("proximal", [True, False])
def test_numpy_line_search_of_one_lp_equals_torch(monkeypatch, proximal):
    """One float64 LP on CPU searches in numpy views: the same step as the torch search."""
    import sparselp.linesearch as ls
    lp, _ = _lp(4)
    s0 = init_state(lp)
    su = s0.setup
    sub = Subproblem(su.system, su.rows, s0.lam, s0.x + 0.3, s0.sigma * 7, s0.tau, proximal)
    x = s0.x - 0.2
    u = sub.argument(x)
    g = sub.gradient(x, sub.rows.proj(u))
    d = -g / (1 + g.abs())
    todo = torch.ones(1, dtype=torch.bool)
    calls, numpy_step = [], ls.numpy_step
    monkeypatch.setattr(ls, "numpy_step", lambda *a: calls.append(1) or numpy_step(*a))
    fast = ExactLineSearch().step(sub, x, u, d, g * d, todo)
    monkeypatch.setattr(ls, "searched_in_numpy", lambda u: False)
    slow = ExactLineSearch().step(sub, x, u, d, g * d, todo)
    assert not torch.equal(fast.x, x)  # a real step
    torch.testing.assert_close(fast.x, slow.x, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(fast.u, slow.u, rtol=1e-12, atol=1e-13)
    assert fast.accepted.tolist() == slow.accepted.tolist() == [True]
    assert fast.stalled == slow.stalled and calls == [1]
