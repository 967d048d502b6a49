r"""Gaussian sketch: i.i.d. :math:`N(0, 1/s)` entries.

.. math::

    S_{ij} \sim N(0, 1/s), \qquad \mathbb{E}[S^T S] = I_m .

With ``s = O((d + \log(1/\delta)) / \varepsilon^2)`` rows it is a
:math:`(1 \pm \varepsilon)` subspace embedding of any fixed ``d``-dimensional subspace with
probability :math:`1 - \delta` (Johnson–Lindenstrauss; Woodruff 2014, Thm. 2.3). It is the
best-behaved sketch statistically and the most expensive: ``S @ X`` costs ``O(s m k)``.

The matrix is dense by nature, but it is not stored: it is regenerated block by block of
columns from a seed drawn at construction, so applying it needs ``O(s * block)`` memory
instead of ``O(s m)``. The entries are a deterministic function of the seed, the device
and the dtype of ``X`` (each block gets its own generator on ``X``'s device).

References
----------
W. B. Johnson and J. Lindenstrauss, "Extensions of Lipschitz mappings into a Hilbert
space", Contemp. Math. 26 (1984).
D. P. Woodruff, "Sketching as a tool for numerical linear algebra" (2014).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Sketch, _seed_from

__all__ = ["GaussianSketch"]


class GaussianSketch(Sketch):
    """Dense Gaussian sketch ``S`` of shape ``(sketch_size, n_rows)`` with ``N(0, 1/s)`` entries.

    Parameters
    ----------
    sketch_size : int
    n_rows : int
    generator : torch.Generator or int or None
        Only a 62-bit seed is drawn from it; the entries are regenerated on demand.

    Examples
    --------
    >>> import torch
    >>> S = GaussianSketch(20, 1000, generator=torch.Generator().manual_seed(0))
    >>> (S @ torch.randn(1000, 3, dtype=torch.float64)).shape
    torch.Size([20, 3])
    """

    def __init__(self, sketch_size: int, n_rows: int, generator=None):
        super().__init__(sketch_size, n_rows, generator)
        self.seed = _seed_from(self.generator)
        # Column-block width: about 4M entries of S alive at a time. Fixed per object so
        # that S does not depend on how it is applied.
        self.block = max(256, (1 << 22) // sketch_size)

    def _columns(self, j: int, device, dtype) -> Tensor:
        """Columns ``[j * block, (j + 1) * block)`` of ``S``."""
        lo, hi = j * self.block, min((j + 1) * self.block, self.n_rows)
        g = torch.Generator(device=device).manual_seed(self.seed + j)
        G = torch.randn(self.sketch_size, hi - lo, generator=g, device=device, dtype=dtype)
        return G.mul_(1.0 / math.sqrt(self.sketch_size))

    def _nblocks(self) -> int:
        return -(-self.n_rows // self.block)

    def _apply_dense(self, X):
        out = torch.zeros(self.sketch_size, X.shape[1], dtype=X.dtype, device=X.device)
        for j in range(self._nblocks()):
            lo = j * self.block
            Xj = X[lo:lo + self.block]
            out.addmm_(self._columns(j, X.device, X.dtype), Xj)
        return out

    def _apply_sparse(self, X):
        idx, vals = X.indices(), X.values()
        k = X.shape[1]
        out = torch.zeros(self.sketch_size, k, dtype=vals.dtype, device=vals.device)
        # Coalesced COO is sorted by row, so each column block of S meets a contiguous
        # run of nonzeros of X.
        bounds = torch.arange(0, self.n_rows + self.block, self.block, device=idx.device)
        cuts = torch.searchsorted(idx[0].contiguous(), bounds).tolist()
        for j in range(self._nblocks()):
            s, e = cuts[j], cuts[j + 1]
            if s == e:
                continue
            lo = j * self.block
            width = min(self.block, self.n_rows - lo)
            # (S_j X_j)^T = X_j^T S_j^T with X_j^T sparse: only the nonzeros are touched.
            XjT = torch.sparse_coo_tensor(torch.stack([idx[1, s:e], idx[0, s:e] - lo]),
                                          vals[s:e], (k, width), check_invariants=False)
            Gj = self._columns(j, vals.device, vals.dtype)
            out += torch.sparse.mm(XjT, Gj.T).T
        return out
