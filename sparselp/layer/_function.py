r"""The autograd Function of the LP layer: exact forward, implicit backward on the active set.

Backward, for the primal output (implicit differentiation). On the active set ``J`` (tight
inequality rows, all equality rows, tight bounds) the solution is
:math:`x = (A_J^T A_J)^{-1} A_J^T b_J`. With :math:`H = A_J^T A_J`,
:math:`u = H^{-1} \bar x`, :math:`r = b_J - A_J x` (zero at a vertex):

.. math::

    \bar b_J = A_J u, \qquad \bar A_J = r u^T - (A_J u) x^T, \qquad \bar b_{J^c} = 0,
    \qquad \bar A_{J^c} = 0,

and tight bounds get :math:`\bar{lb}_i = \bar{ub}_i = u_i`. One solve with ``H`` per
backward, through the same Hessian strategies as the forward Newton steps.

For the optimal value :math:`f^* = c^T x^*` (the dual gives it without any solve):
:math:`\partial f^*/\partial c = x`, :math:`\partial f^*/\partial b = -v`,
:math:`\partial f^*/\partial A = v x^T`, and likewise for the equality rows and bounds.

``c``: ``x`` is piecewise constant in ``c``, so the plain gradient of ``x`` with respect
to ``c`` is zero (almost everywhere). ``c_grad="perturbed"`` instead returns the gradient
of the smoothed map :math:`c \mapsto E[x^*(c + \sigma Z)]`, :math:`Z \sim N(0, I)`,
estimated as :math:`\frac{1}{\sigma M}\sum_k \langle \bar x, x^*(c + \sigma Z_k) -
x^*(c)\rangle Z_k` (Berthet et al. 2020, with the unperturbed solution as baseline).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..problem import LinearProgram
from ..solution import Status
from ._forward import active_set, polish, solve_backend
from ._inputs import Matrix

__all__ = ["LPConfig", "LPFunction"]


@dataclass
class LPConfig:
    """Non-tensor arguments of :class:`LPFunction` (structure and settings)."""

    A: Matrix | None
    A_eq: Matrix | None
    backend: str = "sparselp"
    options: object = None
    c_grad: str = "plain"
    sigma: float = 0.1
    n_samples: int = 16
    generator: torch.Generator | None = None
    atol: float | None = None
    linear_solver: object = "auto"
    info: dict = field(default_factory=dict)


def _check_status(fr, backend):
    bad = [(i, s, m) for i, (s, m) in enumerate(zip(fr.status, fr.message))
           if s != Status.OPTIMAL]
    hard = [t for t in bad if t[1] in (Status.INFEASIBLE, Status.UNBOUNDED,
                                       Status.NUMERICAL_ERROR)]
    if hard:
        i, s, m = hard[0]
        raise RuntimeError(f"LP layer: batch element {i} is {s.name} ({backend}): {m}")
    return bad


class LPFunction(torch.autograd.Function):
    """``(c, A values, b, A_eq values, b_eq, lb, ub) -> (x, v, v_eq, fun)``, all batched."""

    @staticmethod
    def forward(ctx, cfg: LPConfig, c, a_vals, b, aeq_vals, b_eq, lb, ub):
        lp = LinearProgram(c.detach(), None if cfg.A is None else cfg.A.detached(),
                           None if b is None else b.detach(),
                           None if cfg.A_eq is None else cfg.A_eq.detached(),
                           None if b_eq is None else b_eq.detach(),
                           None if lb is None else lb.detach(),
                           None if ub is None else ub.detach())
        fr = solve_backend(lp, cfg.backend, cfg.options)
        cfg.info["not_optimal"] = _check_status(fr, cfg.backend)
        atol = cfg.atol if cfg.atol is not None else (1e-7 if c.dtype == torch.float64 else 1e-4)
        act = active_set(lp, fr.x, atol, cfg.linear_solver)
        x, v, v_eq, v_lb, v_ub = polish(lp, fr, act, atol)
        fun = (lp.c * x).sum(-1)
        ctx.cfg, ctx.lp, ctx.act = cfg, lp, act
        ctx.perturbed = None
        if cfg.c_grad == "perturbed" and ctx.needs_input_grad[1]:
            ctx.perturbed = _perturbed_solutions(lp, cfg)
        ctx.save_for_backward(x, v, v_eq, v_lb, v_ub)
        ctx.mark_non_differentiable(v, v_eq)
        return x, v, v_eq, fun

    @staticmethod
    def backward(ctx, gx, gv, gveq, gfun):
        x, v, v_eq, v_lb, v_ub = ctx.saved_tensors
        cfg, lp, act = ctx.cfg, ctx.lp, ctx.act
        need = ctx.needs_input_grad
        gc = gA = gb = gAeq = gbeq = glb = gub = None
        termsA, termsAeq = [], []
        zeros = torch.zeros_like
        if need[1]:
            gc = zeros(x)
        if need[3]:
            gb = zeros(v)
        if need[5]:
            gbeq = zeros(v_eq)
        if need[6]:
            glb = zeros(x)
        if need[7]:
            gub = zeros(x)
        if gx is not None and bool(gx.ne(0).any()):
            u = act.solve(gx)
            if lp.A is not None and (need[2] or need[3]):
                Au = act.wA * lp.A.mv(u)
                if need[3]:
                    gb = gb + Au
                if need[2]:
                    r = act.wA * torch.nan_to_num(lp.b - lp.A.mv(x), posinf=0.0)
                    termsA += [(r, u), (-Au, x)]
            if lp.A_eq is not None and (need[4] or need[5]):
                Eu = lp.A_eq.mv(u)
                if need[5]:
                    gbeq = gbeq + Eu
                if need[4]:
                    termsAeq += [(lp.b_eq - lp.A_eq.mv(x), u), (-Eu, x)]
            if need[6]:
                glb = glb + act.mlb * u
            if need[7]:
                gub = gub + act.mub * u
            if need[1] and ctx.perturbed is not None:
                gc = gc + _perturbed_grad(ctx.perturbed, gx, x, cfg.sigma)
        if gfun is not None:
            g = gfun.unsqueeze(-1)
            if need[1]:
                gc = gc + g * x
            if need[3]:
                gb = gb - g * v
            if need[2]:
                termsA.append((g * v, x))
            if need[5]:
                gbeq = gbeq - g * v_eq
            if need[4]:
                termsAeq.append((g * v_eq, x))
            if need[6]:
                glb = glb + g * v_lb
            if need[7]:
                gub = gub - g * v_ub
        if need[2]:
            gA = cfg.A.outer_grad(termsA) if termsA else zeros(cfg.A.values)
        if need[4]:
            gAeq = cfg.A_eq.outer_grad(termsAeq) if termsAeq else zeros(cfg.A_eq.values)
        return None, gc, gA, gb, gAeq, gbeq, glb, gub


def _perturbed_solutions(lp: LinearProgram, cfg: LPConfig):
    """Solutions ``x*(c + sigma Z_k)``, k < M, and the noise ``Z``, both of shape (M, B, n).

    With matrices shared by the batch, the ``M B`` perturbed problems are solved as one
    batch; otherwise one batched solve per sample.
    """
    M, (B, n) = cfg.n_samples, lp.c.shape
    Z = torch.randn((M, B, n), generator=cfg.generator, dtype=lp.dtype,
                    device="cpu" if cfg.generator is None else cfg.generator.device)
    Z = Z.to(lp.device)
    cp = lp.c.unsqueeze(0) + cfg.sigma * Z
    shared = all(mat is None or mat.Bk == 1 for mat in (cfg.A, cfg.A_eq))
    if shared:
        def rep(t):
            return None if t is None else t.repeat(M, 1)
        big = LinearProgram(cp.reshape(M * B, n),
                            None if cfg.A is None else cfg.A.detached(),
                            None if lp.A is None else rep(lp.b),
                            None if cfg.A_eq is None else cfg.A_eq.detached(),
                            None if lp.A_eq is None else rep(lp.b_eq), rep(lp.lb), rep(lp.ub))
        return solve_backend(big, cfg.backend, cfg.options).x.reshape(M, B, n), Z
    X = []
    for k in range(M):
        lpk = copy.copy(lp)  # same operators, perturbed objective
        lpk.c = cp[k]
        X.append(solve_backend(lpk, cfg.backend, cfg.options).x)
    return torch.stack(X), Z


def _perturbed_grad(pert, gx: Tensor, x: Tensor, sigma: float) -> Tensor:
    X, Z = pert
    w = (gx.unsqueeze(0) * (X - x.unsqueeze(0))).sum(-1, keepdim=True)  # (M, B, 1)
    return (w * Z).mean(0) / sigma
