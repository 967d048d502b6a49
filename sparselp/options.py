"""Validated solver options (a dataclass that rejects unknown keys)."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

__all__ = ["SolverOptions", "make_options"]


@dataclass(frozen=True)
class SolverOptions:
    """Options of :func:`sparselp.solve`.

    Parameters
    ----------
    tol : float, optional
        Relative tolerance on the primal residual, the dual residual and the duality gap
        (infinity norms, see :class:`~sparselp.Solution`). Default 1e-8 in float64 and
        1e-5 in float32.
    max_iter : int
        Limit on the total number of Newton steps (all outer iterations together).
    max_outer : int
        Limit on outer (multiplier or eps-continuation) iterations.
    max_inner : int
        Limit on Newton steps within one outer iteration (the inner solve is inexact by
        design: the outer loop tightens its tolerance). An element that runs out of them
        keeps its ``sigma`` and ``tau`` for the next outer step, or shortens ``tau`` when
        the limit was at least ``sparselp.schedule.HARD_INNER`` steps.
    method : {"alm", "penalty"}
        ``"alm"``: proximal augmented Lagrangian (method of multipliers) around the
        generalized Newton inner solve (default). ``"penalty"``: Mangasarian's exact
        penalty ``eps c^T y + 1/2 ||(A y - b)_+||^2`` with a decreasing eps
        (continuation, warm-started), the multiplier held at zero.
    linear_solver : str or HessianStrategy
        ``"auto"``, ``"diagonal"``, ``"cholesky"``, ``"cg"``, ``"structured"``, ``"ldl"``,
        ``"scipy"`` or a :class:`~sparselp.linsolve.HessianStrategy` instance (for example
        a Hessian sketch). The chosen strategy's name is ``Solution.linear_solver``.
    sigma0, sigma_growth, sigma_max : float
        Initial penalty parameter (1/eps) on the equilibrated problem, its growth factor per
        outer step when the primal residual does not fall fast enough, and its cap.
        ``sigma0=None`` (default) picks 1, or ``1/tol`` (``10/tol`` on float64 problems)
        when every row of the constraint matrix has at most one nonzero and the Newton
        systems are solved exactly by the diagonal strategy: there the Newton system's
        conditioning costs nothing, the per-coordinate exact line search minimises each
        subproblem in one step whatever ``sigma``, and the first outer step already lands
        within ``tol`` (in float64 without the polish); or 300 with the structured strategy
        (exact, in float64), or 100 with the dense Cholesky strategy on float64 problems
        (:func:`sparselp.schedule.default_start`).
    tau0, tau_growth, tau_max : float
        Proximal step of the ALM and its growth per outer step (``inf`` turns the proximal
        term off; the Newton system then gets ``rho`` instead). ``tau0=None`` (default)
        follows ``sigma0``'s rule, except with the dense Cholesky strategy on float64
        problems: 1.
    balance : float
        ALM only: sigma grows when primal residual / dual residual exceeds ``balance`` and
        shrinks when it falls below ``1 / balance``.
    polish : bool
        Try the active-set primal/dual (:mod:`sparselp.polish`) after each outer step once
        the worst residual is below ``polish_below``; kept only where it is better.
    polish_below : float
    mixed_precision : bool, optional
        Float32 problems only: measure the residuals (the certificate) and run the polish
        in float64, on a float64 copy of the equilibrated rows; the iterations stay in
        float32. A float32 residual cannot fall below its own round-off (about
        ``sqrt(n) eps``, seen at 1e-5 = ``tol`` for the F-score LP of a batch of 4,096),
        so without it such solves end at the iteration limit. ``None`` (default): on for
        sparse constraint matrices that are not row-separable (the copy costs a float64
        value per nonzero); dense and row-separable ones stay in float32.
    rho : float
        Regularisation added to the Newton system when there is no proximal term.
    scaling_iters : int
        Ruiz equilibration passes (0 turns scaling off).
    line_search : {"exact", "armijo"}
        ``"exact"``: the exact minimiser along the Newton direction (the objective is a
        piecewise quadratic, so this costs O(m) without products with A; default).
        ``"armijo"``: backtracking with sufficient decrease (Mangasarian 2004).
    armijo : float
        Sufficient-decrease constant of the backtracking line search.
    line_search_iters : int
        Limit on the iterations of the exact line searches (bracket doubling and root
        refinement, each).
    max_backtracks : int
        Limit on the halvings of the Armijo line search.
    infeasibility_tol : float
        Tolerance of the infeasibility and unboundedness certificates.
    unbounded_patience : int
        Outer steps an unboundedness ray must persist, without an infeasibility
        certificate, before UNBOUNDED is reported for a point not yet feasible to ``tol``
        (unbounded needs a feasible point; infeasibility takes precedence).
    time_limit : float, optional
        Wall-clock limit in seconds.
    presolve : bool
        Settle fixed variables, empty, singleton and duplicate rows, empty columns and
        crossed bounds before the iterations, and undo them (duals included) after
        (:mod:`sparselp.presolve`); unbatched problems only (ignored for batches). The
        answer is certified on the original problem.
    verbose : bool
        Print one line per outer iteration.
    """

    tol: float | None = None
    max_iter: int = 5000
    max_outer: int = 400
    max_inner: int = 60
    method: str = "alm"
    linear_solver: object = "auto"
    sigma0: float | None = None
    sigma_growth: float = 3.0
    sigma_max: float = 1e10
    tau0: float | None = None
    tau_growth: float = 3.0
    tau_max: float = 1e10
    balance: float = 5.0
    polish: bool = True
    polish_below: float = 1e-3
    mixed_precision: bool | None = None
    rho: float = 1e-9
    scaling_iters: int = 10
    line_search: str = "exact"
    armijo: float = 1e-4
    line_search_iters: int = 60
    max_backtracks: int = 40
    infeasibility_tol: float = 1e-7
    unbounded_patience: int = 3
    time_limit: float | None = None
    presolve: bool = False
    verbose: bool = False

    def tol_for(self, dtype) -> float:
        """``tol``, or its default for ``dtype`` (1e-8 in float64, 1e-5 otherwise)."""
        if self.tol is not None:
            return self.tol
        return 1e-8 if dtype == torch.float64 else 1e-5

    def __post_init__(self):
        if self.tol is not None and not (0 < self.tol < 1):
            raise ValueError(f"tol must be in (0, 1), got {self.tol}")
        for name in ("max_iter", "max_outer", "max_inner", "line_search_iters",
                     "max_backtracks", "unbounded_patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.scaling_iters < 0:
            raise ValueError(f"scaling_iters must be >= 0, got {self.scaling_iters}")
        if self.method not in ("alm", "penalty"):
            raise ValueError(f"method must be 'alm' or 'penalty', got {self.method!r}")
        for name in ("sigma0", "tau0", "sigma_max", "tau_max"):
            if getattr(self, name) is None and name in ("sigma0", "tau0"):
                continue
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("sigma_growth", "tau_growth"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.balance > 1:
            raise ValueError(f"balance must be > 1, got {self.balance}")
        if self.line_search not in ("exact", "armijo"):
            raise ValueError(f"line_search must be 'exact' or 'armijo', got {self.line_search!r}")
        if not 0 < self.armijo < 0.5:
            raise ValueError(f"armijo must be in (0, 0.5), got {self.armijo}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be positive, got {self.time_limit}")


_NAMES = {f.name for f in fields(SolverOptions)}


def make_options(options=None, **kwargs) -> SolverOptions:
    """Merge ``options`` (a SolverOptions, a dict or None) with keyword overrides.

    Unknown keys raise ``TypeError`` naming them and listing the valid ones.
    """
    if options is None:
        options = SolverOptions()
    elif isinstance(options, dict):
        kwargs = {**options, **kwargs}
        options = SolverOptions()
    elif not isinstance(options, SolverOptions):
        raise TypeError(f"options must be a SolverOptions, a dict or None, got "
                        f"{type(options).__name__}")
    unknown = sorted(set(kwargs) - _NAMES)
    if unknown:
        raise TypeError(f"unknown solver option(s) {unknown}; valid options are {sorted(_NAMES)}")
    return replace(options, **kwargs) if kwargs else options
