"""Small tensor helpers shared by the operators and by the cleaning of inputs.

Each is written once here: the index type of sparse matrices (int32 where it fits), row
indices from CSR row pointers, the test for an expanded (stride-0) view, scipy.sparse to
torch, and construction of torch sparse tensors without torch's two construction warnings.

PyTorch warns once per process when the first sparse CSR tensor is made ("Sparse CSR
tensor support is in beta state") and when a sparse tensor is made without saying whether
to check its invariants ("Sparse invariant checks are implicitly disabled"). Neither says
anything to a user of this library: the second is avoided by passing
``check_invariants=False`` (every index array here is built by the library itself, in
range and ordered), the first is silenced by :func:`quiet_sparse`, around the library's
own CSR constructions only.
"""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

__all__ = ["index_dtype", "crow_to_rows", "is_expanded_scalar", "scipy_to_torch",
           "quiet_sparse", "csr_tensor", "coo_tensor", "scatter_extremes",
           "marked_rows"]

_INT32_LIMIT = 2**31 - 1


def index_dtype(largest: int) -> torch.dtype:
    """int32 when every index (and count) up to ``largest`` fits in it, else int64.

    int32 halves the index memory of triplets and CSR copies; torch's CSR kernels,
    ``index_add_`` and gathers accept it.
    """
    return torch.int32 if largest < _INT32_LIMIT else torch.int64


def crow_to_rows(crow: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """Row index of every stored entry from CSR row pointers ``crow`` of shape (m + 1,).

    Parameters
    ----------
    crow : tensor of shape (m + 1,)
        Row pointers (non-decreasing, ``crow[0] = 0``).
    dtype : torch.dtype, optional
        Index type of the result; that of ``crow`` by default.

    Returns
    -------
    tensor of shape (crow[-1],)
    """
    m = crow.numel() - 1
    return torch.repeat_interleave(
        torch.arange(m, dtype=dtype or crow.dtype, device=crow.device), crow[1:] - crow[:-1])


def is_expanded_scalar(t: Tensor) -> bool:
    """True when ``t`` is a non-empty view of one number (every stride 0, as after
    ``expand``; a dimension of size 1 may keep its stride, as in ``full((1, 1),
    v).expand(1, n)``): a check or a conversion then needs to look at
    ``t.reshape(-1)[:1]`` only."""
    strides = t.stride()
    return t.numel() > 0 and (not strides or 0 in strides) and all(
        st == 0 or size == 1 for st, size in zip(strides, t.shape))


def scipy_to_torch(A, dtype: torch.dtype | None = None, device=None) -> Tensor:
    """A scipy.sparse matrix or array as a torch COO tensor (not coalesced), without a
    dense intermediate; values keep their dtype unless ``dtype`` is given."""
    A = sp.coo_matrix(A)
    idx = torch.from_numpy(np.vstack([A.row, A.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(np.asarray(A.data)), A.shape,
                                   dtype=dtype, device=device, check_invariants=False)


@contextlib.contextmanager
def quiet_sparse():
    """Silence exactly torch's "Sparse CSR tensor support is in beta state" warning.

    For the library's own CSR constructions and conversions (``to_sparse_csr``): torch
    issues it once per process, from whichever CSR tensor comes first.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta",
                                category=UserWarning)
        yield


def csr_tensor(crow: Tensor, cols: Tensor, vals: Tensor, shape) -> Tensor:
    """``torch.sparse_csr_tensor`` for index arrays built by the library (unchecked, quiet).

    Parameters
    ----------
    crow : tensor of shape (m + 1,)
    cols : tensor of shape (nnz,), same integer dtype as ``crow``
    vals : tensor of shape (nnz,)
        May require gradients: the CSR tensor is then differentiable in its values, through
        :class:`_CSRFromValues` (torch's own backward of the constructor densifies the
        gradient: an (m, n) array, 69 GB for the F-score LP of a batch of 65,536).
    shape : tuple (m, n)
    """
    if vals.requires_grad and torch.is_grad_enabled():
        return _CSRFromValues.apply(vals, crow, cols, tuple(shape))
    with quiet_sparse():
        return torch.sparse_csr_tensor(crow, cols, vals, tuple(shape), check_invariants=False)


class _CSRFromValues(torch.autograd.Function):
    """A CSR tensor from differentiable values; the backward returns the gradient of the
    stored entries only (``Tensor.values()`` hands it a CSR gradient on the same pattern;
    a dense gradient, from ``to_dense``, is gathered at the stored positions)."""

    @staticmethod
    def forward(ctx, vals, crow, cols, shape):
        ctx.save_for_backward(crow, cols)
        with quiet_sparse():
            return torch.sparse_csr_tensor(crow, cols, vals.detach(), shape,
                                           check_invariants=False)

    @staticmethod
    def backward(ctx, grad):
        crow, cols = ctx.saved_tensors
        if grad.layout == torch.sparse_csr and grad.values().numel() == cols.numel() \
                and torch.equal(grad.col_indices(), cols):
            return grad.values(), None, None, None
        if grad.layout != torch.strided:
            grad = grad.to_dense()
        rows = crow_to_rows(crow, torch.long)
        return grad[rows, cols.long()], None, None, None


def coo_tensor(indices: Tensor, vals: Tensor, shape, **kwargs) -> Tensor:
    """``torch.sparse_coo_tensor`` for indices built by the library (unchecked, so quiet)."""
    return torch.sparse_coo_tensor(indices, vals, tuple(shape), check_invariants=False,
                                   **kwargs)


def scatter_extremes(a: Tensor, idx: Tensor, shape, dim: int) -> tuple[Tensor, Tensor]:
    """Largest and smallest nonzero of the (nonnegative) ``a`` scattered along ``dim`` by
    ``idx`` into a tensor of ``shape``; ``(0, inf)`` where nothing nonzero lands."""
    hi = a.new_zeros(shape).scatter_reduce_(dim, idx, a, "amax")
    lo = a.new_full(shape, float("inf")).scatter_reduce_(
        dim, idx, a.masked_fill(a == 0, float("inf")), "amin")
    return hi, lo


def marked_rows(mask: Tensor) -> Tensor:
    """Each batch element's marked positions first, in their order: shape (B, k), ``k`` the
    largest count of marks in an element, the shorter lists padded with unmarked positions.

    ``mask`` is a bool tensor of shape (B, m). A stable sort of the indicator: a product
    over the marked rows only then pads with rows the caller weights by 0.
    """
    B, m = mask.shape
    k = int(mask.sum(-1).max()) if B and m else 0
    if k == m:
        return torch.arange(m, device=mask.device).expand(B, m)
    return torch.sort(mask.to(torch.uint8), dim=-1, descending=True, stable=True)[1][:, :k]
