"""The index structure of a sparse matrix, shared by its scaled and squared copies.

:class:`~sparselp.operators.SparseOperator` keeps its values and a pattern: row pointers,
column indices and the orderings by row and by column, each built once on first use, so
that CSR copies of ``A``, ``A^T``, a rescaled ``A`` or ``A∘A`` cost a gather of values
rather than a sort. Indices are int32 wherever they fit.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .tensors import coo_tensor, crow_to_rows, csr_tensor, quiet_sparse

__all__ = ["_Pattern", "_coo_to_csr"]


def _coo_to_csr(rows: Tensor, cols: Tensor, vals: Tensor, shape) -> Tensor:
    """CSR from COO triplets, duplicates summed, without a dense intermediate."""
    coo = coo_tensor(torch.stack([rows, cols]).long(), vals, shape).coalesce()
    with quiet_sparse():
        K = coo.to_sparse_csr()
    if rows.dtype == torch.int32:  # keep the caller's compact index type
        K = csr_tensor(K.crow_indices().to(torch.int32), K.col_indices().to(torch.int32),
                       K.values(), shape)
    return K


class _Pattern:
    """The index structure of a sparse matrix, shared by its scaled and squared copies.

    ``csr(vals)`` and ``csr_t(vals)`` give CSR tensors of the matrix and of its transpose
    for any values on this pattern; the row pointers and the orderings (stable counting
    of rows and of columns) are computed once, so a copy costs one gather of its values
    instead of a sort. Entries repeated at one position are kept apart; every product
    sums them, as COO does.
    """

    def __init__(self, rows: Tensor | None, cols: Tensor, shape, crow: Tensor | None = None):
        self._rows, self.cols, self.shape = rows, cols, shape
        self._crow = crow  # row pointers, when built from CSR (rows then come lazily)
        self._by_row = None if crow is None else (crow, cols, None)
        self._by_col = None
        self._separable = None
        self._one = None
        self._tiles = None
        self._count_range = None

    @staticmethod
    def _order(keys: Tensor, other: Tensor, size: int):
        sorted_ = keys.numel() <= 1 or bool((keys[1:] >= keys[:-1]).all())
        perm = None if sorted_ else torch.sort(keys, stable=True)[1].to(keys.dtype)
        counts = torch.bincount(keys, minlength=size)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).to(keys.dtype)
        return ptr, other if perm is None else other.index_select(0, perm), perm

    def csr(self, vals: Tensor) -> Tensor:
        if self._by_row is None:
            self._by_row = self._order(self.rows, self.cols, self.shape[0])
        ptr, idx, perm = self._by_row
        return csr_tensor(ptr, idx, vals if perm is None else vals.index_select(0, perm),
                          self.shape)

    def csr_t(self, vals: Tensor) -> Tensor:
        if self._by_col is None:
            self._by_col = self._order(self.cols, self.rows, self.shape[1])
        ptr, idx, perm = self._by_col
        return csr_tensor(ptr, idx, vals if perm is None else vals.index_select(0, perm),
                          self.shape[::-1])

    @property
    def rows(self) -> Tensor:
        if self._rows is None:
            self._rows = crow_to_rows(self._crow)
        return self._rows

    def _counts_from_crow(self) -> tuple[int, int]:
        """The fewest and the most entries of a row (0, 0 without rows), from the row
        pointers: one difference of them answers :meth:`one_per_row` and
        :meth:`rows_separable` alike."""
        if self._count_range is None:
            counts = self._crow[1:] - self._crow[:-1]
            self._count_range = (int(counts.amin()), int(counts.amax())) \
                if counts.numel() else (0, 0)
        return self._count_range

    def one_per_row(self) -> bool:
        """Every row holds exactly one entry and the triplets are in row order."""
        if self._one is None and self._crow is not None:
            self._one = self.cols.numel() == self.shape[0] and (
                self.shape[0] == 0 or self._counts_from_crow() == (1, 1))
        if self._one is None:
            r = self.rows
            self._one = r.numel() == self.shape[0] and (
                r.numel() == 0 or bool((r == torch.arange(r.numel(), dtype=r.dtype,
                                                          device=r.device)).all()))
        return self._one

    def tiles(self) -> int:
        """``k`` when the matrix is ``k`` identity blocks stacked (one entry a row, row
        ``r`` at column ``r mod n``: the pairwise hinge LPs' ``[-I; -I]``), else 0. Then
        a gather is a repeat and a scatter a sum over the blocks, without index arithmetic
        over the ``m`` rows (checked once per pattern)."""
        if self._tiles is None:
            m, n = self.shape
            self._tiles = 0
            if n and m % n == 0 and self.one_per_row():
                ar = torch.arange(n, dtype=self.cols.dtype, device=self.cols.device)
                # tile by tile: torch.equal reads both, where == would form an m-sized mask
                if all(torch.equal(self.cols[j * n:(j + 1) * n], ar) for j in range(m // n)):
                    self._tiles = m // n
        return self._tiles

    def rows_separable(self) -> bool:
        if self._separable is None and self._crow is not None:
            self._separable = self._counts_from_crow()[1] <= 1
        if self._separable is None:
            counts = torch.bincount(self.rows, minlength=1)
            self._separable = bool(counts.max() <= 1) if counts.numel() else True
        return self._separable
