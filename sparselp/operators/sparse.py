"""Sparse constraint matrices: values on a shared index pattern, never densified.

A batch of ``B`` matrices is held block-diagonally as one ``(B m, B n)`` matrix; a matrix
shared by the batch is held once. Scaled and squared copies share the index pattern
(:mod:`sparselp.operators.pattern`) and differ only in their values.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from .base import Operator
from .pattern import _coo_to_csr, _Pattern
from .tensors import coo_tensor, index_dtype, scatter_extremes

__all__ = ["SparseOperator"]


class SparseOperator(Operator):
    """Sparse matrices: values on a shared index pattern (:mod:`sparselp.operators.pattern`).

    A batch of ``B`` matrices is held block-diagonally as one ``(B m, B n)`` matrix, so
    one product serves the batch; a matrix shared by the batch takes all ``B``
    right-hand sides at once. ``A x`` and ``A^T y`` use CSR copies built on first use
    (2-5x faster than a scatter on CPU), or one gather / one scatter when every row holds
    one entry. With values that require gradients every product scatters, so autograd
    flows to them.
    """

    def __init__(self, rows: Tensor, cols: Tensor, vals: Tensor, m: int, n: int,
                 batch_size: int, shared: bool, pattern: "_Pattern | None" = None):
        # rows/cols index the stacked (Bk*m, Bk*n) matrix, Bk = 1 if shared else batch_size.
        self.m, self.n = m, n
        self.batch_size, self.shared = batch_size, shared
        self.dtype, self.device = vals.dtype, vals.device
        bk = 1 if shared else batch_size
        self._shape = (bk * m, bk * n)
        if pattern is None:
            # Only stacked matrices with 2^31 or more rows or columns need int64 indices.
            it = index_dtype(max(self._shape))
            rows, cols = rows.to(it), cols.to(it)
            pattern = _Pattern(rows, cols, self._shape)
        self._pattern = pattern
        self.cols, self.vals = pattern.cols, vals
        self._csr_pair = None
        self._sq = None
        self.use_csr = True

    @property
    def rows(self) -> Tensor:
        """Row index of each entry (built from the row pointers on first use)."""
        return self._pattern.rows

    @classmethod
    def from_csr(cls, crow: Tensor, cols: Tensor, vals: Tensor, m: int, n: int,
                 batch_size: int = 1) -> "SparseOperator":
        """A shared matrix from CSR arrays; the per-entry row indices are derived lazily."""
        it = index_dtype(max(m + 1, n, cols.numel()))
        pattern = _Pattern(None, cols.to(it), (m, n), crow=crow.to(it))
        return cls(None, pattern.cols, vals, m, n, batch_size, True, pattern)

    # construction -----------------------------------------------------------------------
    @classmethod
    def from_coo(cls, indices: Tensor, vals: Tensor, shape, batch_size: int | None = None):
        """From coalesced COO ``indices`` (2, nnz) for (m, n), or (3, nnz) for (B, m, n)."""
        if indices.shape[0] == 2:
            m, n = shape[-2], shape[-1]
            return cls(indices[0], indices[1], vals, m, n, batch_size or 1, shared=True)
        B, m, n = shape
        rows = indices[0] * m + indices[1]
        cols = indices[0] * n + indices[2]
        return cls(rows, cols, vals, m, n, B, shared=False)

    def _scatter(self, vals: Tensor, src_idx: Tensor, dst_idx: Tensor, x: Tensor, out: int):
        if self.shared and x.shape[0] > 1:
            res = x.new_zeros(x.shape[0], out)
            return res.index_add_(1, dst_idx, x.index_select(1, src_idx) * vals)
        if self.shared:  # one right-hand side: the flat scatter is much faster than dim=1
            res = x.new_zeros(out)
            return res.index_add_(0, dst_idx, x[0].index_select(0, src_idx) * vals).unsqueeze(0)
        flat = x.reshape(-1)
        res = x.new_zeros(self.batch_size * out)
        res.index_add_(0, dst_idx, flat.index_select(0, src_idx) * vals)
        return res.reshape(self.batch_size, out)

    def _csr(self, transpose: bool = False):
        """CSR of ``A`` (or of ``A^T``), each built on first use. The index arrays and
        orderings live in the shared pattern: a scaled or squared copy of this matrix
        only gathers its values."""
        if self._csr_pair is None:
            self._csr_pair = [None, None]
        if self._csr_pair[transpose] is None:
            make = self._pattern.csr_t if transpose else self._pattern.csr
            self._csr_pair[transpose] = make(self.vals)
        return self._csr_pair[transpose]

    def _products_by_csr(self, x: Tensor) -> bool:
        return self.use_csr and not (self.vals.requires_grad or x.requires_grad)

    def _csr_apply(self, K: Tensor, x: Tensor, out: int) -> Tensor:
        if not self.shared:
            return (K @ x.reshape(-1)).reshape(self.batch_size, out)
        if x.shape[0] == 1:
            return (K @ x[0]).unsqueeze(0)
        return (K @ x.T).T

    def _gather(self, x: Tensor, power: int = 1) -> Tensor:
        """``A x`` (``(A∘A) x`` for power 2) when row ``i`` holds exactly one entry, at
        ``cols[i]``: one gather."""
        if self.vals.requires_grad or x.requires_grad:
            mul = torch.mul
        else:
            mul = torch.Tensor.mul_  # in place on the fresh gather
        k = self._pattern.tiles() if self.shared else 0
        if k and mul is not torch.mul:
            return self._gather_tiles(x, k, power)
        if k:
            out = x.repeat(1, k)
        elif self.shared and x.shape[0] > 1:
            out = x.index_select(1, self.cols)
        elif self.shared:
            out = x[0].index_select(0, self.cols)
        else:
            out = x.reshape(-1).index_select(0, self.cols)
        for _ in range(power):
            out = mul(out, self.vals)
        return out.reshape(x.shape[0] if self.shared else self.batch_size, self.m)

    def _gather_tiles(self, x: Tensor, k: int, power: int) -> Tensor:
        """:meth:`_gather` of ``k`` stacked identity tiles: tile ``j`` of the result is
        ``x * vals_j`` (``power`` times), written in place, one pass over each tile
        instead of a repeat and then the products (the same products, in the same
        order)."""
        n = self.n
        out = x.new_empty(x.shape[0], k * n)
        for j in range(k):
            part, v = out[:, j * n:(j + 1) * n], self.vals[j * n:(j + 1) * n]
            torch.mul(x, v, out=part)
            for _ in range(power - 1):
                part.mul_(v)
        return out

    def _spread(self, y: Tensor, power: int = 1) -> Tensor:
        """``A^T y`` (``(A∘A)^T y`` for power 2) when row ``i`` holds exactly one entry, at
        ``cols[i]``: one scatter."""
        k = self._pattern.tiles() if self.shared else 0
        if k == 2 and not (y.requires_grad or self.vals.requires_grad):
            # Two tiles: y_1 v_1 + y_2 v_2 in two passes over n entries, no m-sized
            # product; the sum of two rounded products is what the reduction below forms.
            n = self.n
            v1, v2 = self.vals[:n], self.vals[n:]
            out, second = y[:, :n] * v1, y[:, n:] * v2
            if power == 2:
                out.mul_(v1)
                second.mul_(v2)
            return out.add_(second)
        flat = y if self.shared and y.shape[0] > 1 else y.reshape(-1)
        src = flat * self.vals
        if power == 2:
            src = src * self.vals if src.requires_grad else src.mul_(self.vals)
        if k:
            return src.reshape(y.shape[0], k, self.n).sum(1)
        if self.shared and y.shape[0] > 1:
            return y.new_zeros(y.shape[0], self.n).index_add_(1, self.cols, src)
        if self.shared:
            return y.new_zeros(self.n).index_add_(0, self.cols, src).unsqueeze(0)
        out = y.new_zeros(self.batch_size * self.n)
        return out.index_add_(0, self.cols, src).reshape(self.batch_size, self.n)

    def mv(self, x):
        # One entry per row (a selection, such as the pairwise rows of the AUC LPs): a
        # gather and a scatter need neither CSR copies nor orderings, so the memory of
        # the matrix stays that of its triplets.
        if self._pattern.one_per_row():
            return self._gather(x)
        if self._products_by_csr(x):
            return self._csr_apply(self._csr(), x, self.m)
        return self._scatter(self.vals, self.cols, self.rows, x, self.m)

    def rmv(self, y):
        if self._pattern.one_per_row():
            return self._spread(y)
        if self._products_by_csr(y):
            return self._csr_apply(self._csr(transpose=True), y, self.n)
        return self._scatter(self.vals, self.rows, self.cols, y, self.n)

    def squared(self, cache: bool = True):
        # Cached (unless cache=False, for a one-off use such as equilibration): the Newton
        # diagonal and the curvature of the line search multiply by A∘A at every step,
        # and its CSR copies share this matrix's pattern.
        if self._sq is not None and self._sq.vals.requires_grad == self.vals.requires_grad:
            return self._sq
        sq = SparseOperator(None, self.cols, self.vals * self.vals, self.m, self.n,
                            self.batch_size, self.shared, self._pattern)
        if cache:
            self._sq = sq
        return sq

    def sq_mv(self, w):
        if self._pattern.one_per_row():  # one gather, no squared copy held
            return self._gather(w, power=2)
        return self.squared().mv(w)

    def sq_rmv(self, d):
        if self._pattern.one_per_row():  # one scatter, no squared copy held
            return self._spread(d, power=2)
        return self.squared().rmv(d)

    @property
    def is_sparse(self):
        return True

    @property
    def nnz(self):
        return int(self.vals.numel())

    @property
    def rows_separable(self):
        return self._pattern.rows_separable()

    def scaled(self, r, s):
        if self.shared and (r.shape[0] > 1 or s.shape[0] > 1):
            # Different scalings per batch element turn a shared matrix into a batch.
            return self._unshare().scaled(r, s)
        # index_select: the advanced-indexing gather is orders of magnitude slower on CPU.
        rr = r.reshape(-1)
        if not self._pattern.one_per_row():  # else row i is entry i: no gather
            rr = rr.index_select(0, self.rows)
        vals = s.reshape(-1).index_select(0, self.cols).mul_(rr).mul_(self.vals)
        return SparseOperator(None, self.cols, vals, self.m, self.n, self.batch_size,
                              self.shared, self._pattern)

    def abs_extremes(self, r, s, dim):
        size = self.n if dim else self.m
        if self.shared:  # one row of entries per batch element: reduce along dim 1
            B = max(r.shape[0], s.shape[0])
            a = (r.index_select(1, self.rows) * s.index_select(1, self.cols)).mul_(
                self.vals).abs_().expand(B, -1)
            idx = (self.cols if dim else self.rows).long().expand(B, -1)
            shape, red = (B, size), 1
        else:  # block-diagonal: the flat entries index the stacked rows and columns
            a = (r.reshape(-1).index_select(0, self.rows)
                 * s.reshape(-1).index_select(0, self.cols)).mul_(self.vals).abs_()
            idx = (self.cols if dim else self.rows).long()
            shape, red = (self.batch_size * size,), 0
        hi, lo = scatter_extremes(a, idx, shape, red)
        return (hi.reshape(-1, size).expand(self.batch_size, -1),
                lo.reshape(-1, size).expand(self.batch_size, -1))

    def astype(self, dtype):
        return SparseOperator(None, self.cols, self.vals.detach().to(dtype), self.m, self.n,
                              self.batch_size, self.shared, self._pattern)

    def take(self, idx):
        if not self.shared:  # a block-diagonal batch: not selected (the solver keeps it)
            return None
        out = SparseOperator(None, self.cols, self.vals, self.m, self.n, idx.numel(), True,
                             self._pattern)
        out._csr_pair, out.use_csr = self._csr_pair, self.use_csr  # batch-free CSR copies
        return out

    def absolute(self):
        return SparseOperator(None, self.cols, self.vals.detach().abs(), self.m, self.n,
                              self.batch_size, self.shared, self._pattern)

    def _unshare(self) -> "SparseOperator":
        B, nz = self.batch_size, self.vals.numel()
        off = torch.arange(B, device=self.device).repeat_interleave(nz)
        rows = self.rows.repeat(B) + off * self.m
        cols = self.cols.repeat(B) + off * self.n
        return SparseOperator(rows, cols, self.vals.repeat(B), self.m, self.n, B, False)

    def _block(self, b: int):
        """COO parts of batch element ``b`` in local (m, n) coordinates."""
        if self.shared:
            return self.rows, self.cols, self.vals
        sel = (self.rows >= b * self.m) & (self.rows < (b + 1) * self.m)
        return self.rows[sel] - b * self.m, self.cols[sel] - b * self.n, self.vals[sel]

    def gram(self, d):
        out = []
        for b in range(self.batch_size):
            rows, cols, vals = self._block(b)
            w = d[b][rows] * vals
            keep = w != 0
            # A_J^T (D A_J) on the active rows only, by one sparse product.
            idx = torch.stack([rows[keep], cols[keep]])
            Aj = coo_tensor(idx, vals[keep], (self.m, self.n))
            DAj = coo_tensor(idx, w[keep], (self.m, self.n))
            out.append(torch.sparse.mm(Aj.t().coalesce(), DAj.coalesce()).to_dense())
        return torch.stack(out)

    def scipy_rows(self, w):
        out = []
        wn = w.detach().cpu().numpy()
        for b in range(self.batch_size):
            rows, cols, vals = (t.detach().cpu().numpy() for t in self._block(b))
            act = np.flatnonzero(wn[b] > 0)
            newrow = np.full(self.m, -1)
            newrow[act] = np.arange(act.size)
            keep = newrow[rows] >= 0
            M = sp.csr_matrix((vals[keep] * np.sqrt(wn[b][rows[keep]]),
                               (newrow[rows[keep]], cols[keep])), shape=(act.size, self.n))
            out.append((M, np.zeros(self.n)))
        return out

    def weighted_rows(self, w, b=0):
        rows, cols, vals = self._block(b)
        keep = w[rows] > 0
        idx = torch.nonzero(w > 0).squeeze(-1)
        newrow = torch.full((self.m,), -1, dtype=torch.long, device=self.device)
        newrow[idx] = torch.arange(idx.numel(), device=self.device)
        r = newrow[rows[keep]]
        v = vals[keep] * w[rows[keep]].sqrt()
        return _coo_to_csr(r, cols[keep], v, (idx.numel(), self.n))

    def to_dense(self, b=0):
        rows, cols, vals = self._block(b)
        out = vals.new_zeros(self.m, self.n)
        return out.index_put_((rows.long(), cols.long()), vals, accumulate=True)

    def to_scipy(self, b=0):
        rows, cols, vals = (t.detach().cpu().numpy() for t in self._block(b))
        return sp.csr_matrix((vals, (rows, cols)), shape=(self.m, self.n))
