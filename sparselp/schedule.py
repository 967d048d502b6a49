"""Outer-loop parameter schedules: the proximal ALM and Mangasarian's exact penalty.

A schedule says how the outer loop of :mod:`sparselp.solver` treats the multiplier, the
proximal term and the shift of the Newton system, and how ``sigma`` and ``tau`` move
between outer steps. It is the only place where the two methods differ.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["ALMSchedule", "PenaltySchedule", "make_schedule", "default_start",
           "STRUCTURED_START", "DENSE_START", "HARD_INNER", "SHORTEN",
           "extrapolate_multipliers"]


class ALMSchedule:
    """Proximal method of multipliers (Rockafellar 1976).

    ``sigma`` balances the primal and dual residuals (as in SSNAL-type methods): a large
    primal residual asks for a stiffer penalty, a large dual residual for a softer one.
    ``tau`` grows geometrically; ``sigma * tau`` is kept below ``max_cond``, which bounds
    the condition number of the Newton system ``sigma K^T D K + I / tau``.

    An element whose inner solve ran out of Newton steps (``unfinished``) keeps its
    ``sigma``; its ``x`` is short of the subproblem's minimiser, a multiplier step from it
    pushes the next subproblem further off, and a stiffer one is harder still. Its
    ``tau`` is shortened to ``tau /`` :data:`SHORTEN` (an easier subproblem) when the
    steps that ran out were at least :data:`HARD_INNER` (``shorten``), and kept otherwise: a
    small ``max_inner`` asks for inexact inner solves on purpose, and shortening every
    step there stalls the loop (``max_inner=1`` ended at the iteration limit).

    On Netlib's PILOT-WE every outer step from the ninth on spent its 60 Newton steps
    while ``tau`` grew to 1e9 and the residuals to 1e4 (not solved in 60 s). Measured
    with ``python -m benchmarks.netlib --max-nnz 10000`` (one thread, all 58 problems):
    keeping ``sigma`` and ``tau`` solves it in 3,467 Newton steps (11.3 s), all 58 in
    64.6 s; shortening ``tau`` solves it in 2,176 (8.1 s), all 58 in 54.3 s (SHIP12S
    1,606 -> 675 Newton steps; HiGHS: 1.5 s). Before, with PILOT-WE at its 60 s limit,
    they took 113-126 s. That shortening was by ``tau_growth`` (3); by 10 the 43 feasible
    problems take 17,571 Newton steps instead of 18,898 (34.9 s against 37.9 s, one thread,
    the two interleaved per problem; PILOT4 2,158 -> 1,669 steps, SHIP08S 581 -> 468): a
    failed inner solve was often followed by another at ``tau / 3``.
    """

    proximal = True

    def __init__(self, options, tol: float, max_cond: float):
        self.opt, self.tol, self.max_cond = options, tol, max_cond

    def initial_tau(self, tau0: float) -> float:
        return tau0

    def multiplier(self, lam: Tensor) -> Tensor:
        """The multiplier inside the Newton solve."""
        return lam

    def shift(self, tau: Tensor) -> Tensor:
        """The diagonal added to ``sigma K^T D K`` in the Newton system, (B, 1)."""
        return 1.0 / tau

    def update(self, sigma: Tensor, tau: Tensor, res, unfinished: Tensor | None = None,
               shorten: bool = False) -> tuple[Tensor, Tensor]:
        opt = self.opt
        old_sigma, old_tau = sigma, tau
        ratio = (res.primal / res.dual.clamp_min(1e-300)).unsqueeze(-1)
        up = (ratio > opt.balance) & (res.primal > self.tol).unsqueeze(-1)
        # Feasible on both sides but the gap open (multipliers left on rows that are not
        # active, as in nearly degenerate LPs): a stiffer penalty zeroes them faster.
        up |= ((res.gap > self.tol) & (res.primal <= self.tol)
               & (res.dual <= self.tol)).unsqueeze(-1)
        down = (ratio < 1 / opt.balance) & (res.dual > self.tol).unsqueeze(-1)
        sigma = torch.where(up, sigma * opt.sigma_growth,
                            torch.where(down, sigma / opt.sigma_growth, sigma))
        sigma = sigma.clamp(1.0 / opt.sigma_max, opt.sigma_max)
        tau = torch.minimum((tau * opt.tau_growth).clamp_max(opt.tau_max), self.max_cond / sigma)
        if unfinished is not None and bool(unfinished.any()):
            keep = unfinished.unsqueeze(-1)
            sigma = torch.where(keep, old_sigma, sigma)
            held = (old_tau / SHORTEN).clamp_min(1 / opt.tau_max) if shorten else old_tau
            tau = torch.where(keep, held, tau)
        return sigma, tau


class PenaltySchedule:
    """Mangasarian's exact penalty with eps continuation: ``lambda = 0``, ``tau = inf``,
    ``eps = 1/sigma`` decreased geometrically (warm-started); the Newton system gets the
    regularisation ``rho`` in place of the proximal ``1/tau``."""

    proximal = False

    def __init__(self, options, tol: float, max_cond: float):
        self.opt = options

    def initial_tau(self, tau0: float) -> float:
        return math.inf

    def multiplier(self, lam: Tensor) -> Tensor:
        return torch.zeros_like(lam)

    def shift(self, tau: Tensor) -> Tensor:
        return torch.full_like(tau, self.opt.rho)

    def update(self, sigma: Tensor, tau: Tensor, res, unfinished: Tensor | None = None,
               shorten: bool = False) -> tuple[Tensor, Tensor]:
        return (sigma * self.opt.sigma_growth).clamp_max(self.opt.sigma_max), tau


#: An inner solve that ran out of at least this many Newton steps counts as too hard: the
#: element's proximal step is shortened (see ALMSchedule).
HARD_INNER = 10
#: The factor by which such an element's proximal step is shortened (see ALMSchedule)
SHORTEN = 10.0


def make_schedule(options, tol: float, max_cond: float):
    """The schedule of ``options.method`` (``"alm"`` or ``"penalty"``)."""
    cls = ALMSchedule if options.method == "alm" else PenaltySchedule
    return cls(options, tol, max_cond)


#: sigma0 = tau0 of the structured strategy (see default_start)
STRUCTURED_START = 300.0
#: sigma0 = tau0 = DIAG_START_FLOAT64 / tol of exact diagonal solves in float64 (see
#: default_start)
DIAG_START_FLOAT64 = 10.0
#: (sigma0, tau0) of the dense Cholesky strategy (see default_start)
DENSE_START = (100.0, 1.0)


def default_start(opt, tol: float, exact_diag: bool, strategy: str,
                  dtype=torch.float64) -> tuple[float, float]:
    """The default ``(sigma0, tau0)``: for exact diagonal solves ``1/tol`` (one outer step
    reaches tol), ``DIAG_START_FLOAT64/tol`` in float64; ``STRUCTURED_START`` for the
    structured strategy, ``DENSE_START`` for the dense Cholesky strategy in float64, 1
    otherwise.

    Diagonal solves: after the first outer step the residuals are about ``1/sigma``, so at
    ``1/tol`` the primal residual lands just under tol (0.87 tol) and the gap often above
    it (2.2 tol): the answer then needs the active-set polish, which at a million pairs
    costs as much as the Newton step. A larger start lowers the primal residual, but the
    gap's round-off grows with sigma (at ``100/tol``: 1.4 tol on 1,024 scores). Measured by
    ``python -m benchmarks.start_sweep --diagonal`` (binary AUC and AUC_mu of 4 classes, 64
    to 4,096 scores, two draws, one thread; every solve certified in one outer step at
    factors 1 to 30), polished answers of 16 and time summed: float64 at ``f/tol`` for f =
    1 / 3 / 10 / 30 / 100: 12 / 0 / 0 / 0 / 15 polished, 19.4 / 14.3 / 13.8 / 14.8 /
    19.9 s; float32: 12 / 16 / 16 / 6 / 0 polished, 5.0 / 5.7 / 5.3 / 7.5 / 10.5 s (from
    30 on, float32 needs a second outer step), so float32 keeps 1.

    The structured solve is exact and runs in float64 whatever the problem's dtype, so a
    larger sigma costs it no accuracy, only Newton steps (more kinks crossed per outer
    step). Measured by ``python -m benchmarks.start_sweep`` (F-score and precision at
    recall, 256 to 65,536 scores, uniform and normal, float32 and float64, one thread, 40
    LPs, every one certified at each start): Newton steps in all 1,236 at a start of 1,
    701 at 100, 734 at 300, 870 at 1e3, 1,164 at 3e3; outer steps 486 / 241 / 200 / 175 /
    161; time (each LP's divided by sqrt(n), summed) 0.249 / 0.179 / 0.172 / 0.210 /
    0.266. 300 is also the fastest at 65,536 (F-score: 20 outer steps -> 2-5).

    Dense LPs (``benchmarks.batched_lp.make_batch``: m = 2n Gaussian rows, box -1..1,
    float64), each solved alone: late in a solve, when fewer than n rows are active, a
    Newton direction of the proximal subproblem is dominated by the null space of the
    active rows (curvature ``1/tau`` against ``sigma``), and the exact line search stops at
    the next kink, so the inner loop crawls one row a step. A stiffer start with a short
    proximal step crawled less, measured in Newton steps of 64 LPs at n = 100
    (``make_batch(32, 100, seed)``, seeds 0 and 1), at (sigma0, tau0) = (1, 1): 4,060;
    (100, 1): 3,285; (30, 1): 3,438; (10, 1): 3,568; (300, 1): 3,648; (100, 0.3): 3,517;
    (100, 3): 3,506; (100, 10): 3,805; (30, 30): 3,765. At n = 30 and 200 (16 LPs,
    seed 2) 520 -> 465 and 1,333 -> 1,104 from (1, 1) to (100, 1). Every LP certified.
    Growth factors and ``balance`` around (100, 1) moved the count by under 5%. Float32
    keeps 1: there ``sigma * tau`` is capped at 1e5, and one float32 unbounded LP of
    ``python -m benchmarks.fuzz_lp --count 200`` (seed 53) then ended at the iteration
    limit instead of being found unbounded.
    """
    if exact_diag:
        f = DIAG_START_FLOAT64 if dtype == torch.float64 else 1.0
        return f / tol, f / tol
    if opt.method == "alm" and strategy == "structured":
        return STRUCTURED_START, STRUCTURED_START
    if opt.method == "alm" and strategy == "cholesky" and dtype == torch.float64:
        return DENSE_START
    return 1.0, 1.0


#: Newton steps of an outer step up to which its multiplier move may be extrapolated
DRIFT_STEPS = 3
#: At most this many outer steps are taken at once by an extrapolation
DRIFT_MAX = 1e4


def extrapolate_multipliers(lam0: Tensor, lam: Tensor, x0: Tensor, x: Tensor, eq: Tensor,
                            open_: Tensor) -> Tensor:
    """The multipliers ``lam`` of an outer step, moved on along its multiplier step where
    ``x`` stood still (the open elements ``open_``, (B,) bool).

    With ``x`` fixed, each further outer step adds the same ``sigma (K x - k)`` to the
    multipliers of the rows still positive (an inequality row's stops at 0): the ALM's
    drift when the active rows' residual lies in the null space of ``K_J^T`` (their
    least-squares residual), where ``x`` moves only once some multiplier on the way down
    reaches 0. On Netlib this took hundreds of outer steps of one Newton step each
    (PILOT-WE: 214, the primal residual constant and the gap growing). Here the step is
    taken ``a`` times at once, ``a`` the outer steps until the first positive inequality
    multiplier on the way down reaches 0 (at least 2, at most :data:`DRIFT_MAX`); that
    multiplier is set to 0. Measured (the 43 feasible Netlib problems, one thread,
    interleaved per problem): 37.9 -> 35.0 s (PILOT-WE 8.5 -> 6.0 s with the shorter
    ``tau`` of :data:`SHORTEN`). The answer is certified as any other: a multiplier
    from which the next outer steps start is all this changes.
    """
    dx = (x - x0).abs().amax(-1)
    still = open_ & (dx <= 1e-9 * (1 + x.abs().amax(-1)))
    if not bool(still.any()):
        return lam
    step = lam - lam0
    down = (step < 0) & (lam > 0) & ~eq & still.unsqueeze(-1)
    ratio = torch.where(down, lam / -step, torch.full_like(lam, math.inf))
    a = ratio.amin(-1, keepdim=True)
    go = (a >= 2) & torch.isfinite(a)
    if not bool(go.any()):
        return lam
    a = a.clamp(max=DRIFT_MAX)
    moved = lam + a * step
    moved = torch.where(eq, moved, moved.clamp_min(0))
    moved = torch.where(down & (ratio <= a * (1 + 1e-12)), torch.zeros_like(moved), moved)
    return torch.where(go, moved, lam)
