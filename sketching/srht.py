r"""Subsampled randomized Hadamard transform (SRHT) and the fast Walsh–Hadamard transform.

.. math::

    S = \sqrt{\tfrac{M}{s}}\; P \, \tfrac{1}{\sqrt{M}} H_M \, D ,
    \qquad \mathbb{E}[S^T S] = I_m ,

with ``X`` zero-padded from ``m`` to ``M = 2^{\lceil \log_2 m \rceil}`` rows, ``D`` a
diagonal of random signs, ``H_M`` the (Sylvester-ordered, unnormalised) Walsh–Hadamard
matrix, and ``P`` ``s`` rows of the identity sampled uniformly without replacement
(``E[P^T P] = (s/M) I``). ``D`` spreads the mass of every fixed vector evenly over the
coordinates (incoherence), after which uniform row sampling preserves norms; ``s =
O((d + \log m) \log d / \varepsilon^2)`` rows embed a ``d``-dimensional subspace (Tropp 2011).

How ``S @ X`` is computed. A full FWHT (:func:`fwht`) costs ``M k log2 M`` additions in
``log2 M`` memory-bound passes, of which only ``s`` output rows are kept. With the Kronecker
split ``H_M = H_b \otimes H_a`` (``M = a b``, high bits first) we instead

1. apply ``H_b`` to the ``(b, a k)`` matrix of row blocks, with :func:`fwht` (``log2 b``
   passes), and
2. for every sampled row ``j = j_2 a + j_1`` take the inner product of row ``j_1`` of
   ``H_a`` (generated from bit parities) with block ``j_2``: ``s a k`` multiply-adds in
   BLAS-3 products grouped by ``j_2``.

The cost ``O(M k log b + s a k)`` is smallest near ``b = sqrt(s)`` (rounded to a power of
two), which is the split used.

References
----------
N. Ailon and B. Chazelle, "The fast Johnson–Lindenstrauss transform and approximate
nearest neighbors", SIAM J. Comput. 39 (2009).
J. A. Tropp, "Improved analysis of the subsampled randomized Hadamard transform",
Adv. Adapt. Data Anal. 3 (2011).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Sketch, _next_pow2

__all__ = ["SRHTSketch", "fwht", "hadamard_rows"]


def fwht(x: Tensor, inplace: bool = False) -> Tensor:
    """Unnormalised fast Walsh–Hadamard transform along the first dimension.

    Parameters
    ----------
    x : tensor of shape (M, ...) with ``M`` a power of two
    inplace : bool
        Overwrite ``x`` (contiguous) instead of a copy; saves one ``M k`` allocation.

    Returns
    -------
    tensor of shape (M, ...)
        ``H_M x`` for the Sylvester-ordered Hadamard matrix
        ``H_{2M} = [[H_M, H_M], [H_M, -H_M]]`` (entries ±1; ``H_M^T H_M = M I``).
        Computed with ``log2 M`` butterfly passes, ``O(M log M)`` work per column.
    """
    M = x.shape[0]
    if M & (M - 1):
        raise ValueError(f"fwht needs a power-of-two length along dim 0, got {M}")
    if inplace and not x.is_contiguous():
        raise ValueError("fwht(inplace=True) needs a contiguous x")
    y = x.view(M, -1) if inplace else x.reshape(M, -1).clone()
    k = y.shape[1]
    # One scratch buffer for all passes: fresh large allocations are page-fault bound.
    scratch = torch.empty((M // 2) * k, dtype=y.dtype, device=y.device)
    h = 1
    while h < M:
        v = y.view(M // (2 * h), 2, h, k)
        top, bot = v[:, 0], v[:, 1]
        t = scratch.view(M // (2 * h), h, k)
        t.copy_(top)
        top.add_(bot)
        bot.neg_().add_(t)  # bot <- top_old - bot
        h *= 2
    return y.view(x.shape)


def hadamard_rows(rows: Tensor, size: int, dtype=torch.float64) -> Tensor:
    """Rows ``rows`` of the Sylvester Hadamard matrix ``H_size``: ``(-1)^{popcount(j & i)}``.

    Parameters
    ----------
    rows : long tensor of shape (r,)
    size : int, a power of two

    Returns
    -------
    tensor of shape (r, size) with entries ±1
    """
    if size & (size - 1):
        raise ValueError(f"hadamard_rows needs a power-of-two size, got {size}")
    # Sylvester recursion H_{2h}[beta h + j'] = [H_h[j'], (-1)^beta H_h[j']]: double the
    # row with the sign of bit t of j. Floating-point work only (integer elementwise
    # kernels are much slower than float ones on some CPU builds).
    signs = 1 - 2 * ((rows.unsqueeze(-1) >> torch.arange(max(size.bit_length() - 1, 0),
                                                         device=rows.device)) & 1)
    signs = signs.to(dtype)
    r = torch.ones(rows.shape[0], 1, dtype=dtype, device=rows.device)
    for t in range(signs.shape[1]):
        r = torch.cat([r, r * signs[:, t:t + 1]], dim=1)
    return r


class SRHTSketch(Sketch):
    """Subsampled randomized Hadamard transform of shape ``(sketch_size, n_rows)``.

    Parameters
    ----------
    sketch_size : int
        At most the padded length ``M = 2**ceil(log2(n_rows))`` (rows are sampled without
        replacement).
    n_rows : int
    generator : torch.Generator or int or None
        Draws the ``n_rows`` signs and the ``sketch_size`` sampled rows.

    Notes
    -----
    Sparse inputs are densified (the transform mixes all rows); the padded dense copy has
    ``M k`` entries.
    """

    def __init__(self, sketch_size: int, n_rows: int, generator=None):
        super().__init__(sketch_size, n_rows, generator)
        M = _next_pow2(n_rows)
        if sketch_size > M:
            raise ValueError(f"sketch_size must be <= the padded length "
                             f"2**ceil(log2(n_rows)) = {M} for SRHTSketch, got {sketch_size}")
        self.padded = M
        dev = self.generator.device
        self.signs = torch.randint(0, 2, (n_rows,), generator=self.generator,
                                   device=dev).mul_(2).sub_(1).to(torch.int8)
        self.rows = torch.randperm(M, generator=self.generator, device=dev)[:sketch_size]
        b = 1 << round(math.log2(math.sqrt(sketch_size)))
        self.b = min(b, M)
        self.a = M // self.b

    def _apply_dense(self, X):
        m, k = X.shape
        a, b = self.a, self.b
        dev, dt = X.device, X.dtype
        # Stage 1: H_b across the b row blocks of length a (zero padding beyond row m),
        # with the signs written straight into the padded buffer.
        Y = torch.empty(b, a * k, dtype=dt, device=dev)
        Y.view(-1)[m * k:].zero_()
        torch.mul(X, self._on("signs", self.signs, dev, dt).unsqueeze(-1),
                  out=Y.view(-1)[:m * k].view(m, k))
        Z = fwht(Y, inplace=True).view(b, a, k)
        # Stage 2: only the sampled rows of H_a ⊗ (block), grouped by block index j2.
        rows = self._on("rows", self.rows, dev)
        j2, order = torch.sort(rows // a)
        Ha = hadamard_rows(rows[order] % a, a, dt)  # (s, a), one pass for all groups
        groups, counts = torch.unique_consecutive(j2, return_counts=True)
        out_sorted = torch.empty(self.sketch_size, k, dtype=dt, device=dev)
        start = 0
        for g, c in zip(groups.tolist(), counts.tolist()):
            torch.mm(Ha[start:start + c], Z[g], out=out_sorted[start:start + c])
            start += c
        out = torch.empty_like(out_sorted)
        out[order] = out_sorted
        return out.mul_(1.0 / math.sqrt(self.sketch_size))
