r"""The differentiable LP layer: the functional :func:`lp_solve` and :class:`LPLayer`."""
from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from ..planner import check_problem
from ..solution import Solution
from ..warmstart import WarmStart
from ._function import LPConfig, LPFunction
from ._inputs import batch_inputs
from .unrolled import unrolled_solve

__all__ = ["lp_solve", "LPLayer"]

_MODES = ("implicit", "unrolled")
_C_GRADS = ("plain", "perturbed")
_BACKENDS = ("sparselp", "highs")


# Over 60 lines only through its public docstring; the body is about 30.
def lp_solve(c: Tensor, A: Tensor | None, b: Tensor | None, A_eq: Tensor | None = None,
             b_eq: Tensor | None = None, lb=None, ub=None, *, options=None,
             backend: str = "sparselp", mode: str = "implicit", c_grad: str = "plain",
             sigma: float = 0.1, n_samples: int = 16, generator: torch.Generator | None = None,
             unroll_steps: int = 20, unroll_eps: float = 1e-3, atol: float | None = None,
             linear_solver="auto", return_dual: bool = False, return_value: bool = False,
             strict: bool = False, memory_budget=None, warm_start=None):
    r"""Solve an LP and make its solution differentiable.

    .. math::

        x^*(c, A, b) = \arg\min_x \; c^T x \quad \text{s.t.} \quad A x \le b,
        \quad A_{eq} x = b_{eq}, \quad lb \le x \le ub,

    with ``x`` free unless bounds are given.

    Parameters
    ----------
    c : tensor of shape (n,) or (B, n)
    A : tensor of shape (m, n) or (B, m, n), dense or sparse (COO/CSR), or None
        A 2-D matrix is shared by the batch. Sparse matrices receive gradients on their
        stored entries only.
    b : tensor of shape (m,) or (B, m), or None
    A_eq, b_eq : optional, same conventions
    lb, ub : scalar or tensor of shape (n,) or (B, n), optional
    options : SolverOptions or dict, optional
        Options of :func:`sparselp.solver.solve` (``backend="sparselp"``).
    backend : {"sparselp", "highs"}
        ``"highs"`` solves each batch element with ``scipy.optimize.linprog`` on CPU (the
        reference, and the blackbox baseline of the benchmarks).
    mode : {"implicit", "unrolled"}
        ``"implicit"`` (default): exact forward, re-solved on its active set, and implicit
        differentiation on that set (see :mod:`sparselp.layer._function`). ``"unrolled"``:
        autograd through ``unroll_steps`` dense Newton steps of the exterior penalty with
        parameter ``unroll_eps`` (the paper's approach; inexact and memory-hungry, for
        comparison only).
    c_grad : {"plain", "perturbed"}
        Gradient of ``x`` with respect to ``c``. ``"plain"``: zero, the exact derivative
        of the piecewise-constant map (the optimal value still gets ``d f*/d c = x``).
        ``"perturbed"``: the Berthet et al. (2020) estimator of the gradient of
        :math:`E[x^*(c + \sigma Z)]` from ``n_samples`` extra solves, noise drawn from
        ``generator``.
    atol : float, optional
        Tolerance that decides which rows are tight (default 1e-7 in float64, 1e-4 in
        float32, relative to ``1 + |b_j|``).
    linear_solver : str or HessianStrategy
        Strategy for the active-set solves (``"auto"`` picks as the solver does).
    return_dual, return_value : bool
        Also return the dual ``v`` (shape (m,) or (B, m), ``v >= 0``, not differentiable)
        and/or the optimal value ``c^T x`` (shape () or (B,), differentiable).
    strict : bool
        Raise instead of warning when a batch element ends with ITERATION_LIMIT (its
        residuals are not within the solver's ``tol``). Without ``strict`` such an element
        gives a ``RuntimeWarning`` naming its status and residuals (once per call site,
        Python's default filter), and the point reached: ``x`` is the last (polished)
        iterate, the value ``c^T x`` at it, and the gradients those of the active set of
        that point, exact only once it is optimal.
    memory_budget : int, float or str, optional
        Bytes (or ``"2GB"``): when the predicted peak of the solve and its backward
        (:func:`sparselp.plan`) exceeds it, :class:`sparselp.MemoryBudgetError` is raised
        before solving.
    warm_start : Solution, tensor or WarmStart, optional
        ``backend="sparselp"``: start the solver from a previous solution of an LP of the
        same shapes (a :class:`~sparselp.Solution`; else a ValueError), from a primal
        point ``x0`` (a tensor of shape (n,) or (B, n):
        :func:`sparselp.warmstart.primal_iterate`), or from the last
        solution held by a :class:`~sparselp.warmstart.WarmStart`, which falls back to a
        cold start when the shapes differ and then holds this call's solution
        (``LPLayer(warm_start=True)`` and the losses' ``warm_start=True`` keep one).
        The answer and its gradients are those of a cold start; only the iterations
        differ. Ignored by ``backend="highs"``.

    Returns
    -------
    x : tensor of shape (n,) or (B, n)
        Followed by ``v`` and/or ``value`` when requested, in that order.

    Raises
    ------
    RuntimeError
        If a batch element is infeasible, unbounded or hit a numerical error, or with
        ``strict=True`` if it hit an iteration limit (else a warning and the point reached).

    References
    ----------
    Berthet, Blondel, Teboul, Cuturi, Vert, Bach, "Learning with Differentiable Perturbed
    Optimizers", NeurIPS 2020. Meng et al., NeurIPS 2021 (the unrolled comparison).
    """
    for name, val, allowed in (("mode", mode, _MODES), ("c_grad", c_grad, _C_GRADS),
                               ("backend", backend, _BACKENDS)):
        if val not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {val!r}")
    if c_grad == "perturbed" and not (sigma > 0 and n_samples >= 1):
        raise ValueError(f"c_grad='perturbed' needs sigma > 0 and n_samples >= 1, got "
                         f"sigma={sigma}, n_samples={n_samples}")
    if warm_start is not None and not isinstance(warm_start, (Solution, WarmStart, Tensor)):
        raise TypeError(f"warm_start must be a Solution, a tensor, a WarmStart or None, got "
                        f"{type(warm_start).__name__} (LPLayer(warm_start=True) and the "
                        f"losses' warm_start=True keep a WarmStart)")
    inp = batch_inputs(c, A, b, A_eq, b_eq, lb, ub)
    check_problem(inp.problem, memory_budget, "lp_solve")
    if mode == "unrolled":
        x, v, v_eq, fun = unrolled_solve(inp.c, inp.A, inp.b, inp.A_eq, inp.b_eq, inp.lb,
                                         inp.ub, unroll_steps, unroll_eps)
    else:
        cfg = LPConfig(inp.problem, inp.A, inp.A_eq, backend, options, c_grad, sigma,
                       n_samples, generator, atol, linear_solver, warm_start)
        x, v, v_eq, fun = LPFunction.apply(
            cfg, inp.c, None if inp.A is None else inp.A.values, inp.b,
            None if inp.A_eq is None else inp.A_eq.values, inp.b_eq, inp.lb, inp.ub)
        for i, s, msg in cfg.info.get("not_optimal", []):
            if strict:
                raise RuntimeError(f"LP layer (strict): batch element {i} is {s.name}: {msg}")
            warnings.warn(f"LP layer: batch element {i} is {s.name}: {msg}", RuntimeWarning,
                          stacklevel=2)
    if not inp.batched:
        x, v, fun = x[0], v[0], fun[0]
    out = [x]
    if return_dual:
        out.append(v)
    if return_value:
        out.append(fun)
    return out[0] if len(out) == 1 else tuple(out)


class LPLayer(nn.Module):
    r"""A linear program as a layer: ``forward(c, A, b) -> x``.

    .. math::

        x^* = \arg\min_x \; c^T x \quad \text{s.t.} \quad A x \le b
        \ (\text{and optionally } A_{eq} x = b_{eq},\ lb \le x \le ub)

    The keyword arguments of the constructor are those of :func:`lp_solve` (``options``,
    ``backend``, ``mode``, ``c_grad``, ...); they are stored and used on every call.
    ``forward`` takes ``c`` (n,) or (B, n), ``A`` (m, n) shared or (B, m, n), dense or
    sparse, ``b`` (m,) or (B, m), and optionally ``A_eq``, ``b_eq``, ``lb``, ``ub``;
    it returns ``x`` of shape (n,) or (B, n). Gradients flow to ``c`` (see ``c_grad``),
    to ``b`` and to the values of ``A`` by implicit differentiation on the active set.
    ``warm_start=True`` keeps a :class:`~sparselp.warmstart.WarmStart` (``self.warm_start``):
    each call starts from the previous call's solution when the shapes match.

    Examples
    --------
    >>> import torch
    >>> from sparselp.layer import LPLayer
    >>> layer = LPLayer()
    >>> c = torch.tensor([1.0, 1.0], dtype=torch.float64)
    >>> A = -torch.eye(2, dtype=torch.float64)
    >>> b = torch.tensor([-1.0, -2.0], dtype=torch.float64, requires_grad=True)
    >>> x = layer(c, A, b)       # x = (1, 2): the bounds x >= 1, x >= 2 are tight
    >>> x.sum().backward()
    >>> b.grad.round(decimals=6)
    tensor([-1., -1.], dtype=torch.float64)
    """

    def __init__(self, **kwargs):
        super().__init__()
        bad = set(kwargs) - {"options", "backend", "mode", "c_grad", "sigma", "n_samples",
                             "generator", "unroll_steps", "unroll_eps", "atol",
                             "linear_solver", "strict", "memory_budget", "warm_start"}
        if bad:
            raise TypeError(f"LPLayer got unknown keyword argument(s) {sorted(bad)}")
        if isinstance(kwargs.get("warm_start"), bool):
            kwargs["warm_start"] = WarmStart() if kwargs["warm_start"] else None
        self.kwargs = kwargs

    @property
    def warm_start(self):
        """The layer's :class:`~sparselp.warmstart.WarmStart` (or what was given), or None."""
        return self.kwargs.get("warm_start")

    def forward(self, c, A, b, A_eq=None, b_eq=None, lb=None, ub=None):
        return lp_solve(c, A, b, A_eq, b_eq, lb, ub, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items()
                         if k not in ("generator", "options", "warm_start"))
