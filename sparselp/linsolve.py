r"""Linear solves: one ``solve(matvec, rhs)`` interface and the Newton-system strategies.

The Newton step of the solver, and the backward pass of the LP layer, both solve systems
with the generalized Hessian

.. math::

    H = A^T \operatorname{diag}(w) A + \operatorname{diag}(\text{shift}),
    \qquad w \ge 0,\ \text{shift} > 0,

held in a :class:`NewtonSystem`. A :class:`HessianStrategy` turns such a system into a
function ``rhs -> H^{-1} rhs`` (or an approximation of it, for sketches). The strategies
here are exact:

- ``"diagonal"``: closed form when every row of ``A`` has at most one nonzero, so ``H``
  is diagonal (binary AUC, AUC_mu);
- ``"cholesky"``: dense Cholesky of the ``n x n`` matrix, for small ``n``;
- ``"cg"``: matrix-free conjugate gradients with a Jacobi preconditioner, using only
  products with ``A`` and ``A^T``;
- ``"structured"``: separable rows plus a few dense rows and columns (the F-score and
  precision-at-recall LPs): diagonal plus low rank, solved by a Schur complement and
  Woodbury in O(nnz) (:mod:`sparselp.structured`; CPU and CUDA);
- ``"ldl"``: sparse ``LDL^T`` of the quasi-definite KKT form of ``H``, whose pattern never
  changes: analysed once per problem, refactored each step (QDLDL; CPU, optional package,
  :mod:`sparselp.factor`);
- ``"scipy"``: sparse direct factorization of ``H`` with SciPy's SuperLU, analysed anew
  at every step (CPU only);
- ``"dense-side"``: the same smaller-side matrix factored dense by LAPACK, for sparse LPs
  whose factor is nearly dense (CPU only).

Strategies that approximate ``H`` (the Hessian sketches of :mod:`sketching`) implement the
same interface; the solver loop does not know which one it holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .factor import have_qdldl, kkt_patterns
from .krylov import cg
from .operators import Operator
from .structured import DENSE_CAP, analyse

__all__ = ["cg", "NewtonSystem", "HessianStrategy", "DiagonalHessian", "CholeskyHessian",
           "CGHessian", "StructuredHessian", "ScipyHessian", "DenseSideHessian", "LDLHessian",
           "get_strategy", "STRATEGIES", "DENSE_MAX_N", "cholesky_solve"]


@dataclass
class NewtonSystem:
    """``H = A^T diag(w) A + diag(shift)``; ``w`` (B, m) >= 0, ``shift`` (B, n) or (B, 1) > 0."""

    op: Operator
    w: Tensor
    shift: Tensor

    def matvec(self, v: Tensor) -> Tensor:
        return self.op.rmv(self.w * self.op.mv(v)) + self.shift * v

    def diagonal(self) -> Tensor:
        return self.op.sq_rmv(self.w) + self.shift


class HessianStrategy:
    """Turns a :class:`NewtonSystem` into a solve ``rhs -> H^{-1} rhs``.

    Subclasses implement :meth:`factor`. ``exact`` says whether the solve is exact up to
    round-off (a sketch is not); the solver uses it only for reporting. ``clip_free``:
    the Newton loop cuts free columns' steps at their first kink
    (:func:`sparselp.newton.clip_free_columns`), measured to pay on the structured LPs only.
    """

    name = "base"
    exact = True
    clip_free = False

    def factor(self, system: NewtonSystem) -> Callable[[Tensor], Tensor]:
        raise NotImplementedError

    def supports(self, op: Operator) -> bool:
        return True


class DiagonalHessian(HessianStrategy):
    """Closed form for row-separable ``A`` (at most one nonzero per row)."""

    name = "diagonal"

    def supports(self, op):
        return op.rows_separable

    def factor(self, system):
        if not system.op.rows_separable:
            raise ValueError("linear_solver='diagonal' needs a constraint matrix with at most "
                             "one nonzero per row (A^T D A diagonal)")
        d = system.diagonal()
        return lambda rhs: rhs / d


class CholeskyHessian(HessianStrategy):
    """Dense Cholesky of the ``n x n`` Hessian (formed from the active rows only).

    ``factor(system, gram=G)`` takes ``G = A^T diag(w) A`` formed by the caller (the Newton
    loop keeps it from step to step and updates it by the rows whose weight changed,
    :class:`sparselp.batching.GramCache`); ``G`` is not modified.
    """

    name = "cholesky"
    accepts_gram = True

    def factor(self, system, gram: Tensor | None = None):
        U = self.upper(system, gram)
        return lambda rhs: cholesky_solve(U, rhs)

    @staticmethod
    def upper(system: NewtonSystem, gram: Tensor | None = None) -> Tensor:
        """The upper triangular ``U`` with ``U^T U = H`` (shape (B, n, n))."""
        H = system.op.gram(system.w) if gram is None else gram.clone()
        H.diagonal(dim1=-2, dim2=-1).add_(system.shift.expand(H.shape[0], H.shape[-1]))
        # H = U^T U with U upper triangular: the transpose of the lower factor, measured
        # about 15% faster on CPU (torch 2.14, one thread, 128 systems of n = 100:
        # 12.4 ms against 14.3 ms).
        U, info = torch.linalg.cholesky_ex(H, upper=True)
        if bool((info != 0).any()):
            # Round-off made H indefinite (huge w): add a relative diagonal jitter.
            jitter = 1e-12 * H.diagonal(dim1=-2, dim2=-1).abs().amax(-1)
            H.diagonal(dim1=-2, dim2=-1).add_(jitter.unsqueeze(-1))
            U = torch.linalg.cholesky(H, upper=True)
        return U


def cholesky_solve(U: Tensor, rhs: Tensor) -> Tensor:
    """``(U^T U)^{-1} rhs`` for ``rhs`` of shape (B, n), by two triangular solves: the same
    numbers as ``torch.cholesky_solve``, 2-6x faster on CPU (torch 2.14, one thread; 1.6 ms
    against 3.1 ms for 128 systems of n = 100)."""
    y = torch.linalg.solve_triangular(U.mT, rhs.unsqueeze(-1), upper=False)
    return torch.linalg.solve_triangular(U, y, upper=True).squeeze(-1)


class CGHessian(HessianStrategy):
    """Matrix-free Jacobi-preconditioned CG using only products with ``A`` and ``A^T``."""

    name = "cg"

    def __init__(self, tol: float = 1e-10, maxiter: int | None = None):
        self.tol, self.maxiter = tol, maxiter
        self.last_info = None

    def factor(self, system):
        pre = 1.0 / system.diagonal()

        def solve(rhs):
            x, self.last_info = cg(system.matvec, rhs, pre, self.tol, self.maxiter)
            return x
        return solve


class StructuredHessian(HessianStrategy):
    """Diagonal plus at most ``cap`` dense lines: Schur complement and Woodbury in O(nnz).

    ``supports(op)`` holds when every row has at most one entry outside a few dense
    columns, apart from a few dense rows, with ``k <= cap`` dense lines per batch element
    (found from the index pattern, :func:`sparselp.structured.analyse`). At most ``refine``
    steps of iterative refinement on the exact ``H`` follow a solve whose Woodbury part
    may have lost accuracy (see the module).
    """

    name = "structured"
    clip_free = True

    def __init__(self, cap: int = DENSE_CAP, refine: int = 3):
        self.cap, self.refine = cap, refine

    def supports(self, op):
        return analyse(op, self.cap) is not None

    def factor(self, system):
        lay = analyse(system.op, self.cap)
        if lay is None:
            raise ValueError(f"linear_solver='structured' needs a sparse constraint matrix "
                             f"whose rows have at most one entry outside at most {self.cap} "
                             f"dense rows and columns")
        return lay.factor(system.op, system.w, system.shift, self.refine)


class ScipyHessian(HessianStrategy):
    """Sparse direct solve by SciPy's SuperLU, on the smaller of the two sides (CPU).

    With ``M = diag(sqrt(w)) A_J`` (the active rows) and ``E`` the diagonal from the bound
    rows and the shift, ``H = M^T M + E``. When ``M`` has fewer rows than columns the
    Woodbury identity ``H^{-1} = E^{-1} - E^{-1} M^T (I + M E^{-1} M^T)^{-1} M E^{-1}``
    factors a ``k x k`` matrix instead of the ``n x n`` one (the normal equations of the
    smaller side, as interior-point codes do).
    """

    name = "scipy"

    def supports(self, op):
        return op.device.type == "cpu"

    def factor(self, system):
        import scipy.sparse as sp
        if system.op.device.type != "cpu":
            raise ValueError(f"linear_solver={self.name!r} runs on CPU tensors only")
        shift = system.shift.expand(system.w.shape[0], system.op.n).detach().cpu().numpy()
        solvers = []
        for (M, dg), s in zip(system.op.scipy_rows(system.w), shift):
            E = dg + s
            k = 0 if M is None else M.shape[0]
            if k == 0:
                solvers.append(lambda r, E=E: r / E)
            elif k < M.shape[1]:
                MEi = M @ sp.diags(1.0 / E)
                f = self._side(sp.identity(k, format="csc") + MEi @ M.T)
                solvers.append(lambda r, E=E, M=M, f=f: r / E - (M.T @ f(M @ (r / E))) / E)
            else:
                solvers.append(self._side(M.T @ M + sp.diags(E)))

        def solve(rhs):
            r = rhs.detach().cpu().numpy()
            out = np.stack([f(rk) for f, rk in zip(solvers, r)])
            return torch.from_numpy(out).to(rhs)
        return solve

    @staticmethod
    def _side(G) -> Callable[[np.ndarray], np.ndarray]:
        """``r -> G^{-1} r`` for the symmetric positive definite sparse ``G``."""
        import scipy.sparse.linalg as spla
        return spla.splu(G.tocsc(), permc_spec="MMD_AT_PLUS_A",
                         options={"SymmetricMode": True}).solve


class DenseSideHessian(ScipyHessian):
    """:class:`ScipyHessian`'s smaller side, factored dense by LAPACK's Cholesky (CPU).

    For sparse LPs whose factor is nearly dense anyway (QAP): on the same matrix, one
    LAPACK ``potrf`` beats SuperLU's sparse elimination by its blocked kernels. Measured on
    the whole Netlib solve of QAP8 (912 x 1,632; an ``LDL^T`` of 1.1e8 multiply-adds),
    one thread: 0.93 s against 2.71 s with SuperLU, the same 48 Newton steps (see
    :data:`LDL_FLOPS_MAX` for the replayed systems). Chosen by ``"auto"`` above
    :data:`LDL_FLOPS_MAX` when the problem has at most ``dense_max_n`` rows or columns
    (:func:`get_strategy`).
    """

    name = "dense-side"

    @staticmethod
    def _side(G):
        import scipy.linalg as sla
        c = sla.cho_factor(G.toarray(), check_finite=False)
        return lambda r: sla.cho_solve(c, r, check_finite=False)


class LDLHessian(HessianStrategy):
    """``LDL^T`` of the quasi-definite KKT form, analysed once per problem (CPU, float64).

    The first :meth:`factor` on an operator computes the ordering and elimination tree of
    each batch element's KKT matrix; later calls on the same operator (every Newton step
    of a solve, the polish) only refactor values. Needs the optional ``qdldl`` package;
    ``"auto"`` falls back to ``"scipy"`` without it (:func:`get_strategy`). Batches loop
    over their elements. Up to ``refine`` steps of iterative refinement on the exact ``H``
    while the relative residual is above ``rtol`` (a Newton direction needs no more; the
    polish refines its own solves).
    """

    name = "ldl"

    def __init__(self, refine: int = 2, rtol: float = 1e-10):
        self.refine, self.rtol = refine, rtol
        self._patterns = kkt_patterns()

    def supports(self, op):
        return op.device.type == "cpu" and have_qdldl()

    def factor(self, system):
        if system.op.device.type != "cpu":
            raise ValueError("linear_solver='ldl' runs on CPU tensors only")
        if not have_qdldl():
            raise ValueError("linear_solver='ldl' needs the qdldl package "
                             "(pip install 'sparselp[fast]')")
        w = system.w.detach().double().cpu().numpy()
        shift = system.shift.expand(system.w.shape[0], system.op.n).detach().double()
        pats = self._patterns.get(system.op)
        solvers = [p.factor(wk, sk, self.refine, self.rtol)
                   for p, wk, sk in zip(pats, w, shift.cpu().numpy())]

        def solve(rhs):
            r = rhs.detach().double().cpu().numpy()
            return torch.from_numpy(np.stack([f(rk) for f, rk in zip(solvers, r)])).to(rhs)
        return solve

    def flops(self, op: Operator) -> float:
        """Multiply-adds of one refactorization on ``op`` (the largest over the batch);
        analyses ``op`` once, the analysis is kept for the solves."""
        return max(p.flops() for p in self._patterns.get(op))

    @property
    def factorizations(self) -> int:
        """Numeric factorizations so far, over every operator and batch element."""
        return self._patterns.factorizations


#: Above this many multiply-adds per refactorization (a nearly dense factor) QDLDL's
#: column-by-column LDL^T loses to blocked kernels. Measured on the Newton systems of
#: whole Netlib solves replayed (``benchmarks.factor_choice``: factor and one solve a step,
#: one thread), QDLDL / SuperLU / LAPACK on the dense smaller side: QAP8 (1.1e8 multiply-
#: adds) 2.21 / 2.28 / 0.60 s; PEROLD (2.6e6) 2.11 / 11.7 / 6.87 s; MAROS (2.3e6) 1.08 /
#: 4.91 / 5.09 s; every problem below 1e6 many times faster with QDLDL.
LDL_FLOPS_MAX = 2e7


def _sparse_direct(op: Operator, dense_max_n: int) -> HessianStrategy:
    """The sparse direct strategy for ``op`` (CPU): ``"ldl"`` unless its factor is nearly
    dense; a nearly dense one goes to LAPACK's dense Cholesky of the smaller side when that
    side has at most ``dense_max_n`` rows, else to SuperLU; SuperLU also when ``qdldl`` is
    missing (no analysis tells a dense factor then). The strategy's ``name`` records which."""
    if not have_qdldl():
        return ScipyHessian()
    ldl = LDLHessian()
    if ldl.flops(op) <= LDL_FLOPS_MAX:
        return ldl
    return DenseSideHessian() if min(op.m, op.n) <= dense_max_n else ScipyHessian()


#: Rows or columns up to which "auto" factors a dense matrix (Cholesky of the n x n
#: Hessian of a dense LP, the dense smaller side of a nearly dense sparse one)
DENSE_MAX_N = 3000

STRATEGIES = {"diagonal": DiagonalHessian, "cholesky": CholeskyHessian, "cg": CGHessian,
              "structured": StructuredHessian, "scipy": ScipyHessian, "ldl": LDLHessian,
              "dense-side": DenseSideHessian}


def get_strategy(name_or_strategy, op: Operator,
                 dense_max_n: int = DENSE_MAX_N) -> HessianStrategy:
    """Pick the Newton-system strategy: a given instance, a name, or ``"auto"``.

    ``"auto"``: diagonal when ``A`` is row-separable; the structured solve when ``A`` is
    separable apart from a few dense rows and columns (any device); for other sparse ``A``
    on CPU the ``LDL^T`` analysed once (``"ldl"``); where that factor is nearly dense (more
    than :data:`LDL_FLOPS_MAX` multiply-adds) a dense Cholesky of the smaller side
    (``"dense-side"``) when the problem has at most ``dense_max_n`` rows or columns, else
    SciPy's SuperLU, as when ``qdldl`` is missing; otherwise Cholesky of the ``n x n``
    Hessian (formed from the active rows) when ``n <= dense_max_n``, else matrix-free CG.
    CG is last because the Newton systems of the augmented Lagrangian grow ill-conditioned
    as sigma grows.
    """
    if isinstance(name_or_strategy, HessianStrategy):
        return name_or_strategy
    name = name_or_strategy
    if name == "auto":
        if op.rows_separable:
            name = "diagonal"
        elif op.is_sparse and StructuredHessian().supports(op):
            name = "structured"
        elif op.is_sparse and op.device.type == "cpu":
            return _sparse_direct(op, dense_max_n)
        else:
            name = "cholesky" if op.n <= dense_max_n else "cg"
    if name not in STRATEGIES:
        raise ValueError(f"linear_solver must be 'auto' or one of {sorted(STRATEGIES)}, or a "
                         f"HessianStrategy instance; got {name!r}")
    strat = STRATEGIES[name]()
    if not strat.supports(op):
        raise ValueError(f"linear_solver={name!r} does not support this problem "
                         f"({_why_not(name, op)})")
    return strat


def _why_not(name: str, op: Operator) -> str:
    if name == "diagonal":
        return "rows not separable"
    if name == "structured":
        return "not separable apart from a few dense rows and columns"
    return "device " + str(op.device)
