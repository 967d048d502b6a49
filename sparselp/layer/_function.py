r"""The autograd Function of the LP layer: exact forward, implicit backward on the active set.

The forward pass solves the problem and re-solves it on its active set ``J`` (tight
inequality rows, all equality rows, tight bounds), so the output is exactly
:math:`x = A_J^+ b_J`. The backward pass has two independent parts, each derived where
it is computed:

- :func:`_primal_part`, for a loss on ``x``: implicit differentiation of
  :math:`x = A_J^+ b_J`, one solve with :math:`H = A_J^T A_J` (+ equality rows and tight
  bounds) per backward, through the same Hessian strategies as the forward Newton steps;
- :func:`_value_part`, for a loss on the optimal value :math:`f^* = c^T x^*`: the
  envelope theorem, from the dual alone, without any solve.

``c``: ``x`` is piecewise constant in ``c``, so the plain gradient of ``x`` with respect
to ``c`` is zero (almost everywhere). ``c_grad="perturbed"`` instead returns the gradient
of the smoothed map :math:`c \mapsto E[x^*(c + \sigma Z)]`, :math:`Z \sim N(0, I)`,
estimated as :math:`\frac{1}{\sigma M}\sum_k \langle \bar x, x^*(c + \sigma Z_k) -
x^*(c)\rangle Z_k` (Berthet et al. 2020, with the unperturbed solution as baseline).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from ..operators import any_nonzero
from ..problem import LinearProgram
from ..solution import Status
from ._forward import ActiveSet, active_set, resolve_on_active_set, solve_backend
from ._inputs import Matrix

__all__ = ["LPConfig", "LPFunction"]


@dataclass
class LPConfig:
    """Non-tensor arguments of :class:`LPFunction` (the cleaned problem, structure, settings).

    ``problem`` is the detached, cleaned problem the forward pass solves; the tensors given
    to :meth:`LPFunction.apply` are the same numbers with the caller's autograd graph.
    """

    problem: LinearProgram
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
    warm_start: object = None  # None, a Solution, or a WarmStart holder (sparselp backend)
    info: dict = field(default_factory=dict)


class _Wanted(NamedTuple):
    """``ctx.needs_input_grad`` by name, in the order of :meth:`LPFunction.forward`'s inputs."""

    config: bool
    c: bool
    A: bool
    b: bool
    A_eq: bool
    b_eq: bool
    lb: bool
    ub: bool


@dataclass
class _Grads:
    """Gradients of the loss for the inputs, summed over the primal and the value part.

    ``A_terms``/``A_eq_terms`` are pairs ``(left (B, m), right (B, n))`` with
    ``dL/dA = sum left right^T``; :meth:`Matrix.outer_grad` turns them into gradients of
    the stored values at the end.
    """

    c: Tensor | None
    b: Tensor | None
    b_eq: Tensor | None
    lb: Tensor | None
    ub: Tensor | None
    A_terms: list = field(default_factory=list)
    A_eq_terms: list = field(default_factory=list)


def _check_status(solved, backend):
    """Raise for a batch element with no usable point; return the other non-OPTIMAL ones."""
    bad = [(i, s, m) for i, (s, m) in enumerate(zip(solved.status, solved.message))
           if s != Status.OPTIMAL]
    hard = [t for t in bad if t[1] in (Status.INFEASIBLE, Status.UNBOUNDED,
                                       Status.NUMERICAL_ERROR)]
    if hard:
        i, s, m = hard[0]
        raise RuntimeError(f"LP layer: batch element {i} is {s.name} ({backend}): {m}")
    return bad


class LPFunction(torch.autograd.Function):
    """``(c, A values, b, A_eq values, b_eq, lb, ub) -> (x, v, v_eq, fun)``, all batched.

    Applied by :func:`~sparselp.layer.lp_solve`, which builds ``cfg.problem`` from the same
    tensors: the forward pass solves ``cfg.problem`` (cleaned once), the tensor arguments
    carry the autograd graph.
    """

    @staticmethod
    def forward(ctx, cfg: LPConfig, c, a_vals, b, aeq_vals, b_eq, lb, ub):
        # The tensor arguments are there for autograd; their (detached) values are
        # cfg.problem's, already cleaned.
        lp = cfg.problem
        solved = solve_backend(lp, cfg.backend, cfg.options, cfg.warm_start)
        cfg.info["not_optimal"] = _check_status(solved, cfg.backend)
        atol = cfg.atol if cfg.atol is not None else (1e-7 if c.dtype == torch.float64 else 1e-4)
        active = active_set(lp, solved.x, atol, cfg.linear_solver)
        x, v, v_eq, v_lb, v_ub = resolve_on_active_set(lp, solved, active, atol)
        fun = (lp.c * x).sum(-1)
        ctx.cfg, ctx.lp, ctx.active = cfg, lp, active
        ctx.perturbed = None
        if cfg.c_grad == "perturbed" and _Wanted(*ctx.needs_input_grad).c:
            ctx.perturbed = _perturbed_solutions(lp, cfg)
        ctx.save_for_backward(x, v, v_eq, v_lb, v_ub)
        ctx.mark_non_differentiable(v, v_eq)
        return x, v, v_eq, fun

    @staticmethod
    def backward(ctx, grad_x, grad_v, grad_v_eq, grad_fun):
        # v and v_eq are marked non-differentiable: grad_v, grad_v_eq carry nothing.
        x, v, v_eq, v_lb, v_ub = ctx.saved_tensors
        wanted = _Wanted(*ctx.needs_input_grad)

        def zeros_if(wants: bool, like: Tensor):
            return torch.zeros_like(like) if wants else None
        grads = _Grads(zeros_if(wanted.c, x), zeros_if(wanted.b, v), zeros_if(wanted.b_eq, v_eq),
                       zeros_if(wanted.lb, x), zeros_if(wanted.ub, x))
        if grad_x is not None and any_nonzero(grad_x):
            _primal_part(ctx.lp, ctx.active, x, grad_x, wanted, grads)
            if wanted.c and ctx.perturbed is not None:
                grads.c += _perturbed_grad(ctx.perturbed, grad_x, x, ctx.cfg.sigma)
        if grad_fun is not None:
            _value_part(grad_fun, x, v, v_eq, v_lb, v_ub, wanted, grads)
        cfg = ctx.cfg
        grad_A = grad_A_eq = None
        if wanted.A:
            grad_A = cfg.A.outer_grad(grads.A_terms) if grads.A_terms \
                else torch.zeros_like(cfg.A.values)
        if wanted.A_eq:
            grad_A_eq = cfg.A_eq.outer_grad(grads.A_eq_terms) if grads.A_eq_terms \
                else torch.zeros_like(cfg.A_eq.values)
        return None, grads.c, grad_A, grads.b, grad_A_eq, grads.b_eq, grads.lb, grads.ub


def _primal_part(lp: LinearProgram, active: ActiveSet, x: Tensor, grad_x: Tensor,
                 wanted: _Wanted, grads: _Grads) -> None:
    r"""Add the gradients that reach the inputs through the primal output ``x``.

    On the active set (tight rows ``J`` of ``A``, all rows of ``A_eq``, tight bounds) ``x``
    solves the normal equations

    .. math::

        H x = A_J^T b_J + A_{eq}^T b_{eq} + P_{lb}\, lb + P_{ub}\, ub, \qquad
        H = A_J^T A_J + A_{eq}^T A_{eq} + P_{lb} + P_{ub},

    with :math:`P_{lb}, P_{ub}` the diagonal 0/1 masks of the tight bounds
    (``active.tight_lb``, ``active.tight_ub``), i.e. :math:`x = A_J^+ b_J` at a vertex. With
    :math:`u = H^{-1} ar x` (one solve; ``H`` is symmetric) and the residual
    :math:`r = b_J - A_J x` (zero at a vertex, kept for non-vertex optima):

    - the right-hand side gets :math:`u` pushed through it: :math:`ar b_J = A_J u`,
      :math:`ar b_{eq} = A_{eq} u`, :math:`ar{lb} = P_{lb} u`, :math:`ar{ub} = P_{ub} u`;
    - a matrix appears in the right-hand side and in ``H``: from
      :math:`dx = H^{-1}(dA_J^T r - A_J^T dA_J\, x)`,
      :math:`ar A_J = r u^T - (A_J u) x^T`, and likewise for ``A_eq``;
    - rows and bounds that are not tight get zero; ``c`` gets zero (``x`` is piecewise
      constant in ``c``) unless ``c_grad="perturbed"``.
    """
    u = active.solve(grad_x)
    if lp.A is not None and (wanted.A or wanted.b):
        A_u = lp.A.mv(u).mul_(active.tight_rows)  # A_J u, zero off J
        if wanted.b:
            grads.b += A_u
        if wanted.A:
            # +inf rows of b are off (never tight): their residual is 0, not inf.
            r = active.tight_rows * torch.nan_to_num(lp.b - lp.A.mv(x), posinf=0.0)
            grads.A_terms += [(r, u), (-A_u, x)]
    if lp.A_eq is not None and (wanted.A_eq or wanted.b_eq):
        A_eq_u = lp.A_eq.mv(u)
        if wanted.b_eq:
            grads.b_eq += A_eq_u
        if wanted.A_eq:
            grads.A_eq_terms += [(lp.b_eq - lp.A_eq.mv(x), u), (-A_eq_u, x)]
    if wanted.lb:
        grads.lb += active.tight_lb * u
    if wanted.ub:
        grads.ub += active.tight_ub * u


def _value_part(grad_fun: Tensor, x: Tensor, v: Tensor, v_eq: Tensor, v_lb: Tensor,
                v_ub: Tensor, wanted: _Wanted, grads: _Grads) -> None:
    r"""Add the gradients that reach the inputs through the optimal value ``fun = c^T x``.

    By the envelope theorem the derivative of :math:`f^*` is that of the Lagrangian

    .. math::

        c^T x + v^T (A x - b) + v_{eq}^T (A_{eq} x - b_{eq}) + v_{lb}^T (lb - x)
        + v_{ub}^T (x - ub)

    at the fixed primal-dual point: :math:`\partial f^*/\partial c = x`,
    :math:`\partial f^*/\partial b = -v`, :math:`\partial f^*/\partial A = v x^T`,
    :math:`\partial f^*/\partial b_{eq} = -v_{eq}`,
    :math:`\partial f^*/\partial A_{eq} = v_{eq} x^T`,
    :math:`\partial f^*/\partial lb = v_{lb}`, :math:`\partial f^*/\partial ub = -v_{ub}`.
    No linear solve. Each is scaled by the incoming ``grad_fun`` (B,).
    """
    g = grad_fun.unsqueeze(-1)
    if wanted.c:
        grads.c += g * x
    if wanted.b:
        grads.b -= g * v
    if wanted.A:
        grads.A_terms.append((g * v, x))
    if wanted.b_eq:
        grads.b_eq -= g * v_eq
    if wanted.A_eq:
        grads.A_eq_terms.append((g * v_eq, x))
    if wanted.lb:
        grads.lb += g * v_lb
    if wanted.ub:
        grads.ub -= g * v_ub


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
