r"""Generalized Newton method for linear programs (Mangasarian 2004), made exact.

Problem (see :class:`~sparselp.LinearProgram`), in the stacked form of
:mod:`sparselp.scaling`: minimise ``c^T x`` subject to ``K x <= k`` (``=`` on equality rows).

One loop serves both methods. The solver's whole state is one :class:`SolverState`;
:func:`init_state` builds it and :func:`outer_step` advances it by one outer step, which
minimises, by generalized Newton steps (:mod:`sparselp.newton`) with an exact line search
(:mod:`sparselp.linesearch`; per coordinate when every row of ``K`` has one nonzero, so
that one step minimises it outright), the piecewise quadratic

.. math::

    \phi_j(x) = c^T x + \frac{1}{2\sigma_j}\|\Pi(\lambda_j + \sigma_j (K x - k))\|^2
               + \frac{1}{2\tau_j}\|x - x_j\|^2,

with ``Π`` the projection onto ``>= 0`` on inequality rows (identity on equality rows),
whose generalized Hessian is ``σ K^T D K + I/τ`` with ``D`` the indicator of the rows where
the argument of ``Π`` is positive. Then ``λ_{j+1} = Π(λ_j + σ_j (K x - k))``: the dual is
recovered by thresholding.

The two methods differ only in their schedule (:mod:`sparselp.schedule`):

- ``method="alm"`` (default): the proximal method of multipliers (Rockafellar 1976);
  ``σ`` and ``τ`` grow while the residuals fall. Finite ``σ`` suffices for exact answers.
- ``method="penalty"``: Mangasarian's exact penalty, ``λ = 0``, ``τ = ∞``, with
  ``eps = 1/σ`` decreased geometrically (continuation, warm-started). Exact only for
  ``eps`` below an unknown threshold; kept as the reference method.

Every answer is checked on the original (unscaled) problem; ``OPTIMAL`` is reported only
when the primal residual, the dual residual and the duality gap are all within ``tol``.
Infeasibility and unboundedness are detected from the differences of successive duals and
primals (they converge to Farkas certificates; cf. OSQP, Stellato et al. 2020) and are
verified before they are reported.

References
----------
O. L. Mangasarian, "A Newton method for linear programming", JOTA 121 (2004).
R. T. Rockafellar, "Augmented Lagrangians and applications of the proximal point
algorithm in convex programming", Math. Oper. Res. 1 (1976).
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .batching import Working, working_set
from .classify import classify
from .planner import check_problem
from .linesearch import LineSearch, RowKinds, make_line_search
from .linsolve import HessianStrategy, get_strategy
from .mixed import STALL_PATIENCE, Best, keep_best, residuals, shadow_system
from .newton import Subproblem, newton_minimise
from .options import SolverOptions, make_options
from .polish import try_polish
from .presolve import presolve
from .schedule import (DRIFT_STEPS, HARD_INNER, default_start, extrapolate_multipliers,
                       make_schedule)
from .problem import LinearProgram
from .residuals import Residuals, ResidualScales
from .scaling import RowSystem, build_rows, equilibrate, unit_scale
from .solution import Solution, Status
from .warmstart import check_warm_start, primal_iterate, warm_iterate, warm_start_fits

__all__ = ["solve", "SolverSetup", "SolverState", "init_state", "outer_step", "finish"]


def solve(problem: LinearProgram, options: SolverOptions | dict | None = None,
          memory_budget=None, warm_start: Solution | None = None,
          **option_kwargs) -> Solution:
    r"""Solve a linear program (or a batch) by the generalized Newton method.

    .. math::

        \min_x \; c^T x \quad \text{s.t.} \quad A x \le b, \; A_{eq} x = b_{eq},
        \; lb \le x \le ub

    Parameters
    ----------
    problem : LinearProgram
    options : SolverOptions or dict, optional
        See :class:`~sparselp.SolverOptions`; keyword arguments override single fields.
    memory_budget : int, float or str, optional
        Bytes (or ``"2GB"``): when the predicted peak (:func:`sparselp.plan`) exceeds it,
        :class:`sparselp.MemoryBudgetError` is raised before the solve starts.
    warm_start : Solution or tensor, optional
        A solution of an LP of the same shapes (batch size, ``n``, ``m``, ``m_eq``; else
        a ValueError): its primal and duals are the first iterate instead of zero
        (:mod:`sparselp.warmstart`). The same LP's solution is certified at once; a nearby
        LP's (the next minibatch, a perturbed right-hand side) takes fewer iterations. A
        tensor of shape (n,) or (B, n) is a primal start: the rows tight there are the
        active set and the multipliers come from it
        (:func:`sparselp.warmstart.primal_iterate`).
        With ``presolve=True`` it is used only when the presolve removed nothing.

    Returns
    -------
    Solution
        Batched when the problem is batched. ``status`` is OPTIMAL only if the residuals
        computed after the solve, on the unscaled problem, are within ``tol``.

    Examples
    --------
    >>> import torch, sparselp
    >>> lp = sparselp.LinearProgram(torch.tensor([-1., -1.], dtype=torch.float64),
    ...                             torch.tensor([[1., 2.], [3., 1.]], dtype=torch.float64),
    ...                             torch.tensor([4., 6.], dtype=torch.float64), lb=0)
    >>> sol = sparselp.solve(lp)
    >>> sol.status.name, round(float(sol.fun), 6)
    ('OPTIMAL', -2.8)
    """
    if not isinstance(problem, LinearProgram):
        raise TypeError(f"problem must be a LinearProgram, got {type(problem).__name__}")
    opt = make_options(options, **option_kwargs)
    check_problem(problem, memory_budget, "solve")
    if warm_start is not None:
        check_warm_start(warm_start, problem)
    with serial_if_small(problem):
        if opt.presolve and not problem.batched:
            return _solve_presolved(problem, opt, warm_start)
        return _solve(problem, opt, warm_start)


#: Below this many rows + columns (of the whole batch) a CPU solve runs on one thread.
SERIAL_SIZE = 1 << 15


@contextmanager
def serial_if_small(problem: LinearProgram):
    """Run a small CPU solve with one intra-op thread, then restore the thread count.

    A small LP's vectors are below torch's grain size, so a second thread only helps in
    the few kernels that open a parallel region whatever the size (the CSR products,
    BLAS); there each call waits for every thread of the pool, and on a loaded machine (a
    training step's data loader, another job) a waiting thread costs milliseconds per
    call: measured on this 2-core machine under load, the F-score LP of 256 scores took
    1.1-1.7 s with 2 threads and 0.16 s with 1. Larger LPs keep every thread.
    """
    B = problem.batch_size or 1
    small = B * (problem.m + problem.m_eq + problem.n) < SERIAL_SIZE
    threads = torch.get_num_threads()
    if problem.device.type != "cpu" or threads == 1 or not small:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _solve(problem: LinearProgram, opt: SolverOptions, warm_start=None) -> Solution:
    with torch.no_grad():
        state = init_state(problem, opt, warm_start)
        while state.stop_reason is None:
            state = outer_step(state)
        return finish(state)


def _solve_presolved(problem: LinearProgram, opt: SolverOptions, warm_start=None) -> Solution:
    """Presolve, solve what is left (if anything), postsolve and certify; a warm start
    only where the reduced problem kept every row and column."""
    with torch.no_grad():
        pre = presolve(problem)
        if pre.reduced is not None and warm_start is not None \
                and not warm_start_fits(warm_start, pre.reduced):
            warm_start = None
        sol = None if pre.reduced is None else _solve(pre.reduced, opt, warm_start)
        return pre.postsolve(sol, opt.tol_for(problem.dtype))


@dataclass(frozen=True)
class SolverSetup:
    """What a solve fixes once: the equilibrated rows and the parts chosen for them."""

    problem: LinearProgram
    options: SolverOptions
    tol: float
    system: RowSystem            # K x <= k after Ruiz equilibration
    rows: RowKinds               # projection and active-row indicator of K's row kinds
    strategy: HessianStrategy    # solves the Newton systems
    search: LineSearch           # step along a Newton direction
    schedule: object             # ALMSchedule or PenaltySchedule
    scales: ResidualScales       # for residuals on the unscaled problem
    separable: bool              # every row of K has at most one nonzero
    started: float               # time.perf_counter() at init_state
    shadow: RowSystem | None = None  # float64 copy of `system` (mixed precision), or None
    shadow_scales: ResidualScales | None = None


@dataclass(frozen=True)
class SolverState:
    """Everything that changes during a solve. Tensors have a leading batch dimension B."""

    setup: SolverSetup
    x: Tensor              # (B, n) primal iterate, scaled space
    lam: Tensor            # (B, M) multipliers of the rows of K
    sigma: Tensor          # (B, 1) penalty parameter
    tau: Tensor            # (B, 1) proximal step (inf for the exact penalty)
    inner_tol: Tensor      # (B,) tolerance of the next inner Newton solve
    done: Tensor           # (B,) bool: status decided
    status: tuple          # per element (Status, message), or None while open
    polished: Tensor       # (B,) bool: the iterate came from the active-set polish
    ray_steps: Tensor      # (B,) int: consecutive outer steps with an unboundedness ray
    residuals: Residuals | None = None
    nit: int = 0           # Newton steps so far, all outer steps together
    outer: int = 0         # outer steps so far
    stop_reason: str | None = None  # set when the loop is to stop
    best: Best | None = None  # mixed precision: the best point seen (returned if uncertified)
    work: Working | None = None  # the open elements' rows, kept while the open set holds


def init_state(problem: LinearProgram, options: SolverOptions | dict | None = None,
               warm_start: Solution | None = None) -> SolverState:
    """Equilibrate the problem, choose the linear solver, line search and schedule once,
    and return the state at ``x = 0``, ``λ = 0``, or at the point of ``warm_start`` (a
    solution of an LP of the same shapes, :func:`sparselp.warmstart.warm_iterate`)."""
    opt = make_options(options)
    dt, dev, B = problem.dtype, problem.device, problem.batch_size
    tol = opt.tol_for(dt)
    system = equilibrate(build_rows(problem), opt.scaling_iters)
    strategy = get_strategy(opt.linear_solver, system.K)
    separable = bool(system.K.rows_separable)
    exact_diag = separable and strategy.name == "diagonal"
    max_cond = math.inf if exact_diag else (1e12 if dt == torch.float64 else 1e5)
    schedule = make_schedule(opt, tol, max_cond)
    shadow = shadow_system(opt, system, separable)
    # float32 residuals are term-scaled (see sparselp.residuals.Residuals)
    term = dict(term_scaled=dt != torch.float64, tol=tol)
    setup = SolverSetup(problem, opt, tol, system, RowKinds(system.eq, dt), strategy,
                        make_line_search(opt, separable), schedule,
                        ResidualScales(system, **term), separable, time.perf_counter(), shadow,
                        None if shadow is None else ResidualScales(shadow, **term))
    start = default_start(opt, tol, exact_diag, strategy.name, dt)
    sigma0 = opt.sigma0 if opt.sigma0 is not None else start[0]
    tau0 = opt.tau0 if opt.tau0 is not None else start[1]
    full = dict(dtype=dt, device=dev)
    polished = torch.zeros(B, dtype=torch.bool, device=dev)
    if warm_start is None:
        x, lam = torch.zeros(B, problem.n, **full), torch.zeros_like(system.k)
    elif isinstance(warm_start, Tensor):  # a primal start
        x, lam, polished = primal_iterate(system, strategy, warm_start, opt.polish, shadow)
    else:
        x, lam = warm_iterate(system, warm_start, dt, dev)
    return SolverState(
        setup, x=x, lam=lam,
        sigma=torch.full((B, 1), sigma0, **full),
        tau=torch.full((B, 1), schedule.initial_tau(tau0), **full),
        inner_tol=torch.full((B,), 1.0, **full), done=torch.zeros(B, dtype=torch.bool, device=dev),
        status=(None,) * B, polished=polished,
        ray_steps=torch.zeros(B, dtype=torch.long, device=dev))


def outer_step(state: SolverState) -> SolverState:
    """One outer step: minimise ``φ_j`` by Newton steps, take the multiplier, check the
    answer (polish, certificates, statuses), then move ``σ``, ``τ`` and the inner tolerance.

    Decided elements leave the batch: the step works on the open elements only
    (:class:`sparselp.batching.Working`, selected once per change of the open set) and
    writes their results back; the decided ones keep theirs.
    """
    su, opt = state.setup, state.setup.options
    work = working_set(su, state.done, state.work)
    take = work.take
    x0, lam0, tau0, done0 = take(state.x), take(state.lam), take(state.tau), take(state.done)
    sub = Subproblem(work.system, su.rows, su.schedule.multiplier(lam0), x0,
                     take(state.sigma), tau0, su.schedule.proximal)
    budget = min(opt.max_inner, opt.max_iter - state.nit)
    x, _, lam, steps, unfinished = newton_minimise(
        sub, x0, take(state.inner_tol), ~done0, su.strategy, su.search,
        su.schedule.shift(tau0), su.separable, budget)
    if bool(done0.any()):  # a batch that could not be selected: decided ones keep theirs
        keep = done0.unsqueeze(-1)
        x, lam = torch.where(keep, x0, x), torch.where(keep, lam0, lam)
    x_step, lam_step = x, lam  # the moves of this step, formed if a certificate needs them
    res = residuals(work.system, work.scales, work.shadow, work.shadow_scales, x, lam)
    polished = take(state.polished)
    if bool(polished.any()):  # a Newton step leaves the polish (none to leave: no dx formed)
        polished = polished & ((x_step - x0) == 0).all(-1)
    # Polish what is close but not yet within tol: a point already within tol is a valid
    # answer, and the polish would cost as much as a Newton step.
    # With a float64 shadow the polish's dual is what repairs a float32 dual residual (a
    # coupling column sums n rounded terms), so it is tried on the primal side and gap.
    near = torch.maximum(res.primal, res.gap) if su.shadow is not None else res.worst
    candidates = (near < opt.polish_below) & (res.worst > su.tol) & ~done0
    if opt.polish and bool(candidates.any()):
        x, lam, res, polished = try_polish(work, x, lam, res, candidates, polished)
    status, done, ray_steps = classify(work.system, su.tol, opt, x, res,
                                       lambda: (x_step - x0, lam_step - lam0), done0,
                                       work.take_list(state.status), take(state.ray_steps))
    x, lam, res, status, done, polished, ray_steps = work.put(
        state, x=x, lam=lam, residuals=res, status=status, done=done, polished=polished,
        ray_steps=ray_steps)
    nit, outer = state.nit + steps, state.outer + 1
    if opt.verbose:
        print(f"outer {outer:4d} nit {nit:5d} primal {res.primal.max():.2e} "
              f"dual {res.dual.max():.2e} gap {res.gap.max():.2e} "
              f"sigma {state.sigma.max():.1e} tau {state.tau.max():.1e}")
    best = None if su.shadow is None else keep_best(state.best, x, lam, res, done)
    new = replace(state, x=x, lam=lam, done=done, status=status, polished=polished,
                  ray_steps=ray_steps, residuals=res, nit=nit, outer=outer, best=best,
                  work=work, stop_reason=_stop_reason(su, done, nit, outer, best))
    if new.stop_reason is not None:
        return new
    unfinished = work.put_mask(unfinished, state.done.numel())
    sigma, tau = su.schedule.update(state.sigma, state.tau, res, unfinished,
                                    shorten=budget >= HARD_INNER)
    # x still: the multipliers' drift, taken at once (float64: in float32 an x that stands
    # still is as often the round-off floor, and the step a multiple of noise)
    if su.schedule.proximal and steps <= DRIFT_STEPS and x.dtype == torch.float64:
        new = replace(new, lam=extrapolate_multipliers(state.lam, new.lam, state.x, new.x,
                                                       su.system.eq, ~new.done))
    # The inner tolerance tightens with the outer residuals (inexact ALM, in the spirit of
    # Rockafellar's criteria), and only ever tightens.
    inner_tol = torch.minimum(state.inner_tol, torch.clamp(0.1 * res.worst, min=0.1 * su.tol))
    inner_tol = torch.maximum(0.2 * inner_tol, torch.full_like(inner_tol, 0.1 * su.tol))
    return replace(new, sigma=sigma, tau=tau, inner_tol=inner_tol)


def _stop_reason(su: SolverSetup, done: Tensor, nit: int, outer: int,
                 best: Best | None = None) -> str | None:
    opt = su.options
    if bool(done.all()):
        return "every element decided"
    if best is not None and best.since >= STALL_PATIENCE:
        return (f"stalled: {STALL_PATIENCE} outer steps without halving the worst residual "
                f"(float32 round-off; the best point seen is returned)")
    if nit >= opt.max_iter:
        return f"iteration limit: max_iter={opt.max_iter} Newton steps reached"
    if opt.time_limit is not None and time.perf_counter() - su.started > opt.time_limit:
        return f"time limit of {opt.time_limit} s reached"
    if outer >= opt.max_outer:
        return f"iteration limit: max_outer={opt.max_outer} outer steps reached"
    return None


def _with_best(state: SolverState):
    """The state with its open elements at their best point, and the residuals to report."""
    open_ = torch.tensor([st is None for st in state.status], device=state.x.device)
    best, res = state.best, state.residuals
    use = open_ & (best.worst < res.worst)
    if not bool(use.any()):
        return state, res
    sel = use.unsqueeze(-1)
    out = Residuals.__new__(Residuals)
    for name in ("primal", "dual", "gap", "worst"):
        setattr(out, name, torch.where(use, getattr(best, name), getattr(res, name)))
    return replace(state, x=torch.where(sel, best.x, state.x),
                   lam=torch.where(sel, best.lam, state.lam)), out


def finish(state: SolverState) -> Solution:
    """Undo the scaling, split the multipliers by kind of row, and name the statuses."""
    su, lp, res = state.setup, state.setup.problem, state.residuals
    system = su.system  # the equilibrated rows
    m, m_eq, n_lb, n_ub = system.sizes
    if state.best is not None:  # uncertified elements: the best point seen
        state, res = _with_best(state)
    x = (state.x * system.k_scale).mul_(system.s)
    v = state.lam * system.c_scale
    if not unit_scale(system.r):
        v.mul_(system.r)
    parts = torch.split(v, [m, m_eq, n_lb, n_ub], dim=1) \
        if v.shape[1] == m + m_eq + n_lb + n_ub else (v[:, :0],) * 4
    v_lb, v_ub = torch.zeros_like(x), torch.zeros_like(x)
    v_lb[:, system.lb_idx] = parts[2]
    v_ub[:, system.ub_idx] = parts[3]
    statuses, messages = [], []
    for i, st in enumerate(state.status):
        if st is None:
            st = (Status.ITERATION_LIMIT, f"{state.stop_reason}; worst relative residual "
                  f"{float(res.worst[i]):.2e} > tol {su.tol:.0e} (primal "
                  f"{float(res.primal[i]):.2e}, dual {float(res.dual[i]):.2e}, gap "
                  f"{float(res.gap[i]):.2e})")
        statuses.append(st[0])
        messages.append(st[1])
    sol = Solution(x=x, v=parts[0], v_eq=parts[1], v_lb=v_lb, v_ub=v_ub,
                   fun=(lp.c * x).sum(-1), status=statuses, message=messages, nit=state.nit,
                   primal_residual=res.primal, dual_residual=res.dual, gap=res.gap,
                   active=parts[0] > 0, outer_iterations=state.outer,
                   linear_solver=su.strategy.name, polished=state.polished, batched=True)
    return sol if lp.batched else sol[0]
