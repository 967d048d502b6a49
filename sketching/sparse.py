r"""Sparse embeddings: CountSketch and OSNAP (sparse sign sketch).

Column ``i`` of ``S`` (one per input row) holds ``p`` nonzeros :math:`\pm 1/\sqrt{p}` in
distinct rows; ``p = 1`` is CountSketch (Clarkson & Woodruff 2013), ``p > 1`` is OSNAP
(Nelson & Nguyen 2013). Every column has unit norm, so ``diag(S^T S) = 1`` exactly, and
the independent random signs make the off-diagonal of ``S^T S`` zero in expectation:

.. math::

    \mathbb{E}[S^T S] = I_m .

Distinct rows come from the *block* construction: the ``s`` rows are cut into ``p``
contiguous blocks and each column picks one row uniformly in every block.
CountSketch embeds a ``d``-dimensional subspace with ``s = O(d^2/\varepsilon^2)`` rows;
OSNAP with ``p = O(\log d / \varepsilon)`` needs only ``s = O(d \log d / \varepsilon^2)``.

``S @ X`` costs ``O(p \cdot nnz(X))``: ``S`` is held as a sparse CSR matrix with ``p m``
nonzeros (never dense) and applied by one sparse-dense (or sparse-sparse) product.

References
----------
K. L. Clarkson and D. P. Woodruff, "Low rank approximation and regression in input
sparsity time", STOC 2013.
J. Nelson and H. L. Nguyen, "OSNAP: faster numerical linear algebra algorithms via
sparser subspace embeddings", FOCS 2013.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from sparselp.operators import csr_tensor

from .base import Sketch

__all__ = ["SparseSignSketch", "CountSketch"]


def _csr(rows: Tensor, cols: Tensor, vals: Tensor, shape) -> Tensor:
    """CSR matrix from triplets without duplicates (one sort; no COO coalescing pass)."""
    order = torch.argsort(rows * shape[1] + cols)
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=rows.device)
    crow[1:] = torch.bincount(rows, minlength=shape[0]).cumsum(0)
    return csr_tensor(crow, cols[order], vals[order], shape)


class SparseSignSketch(Sketch):
    """OSNAP sparse sign sketch: ``nnz_per_col`` entries ±1/sqrt(nnz_per_col) per column.

    Parameters
    ----------
    sketch_size : int
    n_rows : int
    generator : torch.Generator or int or None
    nnz_per_col : int
        Nonzeros per column, ``1 <= nnz_per_col <= sketch_size``. Default 8 (a common
        practical choice; Tropp et al. 2019 suggest ``min(s, 8)``).
    """

    def __init__(self, sketch_size: int, n_rows: int, generator=None, nnz_per_col: int = 8):
        super().__init__(sketch_size, n_rows, generator)
        if isinstance(nnz_per_col, bool) or not isinstance(nnz_per_col, int) \
                or not 1 <= nnz_per_col <= sketch_size:
            raise ValueError(f"nnz_per_col must be an integer in [1, sketch_size="
                             f"{sketch_size}], got {nnz_per_col!r}")
        self.nnz_per_col = p = nnz_per_col
        g, dev = self.generator, self.generator.device
        # Block j covers rows [lo_j, lo_{j+1}), lo_j = floor(j s / p); one row per block.
        lo = torch.tensor([j * sketch_size // p for j in range(p + 1)], device=dev)
        width = (lo[1:] - lo[:-1]).unsqueeze(-1)
        u = torch.rand(p, n_rows, generator=g, device=dev, dtype=torch.float64)
        self.hash = lo[:-1].unsqueeze(-1) + (u * width).long().clamp_max(width - 1)  # (p, m)
        self.signs = torch.randint(0, 2, (p, n_rows), generator=g,
                                   device=dev).mul_(2).sub_(1).to(torch.int8)
        self._matrices: dict = {}

    def _values(self, device, dtype) -> Tensor:
        return self._on("signs", self.signs, device, dtype) / math.sqrt(self.nnz_per_col)

    def _matrix(self, device, dtype, cols: Tensor | None = None,
                weights: Tensor | None = None, n_cols: int | None = None) -> Tensor:
        """``S`` as CSR (``p m`` nonzeros), columns relabelled by ``cols``, scaled by ``weights``.

        ``cols`` (n_rows,) maps column ``i`` of ``S`` to column ``cols[i]`` of a matrix with
        ``n_cols`` columns: the rows of a larger ``X`` that the sketch acts on.
        """
        h = self._on("hash", self.hash, device)
        vals = self._values(device, dtype)
        if weights is not None:
            vals = vals * weights.to(dtype).unsqueeze(0)
        c = torch.arange(self.n_rows, device=device) if cols is None else cols.to(device)
        return _csr(h.reshape(-1), c.unsqueeze(0).expand_as(h).reshape(-1), vals.reshape(-1),
                    (self.sketch_size, self.n_rows if n_cols is None else n_cols))

    def _csr(self, device, dtype) -> Tensor:
        key = ("csr", device, dtype)
        if key not in self._matrices:
            self._matrices[key] = self._matrix(device, dtype)
        return self._matrices[key]

    def _apply_dense(self, X):
        # CSR-times-dense gathers p rows of X per column of S: O(p m k), no copy of X.
        return self._csr(X.device, X.dtype) @ X

    def _apply_sparse(self, X):
        return torch.sparse.mm(self._csr(X.device, X.dtype).to_sparse_coo(), X).to_dense()

    def apply_rows(self, X, rows, weights=None):
        """``S @ (diag(weights) X[rows])`` as one sparse product with the full ``X``.

        The row selection and the weights are folded into the columns of ``S``, so
        ``X[rows]`` (which may be most of a large ``X``) is never copied.
        """
        if rows.shape != (self.n_rows,):
            raise ValueError(f"rows must have shape ({self.n_rows},), got {tuple(rows.shape)}")
        if X.layout != torch.strided:
            return super().apply_rows(X, rows, weights)
        return self._matrix(X.device, X.dtype, rows, weights, X.shape[0]) @ X


class CountSketch(SparseSignSketch):
    """CountSketch: one ±1 per column, in a uniformly random row (OSNAP with one nonzero).

    Parameters
    ----------
    sketch_size : int
    n_rows : int
    generator : torch.Generator or int or None
    """

    def __init__(self, sketch_size: int, n_rows: int, generator=None):
        super().__init__(sketch_size, n_rows, generator, nnz_per_col=1)
