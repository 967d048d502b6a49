"""Row operators: bound rows (a selection of identity rows) and vertical stacks.

They complete the matrix operators of :mod:`sparselp.operators`: the solver stacks ``[A; A_eq; -I_L; I_U]`` into
one :class:`StackedOperator` whose bound rows are :class:`SelectionOperator` s, so that
bounds cost O(n) memory and add only to the diagonal of ``A^T D A``.
"""
from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import Tensor

from .base import Operator
from .pattern import _coo_to_csr
from .sparse import SparseOperator
from .tensors import quiet_sparse, scatter_extremes

__all__ = ["SelectionOperator", "StackedOperator"]


class SelectionOperator(Operator):
    """Rows ``sign * e_{idx_k}^T`` of a scaled identity: the rows of variable bounds.

    ``x -> sign * x[..., idx]``; ``scale`` holds a per-row factor (after equilibration).
    """

    def __init__(self, idx: Tensor, n: int, sign: float, batch_size: int, dtype, device,
                 scale: Tensor | None = None):
        self.idx, self.sign = idx, sign
        self.m, self.n, self.batch_size = idx.numel(), n, batch_size
        self.dtype, self.device = dtype, device
        self.scale = scale if scale is not None else torch.full(
            (1, self.m), float(sign), dtype=dtype, device=device)

    def mv(self, x):
        return self.scale * x[:, self.idx]

    def rmv(self, y):
        out = torch.zeros(y.shape[0], self.n, dtype=y.dtype, device=y.device)
        return out.index_add_(1, self.idx, self._expand(self.scale, self.m) * y)

    def squared(self, cache: bool = True):
        return SelectionOperator(self.idx, self.n, 1.0, self.batch_size, self.dtype,
                                 self.device, self.scale ** 2)

    def sq_mv(self, w):
        return self.scale ** 2 * w[:, self.idx]

    def sq_rmv(self, d):
        out = torch.zeros(d.shape[0], self.n, dtype=d.dtype, device=d.device)
        return out.index_add_(1, self.idx, self._expand(self.scale, self.m) ** 2 * d)

    def gram(self, d):
        return torch.diag_embed(self.sq_rmv(d))

    def row_block(self, rows):
        B, r = rows.shape
        out = torch.zeros(B, r, self.n, dtype=self.dtype, device=self.device)
        vals = self._expand(self.scale, self.m).expand(B, -1).gather(1, rows)
        return out.scatter_(2, self.idx[rows].unsqueeze(-1), vals.unsqueeze(-1))

    def scipy_rows(self, w):
        return [(None, g) for g in self.sq_rmv(w).detach().cpu().numpy()]

    @property
    def rows_separable(self):
        return True

    @property
    def is_sparse(self):
        return True

    @property
    def nnz(self):
        return self.m

    def scaled(self, r, s):
        scale = self.scale * r * s[:, self.idx]
        return SelectionOperator(self.idx, self.n, self.sign, self.batch_size, self.dtype,
                                 self.device, scale)

    def abs_extremes(self, r, s, dim):
        a = (self._expand(self.scale, self.m) * r * s[:, self.idx]).abs()
        if not dim:
            return a, a.masked_fill(a == 0, float("inf"))
        B = a.shape[0]
        return scatter_extremes(a, self.idx.expand(B, -1), (B, self.n), 1)

    def astype(self, dtype):
        return SelectionOperator(self.idx, self.n, self.sign, self.batch_size, dtype,
                                 self.device, self.scale.detach().to(dtype))

    def take(self, idx):
        scale = self.scale if self.scale.shape[0] == 1 else self.scale.index_select(0, idx)
        return SelectionOperator(self.idx, self.n, self.sign, idx.numel(), self.dtype,
                                 self.device, scale)

    def absolute(self):
        return SelectionOperator(self.idx, self.n, 1.0, self.batch_size, self.dtype,
                                 self.device, self.scale.detach().abs())

    def weighted_rows(self, w, b=0):
        keep = torch.nonzero(w > 0).squeeze(-1)
        sc = self._expand(self.scale, self.m)[b]
        vals = sc[keep] * w[keep].sqrt()
        r = torch.arange(keep.numel(), device=self.device)
        return _coo_to_csr(r, self.idx[keep], vals, (keep.numel(), self.n))

    def _entries(self, b: int):
        """(row, col, value) of the ``m`` entries of batch element ``b``."""
        return (torch.arange(self.m, device=self.device), self.idx,
                self._expand(self.scale, self.m)[b])

    def to_dense(self, b=0):
        rows, cols, vals = self._entries(b)
        out = torch.zeros(self.m, self.n, dtype=vals.dtype, device=self.device)
        return out.index_put_((rows, cols), vals, accumulate=True)

    def to_scipy(self, b=0):
        rows, cols, vals = (t.detach().cpu().numpy() for t in self._entries(b))
        return sp.csr_matrix((vals, (rows, cols)), shape=(self.m, self.n))


class StackedOperator(Operator):
    """Vertical stack ``[A_1; A_2; ...]`` of operators with the same ``n`` and batch."""

    def __init__(self, parts: list[Operator]):
        parts = [p for p in parts if p.m > 0] or parts[:1]
        self.parts = parts
        self.n, self.batch_size = parts[0].n, parts[0].batch_size
        self.dtype, self.device = parts[0].dtype, parts[0].device
        self.sizes = [p.m for p in parts]
        self.m = sum(self.sizes)
        self._whole = None  # [CSR of the stack, of its transpose], see _by_one_csr

    def _split(self, y):
        return torch.split(y, self.sizes, dim=1)

    def _by_one_csr(self, v: Tensor, transpose: bool) -> Tensor | None:
        """``K v`` (``K^T v`` with ``transpose``) by one scipy CSR matrix of the whole stack,
        built on first use, for one right-hand side ``v``; None where the parts' own
        products run (a batch, a gradient, a dense part, a GPU, a single part).

        One LP on CPU (a Netlib problem, ``linprog``): the parts' products and their
        concatenation (a split and sum for ``A^T y``) are each a few small torch calls, a
        fixed cost above the work itself. Measured on BNL1's stack (1,818 x 1,175, one
        thread): ``K x`` 51-55 us by the parts, 22 us by one torch CSR, 18 us by scipy on
        numpy views (the conversions included); ``K^T y`` 72-78, 20 and 17 us.
        """
        if self._whole is None:
            ok = (self.batch_size == 1 and len(self.parts) > 1 and self.device.type == "cpu"
                  and all(isinstance(p, SelectionOperator) and not p.scale.requires_grad
                          or isinstance(p, SparseOperator) and p.use_csr
                          and not p.vals.requires_grad for p in self.parts))
            self._whole = [None, None] if ok else False
        if self._whole is False or v.shape[0] != 1 or v.requires_grad:
            return None
        if self._whole[transpose] is None:
            M = sp.vstack([p.to_scipy(0) for p in self.parts], format="csr")
            M = M.T.tocsr() if transpose else M
            self._whole[transpose] = M.astype(v.numpy().dtype)
        return torch.from_numpy(self._whole[transpose] @ v[0].numpy()).unsqueeze(0)

    # With one part (an LP with free variables and only A x <= b), no copy is made: at
    # millions of rows a concatenation or a `0 + y` costs as much as the product.
    def _rows_of(self, method: str, x):
        if len(self.parts) == 1:
            return getattr(self.parts[0], method)(x)
        return torch.cat([getattr(p, method)(x) for p in self.parts], dim=1)

    def _cols_of(self, method: str, y):
        out = None
        for p, yk in zip(self.parts, self._split(y)):
            r = getattr(p, method)(yk)
            out = r if out is None else out.add_(r)
        return out

    def mv(self, x):
        Kx = self._by_one_csr(x, False)
        return self._rows_of("mv", x) if Kx is None else Kx

    def rmv(self, y):
        Ky = self._by_one_csr(y, True)
        return self._cols_of("rmv", y) if Ky is None else Ky

    def squared(self, cache: bool = True):
        return StackedOperator([p.squared(cache) for p in self.parts])

    def sq_mv(self, w):
        return self._rows_of("sq_mv", w)

    def sq_rmv(self, d):
        return self._cols_of("sq_rmv", d)

    def gram(self, d):
        """The sum of the parts' Grams; bound rows (:class:`SelectionOperator`) only add to
        the diagonal, in place, never as an ``n x n`` matrix of their own."""
        G = diag = None
        for p, dk in zip(self.parts, self._split(d)):
            if isinstance(p, SelectionOperator):
                g = p.sq_rmv(dk)
                diag = g if diag is None else diag.add_(g)
            else:
                g = p.gram(dk)
                G = g if G is None else G.add_(g)
        if G is None:
            return torch.diag_embed(diag)
        if diag is not None:
            G.diagonal(dim1=-2, dim2=-1).add_(diag)
        return G

    def row_block(self, rows):
        out, start = None, 0
        for p in self.parts:
            inside = (rows >= start) & (rows < start + p.m)
            block = p.row_block(torch.where(inside, rows - start, 0))
            if block is None:
                return None
            block = block.mul_(inside.unsqueeze(-1))
            out = block if out is None else out.add_(block)
            start += p.m
        return out

    def scipy_rows(self, w):
        per_part = [p.scipy_rows(wk) for p, wk in zip(self.parts, self._split(w))]
        out = []
        for parts in zip(*per_part):
            Ms = [M for M, _ in parts if M is not None and M.shape[0] > 0]
            M = sp.vstack(Ms, format="csr") if Ms else None
            out.append((M, sum(dg for _, dg in parts)))
        return out

    @property
    def rows_separable(self):
        return all(p.rows_separable for p in self.parts)

    @property
    def is_sparse(self):
        return any(p.is_sparse for p in self.parts if not isinstance(p, SelectionOperator)) \
            or all(isinstance(p, SelectionOperator) for p in self.parts)

    @property
    def nnz(self):
        return sum(p.nnz for p in self.parts)

    def scaled(self, r, s):
        return StackedOperator([p.scaled(rk, s) for p, rk in zip(self.parts, self._split(r))])

    def abs_extremes(self, r, s, dim):
        ext = [p.abs_extremes(rk, s, dim) for p, rk in zip(self.parts, self._split(r))]
        if not dim:
            return tuple(torch.cat([e[k] for e in ext], 1) for k in (0, 1))
        hi, lo = ext[0]
        for h, low in ext[1:]:
            hi, lo = torch.maximum(hi, h), torch.minimum(lo, low)
        return hi, lo

    def astype(self, dtype):
        return StackedOperator([p.astype(dtype) for p in self.parts])

    def take(self, idx):
        parts = []
        for p in self.parts:
            parts.append(p.take(idx))
            if parts[-1] is None:
                return None
        return StackedOperator(parts)

    def absolute(self):
        return StackedOperator([p.absolute() for p in self.parts])

    def weighted_rows(self, w, b=0):
        blocks = [p.weighted_rows(wk, b) for p, wk in zip(self.parts, torch.split(w, self.sizes))]
        if any(t.layout != torch.strided for t in blocks):
            # Mixed dense and sparse blocks: stack them as one sparse matrix.
            blocks = [t.to_sparse_coo() for t in blocks]
            with quiet_sparse():
                return torch.cat(blocks, dim=0).coalesce().to_sparse_csr()
        return torch.cat(blocks, dim=0)

    def dense_block(self, b=0):
        return self.parts[0].dense_block(b) if len(self.parts) == 1 else None

    def to_dense(self, b=0):
        return torch.cat([p.to_dense(b) for p in self.parts], dim=0)

    def to_scipy(self, b=0):
        return sp.vstack([p.to_scipy(b) for p in self.parts], format="csr")
