r"""Generalized Newton method for linear programs (Mangasarian 2004), made exact.

Problem (see :class:`~sparselp.LinearProgram`), in the stacked form of
:mod:`sparselp.scaling`: minimise ``c^T x`` subject to ``K x <= k`` (``=`` on equality rows).

One loop serves both methods. Each outer step ``j`` minimises, by generalized Newton
steps with an exact line search (:mod:`sparselp.linesearch`; per coordinate when every
row of ``K`` has one nonzero, so that one step minimises it outright), the piecewise
quadratic

.. math::

    \phi_j(x) = c^T x + \frac{1}{2\sigma_j}\|\Pi(\lambda_j + \sigma_j (K x - k))\|^2
               + \frac{1}{2\tau_j}\|x - x_j\|^2,

with ``Π`` the projection onto ``>= 0`` on inequality rows (identity on equality rows),
whose generalized Hessian is ``σ K^T D K + I/τ`` with ``D`` the indicator of the rows where
the argument of ``Π`` is positive. Then ``λ_{j+1} = Π(λ_j + σ_j (K x - k))``: the dual is
recovered by thresholding.

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

import torch
from torch import Tensor

from .linesearch import RowKinds, armijo_step, exact_step, separable_step
from .linsolve import NewtonSystem, get_strategy
from .options import SolverOptions, make_options
from .polish import polish
from .problem import LinearProgram
from .residuals import Residuals, ResidualScales, certificates
from .scaling import build_rows, equilibrate, inf_norm
from .solution import Solution, Status

__all__ = ["solve"]


def solve(problem: LinearProgram, options: SolverOptions | dict | None = None,
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
    with torch.no_grad():
        return _Loop(problem, opt).run()


class _Loop:
    def __init__(self, lp: LinearProgram, opt: SolverOptions):
        self.lp, self.opt = lp, opt
        dt = lp.dtype
        self.tol = opt.tol if opt.tol is not None else (1e-8 if dt == torch.float64 else 1e-5)
        self.S = equilibrate(build_rows(lp), opt.scaling_iters)
        self.strategy = get_strategy(opt.linear_solver, self.S.K)
        self.alm = opt.method == "alm"
        self.eps = torch.finfo(dt).eps
        self.separable = bool(self.S.K.rows_separable)
        self.rows = RowKinds(self.S.eq, dt)
        self.max_cond = 1e12 if dt == torch.float64 else 1e5
        if self.separable and self.strategy.name == "diagonal":
            self.max_cond = math.inf  # exact diagonal solves: conditioning costs nothing

    def residuals(self, x, v):
        return Residuals(self.S, x, v, sc=self.scales)

    def phi(self, x, xk, lam, sigma, tau):
        S = self.S
        u = lam + sigma * (S.K.mv(x) - S.k)
        p = self.rows.proj(u)
        val = (S.c * x).sum(-1) + (p * p).sum(-1) / (2 * sigma.squeeze(-1))
        if self.alm:
            val = val + ((x - xk) ** 2).sum(-1) / (2 * tau.squeeze(-1))
        return val, u, p

    def newton(self, x, lam, sigma, tau, inner_tol, active_mask):
        """Minimise phi by generalized Newton steps; returns x, steps taken, success."""
        S, opt = self.S, self.opt
        xk = x
        val, u, p = self.phi(x, xk, lam, sigma, tau)
        steps = 0
        for _ in range(60):
            g = S.c + S.K.rmv(p)
            if self.alm:
                g = g + (x - xk) / tau
            gn = inf_norm(g)
            todo = (gn > inner_tol) & active_mask
            if not bool(todo.any()) or self.nit >= opt.max_iter:
                break
            if self.separable:
                # Rows exactly on their kink (u = 0, e.g. every row with a zero right-hand
                # side at the x = 0 start) enter the generalized Hessian: an equally valid
                # element of it, and one that keeps the first direction on the scale of
                # 1/sigma rather than tau. The per-coordinate exact step makes the choice a
                # matter of speed only.
                w = self.rows.active((u >= 0).to(u.dtype), inplace=True).mul_(sigma)
            else:
                w = sigma * self.rows.active(p)
            shift = (1.0 / tau) if self.alm else torch.full_like(tau, opt.rho)
            d = -self.strategy.factor(NewtonSystem(S.K, w, shift.expand_as(x)))(g)
            if not bool(todo.all()):
                d = torch.where(todo.unsqueeze(-1), d, torch.zeros_like(d))
            slope = (g * d).sum(-1)
            if opt.line_search == "exact" and self.separable:
                # Every row touches one column: phi splits per coordinate, and each gets
                # its own exact step, so this one step minimises phi outright.
                lin0 = S.c * d
                lin1 = torch.zeros_like(d)
                if self.alm:
                    lin0 = lin0 + (x - xk) * d / tau
                    lin1 = d * d / tau
                # The step holds its own m- and n-sized vectors: keep only what it needs.
                gd = g * d
                del p, g
                t, u = separable_step(S.K, u, sigma, self.rows, d, gd, lin0, lin1, todo)
                del gd
                del lin0, lin1
                accepted = torch.isfinite(t).all(-1)
                if not bool(accepted.all()):
                    t = torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)
                step = t.mul_(d)
                x = x + step
                p = self.rows.proj(u)
                # Each coordinate is now at its own minimiser, up to round-off: a step
                # that no longer moves x means the gradient is at its precision floor.
                moved = inf_norm(step) > 8 * self.eps * (1 + inf_norm(x))
                if not bool((moved & todo).any()):
                    steps += 1
                    self.nit += 1
                    break
            elif opt.line_search == "exact":
                s = sigma * S.K.mv(d)
                lin0 = (S.c * d).sum(-1)
                lin1 = torch.zeros_like(lin0)
                if self.alm:
                    lin0 = lin0 + ((x - xk) * d).sum(-1) / tau.squeeze(-1)
                    lin1 = (d * d).sum(-1) / tau.squeeze(-1)
                t = exact_step(u, s, S.eq, lin0, lin1, sigma, todo)
                accepted = torch.isfinite(t)
                t = torch.where(accepted, t, torch.zeros_like(t))
                x = x + t.unsqueeze(-1) * d
                u = u + t.unsqueeze(-1) * s
                p = self.rows.proj(u)
            else:
                t, accepted = armijo_step(lambda z: self.phi(z, xk, lam, sigma, tau)[0],
                                          x, d, val, slope, todo, opt.armijo)
                x = x + t.unsqueeze(-1) * d
                val, u, p = self.phi(x, xk, lam, sigma, tau)
            steps += 1
            self.nit += 1
            if not bool(accepted.all()):
                break  # no decrease possible at this precision: leave it to the outer loop
        return x, u, p

    def run(self) -> Solution:
        S, opt, lp = self.S, self.opt, self.lp
        B, n, dt, dev = lp.batch_size, lp.n, lp.dtype, lp.device
        start = time.perf_counter()
        x = torch.zeros(B, n, dtype=dt, device=dev)
        lam = torch.zeros_like(S.k)
        # Exact diagonal Newton solves with per-coordinate steps take any sigma: start
        # where one outer step reaches tol (see SolverOptions.sigma0).
        start_big = self.separable and self.strategy.name == "diagonal"
        sigma0 = opt.sigma0 if opt.sigma0 is not None else (1 / self.tol if start_big else 1.0)
        tau0 = opt.tau0 if opt.tau0 is not None else (1 / self.tol if start_big else 1.0)
        sigma = torch.full((B, 1), sigma0, dtype=dt, device=dev)
        tau = torch.full((B, 1), tau0 if self.alm else math.inf, dtype=dt, device=dev)
        status = [None] * B
        done = torch.zeros(B, dtype=torch.bool, device=dev)
        self.nit = 0
        self.polished = torch.zeros(B, dtype=torch.bool, device=dev)
        self.scales = ResidualScales(S)
        res = None  # the residuals of the first iterate come after the first Newton solve
        inner_tol = torch.full((B,), 1.0, dtype=dt, device=dev)
        outer = 0
        limit_reason = ""
        for outer in range(1, opt.max_outer + 1):
            # The penalty method holds the multiplier at zero inside the Newton solve.
            lam_in = lam if self.alm else torch.zeros_like(lam)
            x_new, u, p = self.newton(x, lam_in, sigma, tau, inner_tol, ~done)
            lam_new = p  # the dual, recovered by thresholding
            keep = done.unsqueeze(-1)
            dx, dv = x_new - x, lam_new - lam
            x = torch.where(keep, x, x_new)
            lam = torch.where(keep, lam, lam_new)
            res = self.residuals(x, lam)
            # Polish what is close but not yet within tol: a point already within tol is
            # a valid answer, and the polish would cost as much as a Newton step.
            if opt.polish and bool(((res.worst < opt.polish_below) & (res.worst > self.tol)
                                    & ~done).any()):
                x, lam, res = self._try_polish(x, lam, res, done)
            bad = ~torch.isfinite(res.worst) | ~torch.isfinite(x).all(-1)
            if bool(((res.worst > self.tol) & ~done & ~bad).any()):
                infeas, unb = certificates(S, dv, dx, opt.infeasibility_tol)
            else:  # every open element is optimal: no certificate is needed
                infeas = unb = torch.zeros_like(done)
            for i in range(B):
                if done[i]:
                    continue
                if bad[i]:
                    status[i] = (Status.NUMERICAL_ERROR, "non-finite values in the iterates")
                elif res.worst[i] <= self.tol:
                    status[i] = (Status.OPTIMAL, "optimal: residuals and gap within tol")
                elif infeas[i]:
                    status[i] = (Status.INFEASIBLE, "primal infeasible: a Farkas certificate "
                                 "y >= 0 with A^T y = 0, b^T y < 0 was found")
                elif unb[i]:
                    status[i] = (Status.UNBOUNDED, "unbounded: a direction d with c^T d < 0 "
                                 "and A d <= 0 was found")
                if status[i] is not None:
                    done[i] = True
            if opt.verbose:
                print(f"outer {outer:4d} nit {self.nit:5d} primal {res.primal.max():.2e} "
                      f"dual {res.dual.max():.2e} gap {res.gap.max():.2e} "
                      f"sigma {sigma.max():.1e} tau {tau.max():.1e}")
            if bool(done.all()):
                break
            if self.nit >= opt.max_iter:
                limit_reason = f"iteration limit: max_iter={opt.max_iter} Newton steps reached"
                break
            if opt.time_limit is not None and time.perf_counter() - start > opt.time_limit:
                limit_reason = f"time limit of {opt.time_limit} s reached"
                break
            # Parameter schedules, then the inner tolerance, which tightens with the outer
            # residuals (inexact ALM, in the spirit of Rockafellar's criteria).
            if self.alm:
                # Balance the primal and dual residuals (as in SSNAL-type methods): a large
                # primal residual asks for a stiffer penalty, a large dual residual for a
                # softer one. sigma * tau bounds the condition number of the Newton system.
                ratio = (res.primal / res.dual.clamp_min(1e-300)).unsqueeze(-1)
                up = (ratio > opt.balance) & (res.primal > self.tol).unsqueeze(-1)
                down = (ratio < 1 / opt.balance) & (res.dual > self.tol).unsqueeze(-1)
                sigma = torch.where(up, sigma * opt.sigma_growth,
                                    torch.where(down, sigma / opt.sigma_growth, sigma))
                sigma = sigma.clamp(1.0 / opt.sigma_max, opt.sigma_max)
                tau = torch.minimum((tau * opt.tau_growth).clamp_max(opt.tau_max),
                                    self.max_cond / sigma)
            else:
                sigma = (sigma * opt.sigma_growth).clamp_max(opt.sigma_max)
            # Monotone: the inner accuracy only ever tightens.
            inner_tol = torch.minimum(inner_tol, torch.clamp(0.1 * res.worst, min=0.1 * self.tol))
            inner_tol = torch.maximum(0.2 * inner_tol, torch.full_like(inner_tol, 0.1 * self.tol))
        else:
            limit_reason = f"iteration limit: max_outer={opt.max_outer} outer steps reached"
        return self._finish(x, lam, res, status, limit_reason or "iteration limit", outer)

    def _try_polish(self, x, lam, res, done):
        """Active-set polish; keep it per element only where it lowers the residuals."""
        try:
            xp, lp_ = polish(self.S, self.strategy, x, lam)
        except (RuntimeError, ValueError):  # singular active-set system: keep the iterate
            return x, lam, res
        rp = self.residuals(xp, lp_)
        better = (rp.worst < res.worst) & ~done & torch.isfinite(rp.worst)
        if not bool(better.any()):
            return x, lam, res
        self.polished = self.polished | better
        if bool((better | done).all()):  # every open element takes the polished pair
            keep = done.unsqueeze(-1)
            if bool(done.any()):
                xp, lp_ = torch.where(keep, x, xp), torch.where(keep, lam, lp_)
                return xp, lp_, self.residuals(xp, lp_)
            return xp, lp_, rp
        sel = better.unsqueeze(-1)
        x = torch.where(sel, xp, x)
        lam = torch.where(sel, lp_, lam)
        return x, lam, self.residuals(x, lam)

    def _finish(self, x, lam, res, status, limit_reason, outer) -> Solution:
        S, lp = self.S, self.lp
        m, m_eq, nl, nu = S.sizes
        xs = x * S.k_scale * S.s
        v = lam * S.c_scale * S.r
        parts = torch.split(v, [m, m_eq, nl, nu], dim=1) if v.shape[1] == m + m_eq + nl + nu \
            else (v[:, :0],) * 4
        v_ub_rows = parts[0]
        B, n = x.shape
        v_lb = torch.zeros(B, n, dtype=x.dtype, device=x.device)
        v_ub = torch.zeros_like(v_lb)
        v_lb[:, S.lb_idx] = parts[2]
        v_ub[:, S.ub_idx] = parts[3]
        statuses, messages = [], []
        for i, st in enumerate(status):
            if st is None:
                worst = float(res.worst[i])
                st = (Status.ITERATION_LIMIT, f"{limit_reason}; worst relative residual "
                      f"{worst:.2e} > tol {self.tol:.0e} (primal {float(res.primal[i]):.2e}, "
                      f"dual {float(res.dual[i]):.2e}, gap {float(res.gap[i]):.2e})")
            statuses.append(st[0])
            messages.append(st[1])
        fun = (lp.c * xs).sum(-1)
        sol = Solution(x=xs, v=v_ub_rows, v_eq=parts[1], v_lb=v_lb, v_ub=v_ub,
                       fun=fun, status=statuses, message=messages, nit=self.nit,
                       primal_residual=res.primal, dual_residual=res.dual, gap=res.gap,
                       active=v_ub_rows > 0, outer_iterations=outer,
                       linear_solver=self.strategy.name, polished=self.polished,
                       batched=True)
        return sol if lp.batched else sol[0]
