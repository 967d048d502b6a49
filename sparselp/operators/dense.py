"""Dense constraint matrices: a batch ``(B, m, n)``, or one ``(1, m, n)`` shared by it."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from .base import Operator

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
        return torch.bmm(self.data, x.unsqueeze(-1)).squeeze(-1)

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
        out = []
        for k in range(self.batch_size):
            a = self.dense_block(k)
            dk = d[k]
            # Only the rows with d > 0 contribute; for m >> n most rows are inactive.
            idx = torch.nonzero(dk > 0).squeeze(-1)
            if idx.numel() < a.shape[0]:
                a, dk = a.index_select(0, idx), dk.index_select(0, idx)
            out.append(a.T @ (dk.unsqueeze(-1) * a))
        return torch.stack(out)

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
