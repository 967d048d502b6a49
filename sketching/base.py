r"""Common interface of the random sketch operators.

A sketch is a random matrix :math:`S \in \mathbb{R}^{s \times m}` (``s = sketch_size``,
``m = n_rows``) normalised so that

.. math::

    \mathbb{E}[S^T S] = I_m ,

applied as ``S @ X`` to a dense or sparse (COO/CSR) torch matrix ``X`` of shape
``(m, k)`` or to a vector of shape ``(m,)``. The result is dense, of shape ``(s, k)`` or
``(s,)``, on the device and in the dtype of ``X``. Subclasses keep only the randomness
that defines ``S`` (signs, hashes, sampled indices, or a seed) and never form ``S``
densely unless it is dense by nature (Gaussian).

References
----------
D. P. Woodruff, "Sketching as a tool for numerical linear algebra", Foundations and
Trends in Theoretical Computer Science 10 (2014).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["Sketch"]

# to_dense() is a testing aid: refuse requests that would allocate more than this.
_DENSE_LIMIT = 2 ** 26


def _check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _as_generator(generator) -> torch.Generator:
    """A torch.Generator from a generator, an int seed, or None (a fresh random seed)."""
    if isinstance(generator, torch.Generator):
        return generator
    if generator is None:
        g = torch.Generator()
        g.seed()
        return g
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    raise TypeError(f"generator must be a torch.Generator, an int seed or None, "
                    f"got {type(generator).__name__}")


class Sketch:
    """Base class: a random ``(sketch_size, n_rows)`` matrix applied as ``S @ X``.

    Parameters
    ----------
    sketch_size : int
        Number of rows ``s`` of the sketch.
    n_rows : int
        Number of rows ``m`` of the matrices it is applied to.
    generator : torch.Generator or int or None
        Source of randomness; an int is a seed. All random draws that define ``S`` happen
        in the constructor, so ``S @ X`` is a fixed linear map.
    """

    def __init__(self, sketch_size: int, n_rows: int, generator=None):
        self.sketch_size = _check_size("sketch_size", sketch_size)
        self.n_rows = _check_size("n_rows", n_rows)
        self.generator = _as_generator(generator)
        self._device_cache: dict = {}

    @property
    def shape(self) -> tuple[int, int]:
        return (self.sketch_size, self.n_rows)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sketch_size={self.sketch_size}, n_rows={self.n_rows})"

    # application ------------------------------------------------------------------------
    def __matmul__(self, X: Tensor) -> Tensor:
        """``S @ X``.

        Parameters
        ----------
        X : tensor of shape (n_rows, k) or (n_rows,)
            Dense (strided), sparse COO, CSR or CSC, floating point, on any device.

        Returns
        -------
        dense tensor of shape (sketch_size, k) or (sketch_size,), on ``X``'s device and
        in its dtype.
        """
        if not isinstance(X, Tensor):
            return NotImplemented
        if X.dim() not in (1, 2):
            raise ValueError(f"S @ X needs X of shape (n_rows,) or (n_rows, k) with "
                             f"n_rows={self.n_rows}; got X of shape {tuple(X.shape)}")
        if X.shape[0] != self.n_rows:
            raise ValueError(f"S @ X needs X with n_rows={self.n_rows} rows; got X of shape "
                             f"{tuple(X.shape)}")
        if not X.dtype.is_floating_point:
            raise TypeError(f"S @ X needs a floating-point X, got dtype {X.dtype}")
        if X.dim() == 1:
            if X.layout != torch.strided:
                X = X.to_dense()
            return self._apply_dense(X.unsqueeze(-1)).squeeze(-1)
        if X.layout == torch.strided:
            return self._apply_dense(X)
        if X.layout in (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc):
            coo = (X if X.layout == torch.sparse_coo else X.to_sparse_coo()).coalesce()
            return self._apply_sparse(coo)
        raise TypeError(f"S @ X supports strided, sparse COO and sparse CSR/CSC tensors; "
                        f"got layout {X.layout}")

    def _apply_dense(self, X: Tensor) -> Tensor:
        """``S @ X`` for a dense ``X`` of shape ``(n_rows, k)``."""
        raise NotImplementedError

    def _apply_sparse(self, X: Tensor) -> Tensor:
        """``S @ X`` for a coalesced sparse COO ``X`` of shape ``(n_rows, k)``; dense result.

        Default: densify. Sketches that are sparse themselves override this.
        """
        return self._apply_dense(X.to_dense())

    def apply_rows(self, X: Tensor, rows: Tensor, weights: Tensor | None = None) -> Tensor:
        r"""``S @ (diag(weights) X[rows])`` without forming ``X[rows]`` when avoidable.

        Parameters
        ----------
        X : dense tensor of shape (M, k)
            The full matrix; ``M`` may exceed ``n_rows``.
        rows : long tensor of shape (n_rows,)
            The rows of ``X`` the sketch acts on.
        weights : tensor of shape (n_rows,), optional
            Row weights (for the Newton sketch, :math:`\sqrt{w}` on the active rows).

        Returns
        -------
        tensor of shape (sketch_size, k)
        """
        if rows.shape != (self.n_rows,):
            raise ValueError(f"rows must have shape ({self.n_rows},), got {tuple(rows.shape)}")
        Xr = X.index_select(0, rows)
        if weights is not None:
            Xr = weights.to(Xr.dtype).unsqueeze(-1) * Xr
        return self @ Xr

    # helpers ----------------------------------------------------------------------------
    def _on(self, key: str, t: Tensor, device: torch.device, dtype=None) -> Tensor:
        """The random tensor ``t`` moved to ``device`` (and ``dtype``), cached per target."""
        ck = (key, device, dtype)
        if ck not in self._device_cache:
            self._device_cache[ck] = t.to(device=device, dtype=dtype or t.dtype)
        return self._device_cache[ck]

    def to_dense(self, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu") -> Tensor:
        """The matrix ``S`` of shape ``(sketch_size, n_rows)`` (a testing aid, small sizes only)."""
        if self.sketch_size * self.n_rows > _DENSE_LIMIT:
            raise ValueError(f"to_dense() would allocate sketch_size * n_rows = "
                             f"{self.sketch_size * self.n_rows} entries (limit {_DENSE_LIMIT}); "
                             f"it is meant for tests on small sketches")
        return self @ torch.eye(self.n_rows, dtype=dtype, device=device)


def _seed_from(generator: torch.Generator) -> int:
    """A 62-bit seed drawn from ``generator`` (to derive per-device generators)."""
    return int(torch.randint(0, 2 ** 62, (1,), generator=generator,
                             device=generator.device).item())


def _next_pow2(m: int) -> int:
    return 1 << max(0, math.ceil(math.log2(m)))
