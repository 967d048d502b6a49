"""The interface of a batch of constraint matrices, as the Newton solver sees it.

Every operator represents a batch of ``B`` matrices of shape ``(m, n)`` (one matrix may be
shared by the whole batch) and exposes only what the solver needs: products with ``A``
and ``A^T``, products with the elementwise square ``A∘A`` (row norms, Jacobi
preconditioner, equilibration), the Gram matrix ``A^T diag(d) A`` (dense, for Cholesky, or
scipy-sparse, for a sparse direct solve), a rescaled copy ``diag(r) A diag(s)``, and the
matrix of one batch element (for Hessian sketches and for the HiGHS reference). Sparse
matrices are never densified by the solver. Vectors are batched: ``x`` (B, n), ``y`` (B, m).
"""
from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import Tensor

__all__ = ["Operator"]


class Operator:
    """Interface of a batch of ``B`` matrices of shape ``(m, n)``."""

    batch_size: int
    m: int
    n: int
    dtype: torch.dtype
    device: torch.device

    # products --------------------------------------------------------------------------
    def mv(self, x: Tensor) -> Tensor:  # (B, n) -> (B, m)
        """``A x``: a new tensor, which the caller may overwrite in place."""
        raise NotImplementedError

    def rmv(self, y: Tensor) -> Tensor:  # (B, m) -> (B, n)
        raise NotImplementedError

    def sq_mv(self, w: Tensor) -> Tensor:  # (A∘A) w : (B, n) -> (B, m)
        raise NotImplementedError

    def sq_rmv(self, d: Tensor) -> Tensor:  # (A∘A)^T d : (B, m) -> (B, n)
        raise NotImplementedError

    def squared(self, cache: bool = True) -> "Operator":
        """The operator ``A∘A`` (elementwise square), for repeated ``sq_mv``/``sq_rmv``."""
        raise NotImplementedError

    # second-order structure -------------------------------------------------------------
    def gram(self, d: Tensor) -> Tensor:
        """Dense ``A^T diag(d) A`` of shape ``(B, n, n)`` (only for small ``n``)."""
        raise NotImplementedError

    def scipy_rows(self, w: Tensor) -> list:
        """Per batch element, ``(M, diag)`` with ``M^T M + diag(diag) = A^T diag(w) A``.

        ``M`` is ``diag(sqrt(w)) A`` on the rows with ``w > 0`` as a scipy CSR matrix (or
        None), ``diag`` a numpy vector of shape (n,) for rows that only touch the diagonal
        (variable bounds). Used by the sparse direct solver on CPU.
        """
        raise NotImplementedError

    @property
    def rows_separable(self) -> bool:
        """True when every row has at most one nonzero, so ``A^T D A`` is diagonal."""
        raise NotImplementedError

    def scaled(self, r: Tensor, s: Tensor) -> "Operator":
        """The operator ``diag(r) A diag(s)`` with ``r`` of shape (B, m), ``s`` (B, n)."""
        raise NotImplementedError

    def abs_extremes(self, r: Tensor, s: Tensor, dim: int) -> tuple[Tensor, Tensor]:
        """Largest and smallest nonzero ``|r_i a_ij s_j|`` of each row (``dim=0``, two
        tensors of shape (B, m)) or each column (``dim=1``, (B, n)), for geometric
        scaling; an empty row or column gets ``(0, inf)``."""
        raise NotImplementedError

    def astype(self, dtype: torch.dtype) -> "Operator":
        """The same matrices with values in ``dtype`` (a sparse copy shares the index
        pattern); the solver's float64 residuals and polish of a float32 problem."""
        raise NotImplementedError

    def absolute(self) -> "Operator":
        """The operator ``|A|`` (elementwise absolute values, detached): the size of the
        terms of a product, the scale of its round-off (float32 residuals)."""
        raise NotImplementedError

    def weighted_rows(self, w: Tensor, b: int = 0) -> Tensor:
        """``diag(sqrt(w)) A`` of batch element ``b`` restricted to the rows with ``w > 0``.

        Returned as a dense or sparse CSR torch matrix of shape (k, n). Used by Hessian
        sketches, which need the square-root factor of the Gram matrix explicitly.
        """
        raise NotImplementedError

    def row_block(self, rows: Tensor) -> Tensor | None:
        """Rows ``rows`` (shape (B, r), indices into each element's ``m`` rows) as a dense
        tensor of shape (B, r, n), or None where this operator cannot give them cheaply
        (the Newton loop's low-rank update of a factor then refactors instead,
        :class:`sparselp.lowrank.FactorCache`)."""
        return None

    def take(self, idx: Tensor) -> "Operator | None":
        """The batch elements ``idx`` (1-D, increasing) as an operator of batch
        ``len(idx)``, or None where this operator cannot select them cheaply: the solver
        then keeps working on the whole batch (:mod:`sparselp.batching`)."""
        return None

    # one batch element as a matrix ------------------------------------------------------
    def dense_block(self, b: int = 0) -> Tensor | None:
        """The stored dense ``(m, n)`` matrix of batch element ``b``, or None.

        A view, never a copy: only an operator that holds the whole matrix as one dense
        tensor (a dense matrix, or a stack of just that one) returns it. Lets a Hessian
        sketch act on the active rows in place instead of copying them out first; the
        copy alone costs about as much as a sparse sketch.
        """
        return None

    def to_dense(self, b: int = 0) -> Tensor:
        """The matrix of batch element ``b`` as a dense tensor of shape (m, n), for tests,
        references and small problems (a view of the stored matrix for a dense operator:
        do not modify it)."""
        raise NotImplementedError

    def to_scipy(self, b: int = 0) -> sp.csr_matrix:
        """The matrix of batch element ``b`` as a scipy CSR matrix of shape (m, n), on the
        host and detached (for scipy's solvers, such as the HiGHS reference)."""
        raise NotImplementedError

    @property
    def nnz(self) -> int:
        raise NotImplementedError

    @property
    def is_sparse(self) -> bool:
        return False

    # helpers ----------------------------------------------------------------------------
    def _expand(self, t: Tensor, size: int) -> Tensor:
        return t.expand(self.batch_size, size) if t.shape[0] == 1 else t
