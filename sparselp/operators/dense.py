"""Dense constraint matrices: a batch ``(B, m, n)``, or one ``(1, m, n)`` shared by it."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from .base import Operator
from .tensors import marked_rows

__all__ = ["DenseOperator"]


class DenseOperator(Operator):
    """Dense matrices ``(B, m, n)``; a leading batch of 1 is shared by the whole batch."""

    def __init__(self, data: Tensor, batch_size: int | None = None):
        if data.dim() == 2:
            data = data.unsqueeze(0)
        self.data = data
        self.shared = data.shape[0] == 1
        self.batch_size = batch_size or data.shape[0]
        self.m, self.n = data.shape[1], data.shape[2]
        self.dtype, self.device = data.dtype, data.device
        self._separable = None

    def mv(self, x):
        if self.shared:
            return x @ self.data[0].T
        # As a row vector times A^T (a view): on CPU, torch's (m x n)(n x 1) batched
        # product is 2.5x slower than the (1 x n)(n x m) one over the same memory
        # (B = 128, m = 200, n = 100, float64, one thread: 4.4 ms against 1.7 ms).
        return torch.bmm(x.unsqueeze(1), self.data.mT).squeeze(1)

    def rmv(self, y):
        if self.shared:
            return y @ self.data[0]
        return torch.bmm(y.unsqueeze(1), self.data).squeeze(1)

    def squared(self, cache: bool = True):
        return DenseOperator(self.data * self.data, self.batch_size)

    def sq_mv(self, w):
        return self.squared().mv(w)

    def sq_rmv(self, d):
        return self.squared().rmv(d)

    def gram(self, d):
        """``A^T diag(d) A`` from the rows with ``d != 0`` only, for the whole batch at once.

        Each element's active rows are gathered into one ``(B, k, n)`` batch, ``k`` the
        largest count of active rows, padded with rows of weight 0; one batched product
        forms every Gram (for m >> n most rows are inactive; a change of weights on a few
        rows, as between two Newton steps, costs those rows only).
        """
        B, m, n = d.shape[0], self.m, self.n
        a = self.data.expand(B, m, n)
        rows = marked_rows(d != 0)
        if rows.shape[1] < m:
            d = d.gather(1, rows)
            a = self.row_block(rows)
        return torch.bmm(a.transpose(1, 2), d.unsqueeze(-1) * a)

    def row_block(self, rows):
        B, r = rows.shape
        # index_select on the stacked rows: gather is several times slower on CPU.
        if self.shared:
            a = self.data[0].index_select(0, rows.reshape(-1))
        else:
            flat = rows + self.m * torch.arange(B, device=rows.device).unsqueeze(-1)
            a = self.data.reshape(B * self.m, self.n).index_select(0, flat.reshape(-1))
        return a.reshape(B, r, self.n)

    def scipy_rows(self, w):
        return [(sp.csr_matrix(self.weighted_rows(w[b], b).detach().cpu().numpy()),
                 np.zeros(self.n)) for b in range(self.batch_size)]

    @property
    def rows_separable(self):
        if self._separable is None:
            self._separable = bool(((self.data != 0).sum(-1) <= 1).all())
        return self._separable

    def scaled(self, r, s):
        data = r.unsqueeze(-1) * self.data * s.unsqueeze(-2)
        return DenseOperator(data, self.batch_size)

    def abs_extremes(self, r, s, dim):
        a = (r.unsqueeze(-1) * self.data * s.unsqueeze(-2)).abs_()
        hi = a.amax(-1 - dim)
        lo = a.masked_fill_(a == 0, float("inf")).amin(-1 - dim)
        return hi.expand(self.batch_size, -1), lo.expand(self.batch_size, -1)

    def astype(self, dtype):
        return DenseOperator(self.data.detach().to(dtype), self.batch_size)

    def take(self, idx):
        data = self.data if self.shared else self.data.index_select(0, idx)
        out = DenseOperator(data, idx.numel())
        out._separable = self._separable
        return out

    def absolute(self):
        return DenseOperator(self.data.detach().abs(), self.batch_size)

    def weighted_rows(self, w, b=0):
        a = self.dense_block(b)
        idx = torch.nonzero(w > 0).squeeze(-1)
        return w.index_select(0, idx).sqrt().unsqueeze(-1) * a.index_select(0, idx)

    def dense_block(self, b=0):
        return self.data[0 if self.shared else b]

    def to_dense(self, b=0):
        return self.dense_block(b)

    def to_scipy(self, b=0):
        return sp.csr_matrix(self.dense_block(b).detach().cpu().numpy())

    @property
    def nnz(self):
        return int(self.data.numel())
