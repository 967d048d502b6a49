r"""How much a row projection costs: objective, solution and score-gradient error.

A *minibatch LP* is an LP whose data depend differentiably on parameters :math:`\theta`
(the scores of the minibatch, or the right-hand side itself):
:math:`f^*(\theta) = \min_x c(\theta)^T x` s.t. :math:`A(\theta) x \le b(\theta)`,
:math:`A_{eq}(\theta) x = b_{eq}(\theta)`, :math:`lb \le x \le ub`. Where the primal-dual
solution :math:`(x, v, v_{eq})` is unique, the envelope theorem gives

.. math::

    \nabla_\theta f^* = \nabla_\theta \big[c^T x + v^T (A x - b)
    + v_{eq}^T (A_{eq} x - b_{eq})\big]_{x, v, v_{eq} \text{ fixed}},

i.e. :math:`\partial f^*/\partial b = -v` and :math:`\partial f^*/\partial A = v x^T`
chained to :math:`\theta` by autograd. For the reduced LP :math:`(S A, S b)` with solution
:math:`(x', v', v'_{eq})` the same formula holds with :math:`u = S^T v'` in place of ``v``
(:func:`sdr.reduce.lift`), which is the gradient the reduced LP hands to the backbone.
The *gradient cosine* compares the two; it is the accuracy :func:`sdr.select.select_dimension`
targets. Where the solution is not unique, the formula gives one subgradient.

LPs are solved by HiGHS (``scipy.optimize.linprog``), the reference, or by
:func:`sparselp.solver.solve` (``solver="sparselp"``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from sparselp.problem import LinearProgram
from sparselp.reference import highs_solve
from sparselp.solution import Status

from .reduce import lift, reduce

__all__ = ["SparseRows", "MinibatchLP", "LPResult", "solve_lp", "lagrangian_gradient",
           "compare_reduction", "full_solution"]


@dataclass
class SparseRows:
    """A sparse matrix as COO triplets whose values may carry autograd (shape (m, n))."""

    rows: Tensor
    cols: Tensor
    vals: Tensor
    shape: tuple

    def mv(self, x: Tensor) -> Tensor:
        """``A x`` by gather and scatter-add, differentiable in ``vals`` (and ``x``)."""
        out = torch.zeros(self.shape[0], dtype=self.vals.dtype, device=self.vals.device)
        return out.index_add(0, self.rows, self.vals * x[self.cols])

    def to_torch(self) -> Tensor:
        """Detached sparse COO tensor."""
        return torch.sparse_coo_tensor(torch.stack([self.rows, self.cols]),
                                       self.vals.detach(), self.shape).coalesce()


@dataclass
class MinibatchLP:
    """An LP built from parameters, with the sample each inequality row belongs to.

    Attributes
    ----------
    build : callable
        ``build(theta) -> dict`` (or a NamedTuple such as
        :class:`sparselp.formulations.LPData`) with keys ``c`` (n,), ``A`` (:class:`SparseRows`,
        or a dense or CSR (m, n) tensor), ``b`` (m,) and optionally ``A_eq``, ``b_eq``,
        ``lb``, ``ub``; every entry a differentiable function of ``theta``.
    theta : tensor
        The parameters (e.g. scores of shape (n_samples,)).
    rows_of_sample : long tensor of shape (m,)
        Sample of every inequality row, ``-1`` for rows tied to no sample.
    row_kind : long tensor of shape (m,), optional
        Family of every row; see :func:`sdr.projection.group_average_matrix`.
    """

    build: Callable[[Tensor], dict]
    theta: Tensor
    rows_of_sample: Tensor
    row_kind: Tensor | None = None

    def problem(self) -> LinearProgram:
        with torch.no_grad():
            d = _fields(self.build(self.theta.detach()))
        mat = lambda a: a.to_torch() if isinstance(a, SparseRows) else (  # noqa: E731
            None if a is None else a.detach())
        return LinearProgram(d["c"], mat(d["A"]), d["b"],
                             A_eq=mat(d.get("A_eq")), b_eq=d.get("b_eq"),
                             lb=d.get("lb"), ub=d.get("ub"))


@dataclass
class LPResult:
    """Primal-dual solution; ``v`` is the dual of ``A x <= b`` (``>= 0``), NaN if not optimal."""

    x: Tensor
    v: Tensor
    v_eq: Tensor
    fun: float
    status: str
    seconds: float


# The statuses solve_lp names; HiGHS's others (iteration limit, numerical trouble) are "error".
_NAMED = (Status.OPTIMAL, Status.INFEASIBLE, Status.UNBOUNDED)


def solve_lp(problem: LinearProgram, solver: str = "highs") -> LPResult:
    """Solve a single (unbatched) LP; statuses "optimal", "infeasible", "unbounded", "error".

    Parameters
    ----------
    problem : LinearProgram
        Batch size 1.
    solver : {"highs", "sparselp"}
    """
    if problem.batch_size != 1:
        raise ValueError(f"solve_lp needs a single LP, got batch size {problem.batch_size}")
    dt, dev = problem.dtype, problem.device
    t0 = time.perf_counter()
    if solver == "sparselp":
        from sparselp.solver import solve  # the lead's solver; optional path
        sol = solve(problem)
        status = sol.status.name.lower()
        return LPResult(sol.x.reshape(-1), sol.v.reshape(-1), sol.v_eq.reshape(-1),
                        float(sol.fun), status, time.perf_counter() - t0)
    if solver != "highs":
        raise ValueError(f"solver must be 'highs' or 'sparselp', got {solver!r}")
    ref = highs_solve(problem)
    secs = time.perf_counter() - t0
    st = ref.status[0]
    status = st.name.lower() if st in _NAMED else "error"
    if st != Status.OPTIMAL:
        nan = lambda k: torch.full((k,), float("nan"), dtype=dt, device=dev)  # noqa: E731
        return LPResult(nan(problem.n), nan(problem.m), nan(problem.m_eq), float("nan"),
                        status, secs)
    return LPResult(ref.x[0], ref.v[0], ref.v_eq[0], ref.fun[0], status, secs)


def lagrangian_gradient(mlp: MinibatchLP, x: Tensor, v: Tensor, v_eq: Tensor) -> Tensor:
    """``d/dtheta [c^T x + v^T (A x - b) + v_eq^T (A_eq x - b_eq)]`` at fixed ``x, v, v_eq``."""
    theta = mlp.theta.detach().clone().requires_grad_(True)
    d = _fields(mlp.build(theta))
    mv = lambda A, z: A.mv(z) if isinstance(A, SparseRows) else A @ z  # noqa: E731
    phi = d["c"] @ x + v @ (mv(d["A"], x) - d["b"])
    if d.get("A_eq") is not None and v_eq.numel():
        phi = phi + v_eq @ (mv(d["A_eq"], x) - d["b_eq"])
    (g,) = torch.autograd.grad(phi, theta, allow_unused=True)
    return torch.zeros_like(theta) if g is None else g


def _fields(d) -> dict:
    """The builder's output as a dict (a dict, or a NamedTuple such as ``LPData``)."""
    return d._asdict() if hasattr(d, "_asdict") else d


def _cos(a: Tensor, b: Tensor) -> float:
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return float("nan")
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(a @ b) / (na * nb)


def compare_reduction(mlp: MinibatchLP, projection, solver: str = "highs",
                      full: tuple | None = None) -> dict:
    """Solve the full and the reduced LP and measure what the reduction costs.

    Parameters
    ----------
    mlp : MinibatchLP
    projection : tensor of shape (k, m) or sketch
    full : (LinearProgram, LPResult, gradient), optional
        The full LP's solve, to reuse across projections.

    Returns
    -------
    dict
        ``k``, ``m``, ``ratio`` (k / m), ``status`` of the reduced solve, ``obj_rel_err``
        :math:`|f' - f| / \\max(|f|, 10^{-12})`, ``sol_rel_err``
        :math:`\\|x' - x\\| / \\max(\\|x\\|, 10^{-12})` (not meaningful where ``x`` is not
        unique, as after averaging), ``grad_cos``, ``time_full``, ``time_reduced`` (solve
        only), ``time_project`` (building ``S A, S b``), ``bytes_full``, ``bytes_reduced``.
        Metrics are NaN when the reduced LP is not solved to optimality.
    """
    if full is None:
        full = full_solution(mlp, solver)
    lp, res, g = full
    t0 = time.perf_counter()
    red = reduce(lp, projection)
    t_proj = time.perf_counter() - t0
    rres = solve_lp(red, solver)
    k = red.m
    out = dict(k=k, m=lp.m, ratio=k / lp.m, status=rres.status, time_full=res.seconds,
               time_reduced=rres.seconds, time_project=t_proj, bytes_full=lp.nbytes(),
               bytes_reduced=red.nbytes())
    if rres.status != "optimal":
        out.update(obj_rel_err=float("nan"), sol_rel_err=float("nan"), grad_cos=float("nan"))
        return out
    u = lift(projection, rres.v)
    g_red = lagrangian_gradient(mlp, rres.x, u, rres.v_eq)
    out.update(obj_rel_err=abs(rres.fun - res.fun) / max(abs(res.fun), 1e-12),
               sol_rel_err=float((rres.x - res.x).norm() / max(float(res.x.norm()), 1e-12)),
               grad_cos=_cos(g_red, g))
    return out


def full_solution(mlp: MinibatchLP, solver: str = "highs"):
    """``(problem, LPResult, gradient)`` of the full LP; raises if it is not optimal."""
    lp = mlp.problem()
    res = solve_lp(lp, solver)
    if res.status != "optimal":
        raise RuntimeError(f"the full LP is not solved to optimality (status {res.status})")
    return lp, res, lagrangian_gradient(mlp, res.x, res.v, res.v_eq)
