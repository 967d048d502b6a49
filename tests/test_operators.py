"""Sparse operators against dense products: every storage path gives the same numbers.

Paths: CSR input (row indices derived lazily), COO input, one entry per row (gather and
scatter instead of CSR), shared and batched (block-diagonal) matrices, one or several
right-hand sides, scaled and squared copies sharing one index pattern, and the scatter
path that autograd differentiates (checked with float64 gradcheck).
"""
from __future__ import annotations

import pytest
import torch

from sparselp.operators import SparseOperator
from sparselp.problem import as_operator


def _dense_random(m, n, g, one_per_row=False, dtype=torch.float64):
    if one_per_row:
        A = torch.zeros(m, n, dtype=dtype)
        A[torch.arange(m), torch.randint(0, n, (m,), generator=g)] = \
            torch.randn(m, generator=g, dtype=dtype)
        return A
    A = torch.randn(m, n, generator=g, dtype=dtype)
    return A * (torch.rand(m, n, generator=g, dtype=dtype) < 0.3)


def _check(op, A, B, g):
    """``op`` (shared, or batched with A of shape (B, m, n)) against dense products."""
    Ab = A if A.dim() == 3 else A.unsqueeze(0).expand(B, *A.shape)
    x = torch.randn(B, Ab.shape[2], generator=g, dtype=A.dtype)
    y = torch.randn(B, Ab.shape[1], generator=g, dtype=A.dtype)
    torch.testing.assert_close(op.mv(x), torch.einsum("bmn,bn->bm", Ab, x))
    torch.testing.assert_close(op.rmv(y), torch.einsum("bmn,bm->bn", Ab, y))
    torch.testing.assert_close(op.sq_mv(x), torch.einsum("bmn,bn->bm", Ab * Ab, x))
    torch.testing.assert_close(op.sq_rmv(y), torch.einsum("bmn,bm->bn", Ab * Ab, y))
    r = torch.rand(B, Ab.shape[1], generator=g, dtype=A.dtype) + 0.5
    s = torch.rand(B, Ab.shape[2], generator=g, dtype=A.dtype) + 0.5
    S = op.scaled(r, s)
    torch.testing.assert_close(S.mv(x), torch.einsum("bmn,bn->bm",
                                                     r.unsqueeze(-1) * Ab * s.unsqueeze(1), x))
    Q = S.squared()
    torch.testing.assert_close(
        Q.rmv(y), torch.einsum("bmn,bm->bn", (r.unsqueeze(-1) * Ab * s.unsqueeze(1)) ** 2, y))


@pytest.mark.parametrize("one_per_row", [False, True])
@pytest.mark.parametrize("layout", ["csr", "coo"])
@pytest.mark.parametrize("B", [1, 3])
def test_shared_matrix_products(one_per_row, layout, B):
    g = torch.Generator().manual_seed(0)
    A = _dense_random(30, 12, g, one_per_row)
    M = A.to_sparse_csr() if layout == "csr" else A.to_sparse_coo()
    op = as_operator(M, "A", 12, B, torch.float64, torch.device("cpu"))
    assert isinstance(op, SparseOperator)
    assert op.rows_separable == one_per_row
    assert op._pattern.one_per_row() == one_per_row
    _check(op, A, B, g)


@pytest.mark.parametrize("one_per_row", [False, True])
def test_batched_matrix_products(one_per_row):
    g = torch.Generator().manual_seed(1)
    A = torch.stack([_dense_random(20, 9, g, one_per_row) for _ in range(3)])
    op = as_operator(A.to_sparse_coo(), "A", 9, 3, torch.float64, torch.device("cpu"))
    assert op._pattern.one_per_row() == one_per_row
    _check(op, A, 3, g)


def test_csr_input_keeps_int32_indices_and_derives_rows_lazily():
    g = torch.Generator().manual_seed(2)
    A = _dense_random(40, 10, g).to_sparse_csr()
    op = as_operator(A, "A", 10, 1, torch.float64, torch.device("cpu"))
    assert op.cols.dtype == torch.int32
    op.mv(torch.randn(1, 10, generator=g, dtype=torch.float64))
    assert op._pattern._rows is None  # A x needs only the row pointers
    crow = A.crow_indices()
    expected = torch.repeat_interleave(torch.arange(40), crow[1:] - crow[:-1])
    torch.testing.assert_close(op.rows.long(), expected)
    # One entry per row: neither product needs per-entry row indices.
    S = as_operator(_dense_random(40, 10, g, one_per_row=True).to_sparse_csr(), "A", 10, 1,
                    torch.float64, torch.device("cpu"))
    S.mv(torch.randn(1, 10, generator=g, dtype=torch.float64))
    S.rmv(torch.randn(1, 40, generator=g, dtype=torch.float64))
    S.scaled(torch.rand(1, 40, generator=g, dtype=torch.float64),
             torch.rand(1, 10, generator=g, dtype=torch.float64)).sq_rmv(
        torch.randn(1, 40, generator=g, dtype=torch.float64))
    assert S._pattern._rows is None


@pytest.mark.parametrize("one_per_row", [False, True])
def test_products_are_differentiable_in_the_values(one_per_row):
    g = torch.Generator().manual_seed(3)
    A = _dense_random(15, 6, g, one_per_row).to_sparse_coo().coalesce()
    idx = A.indices()
    x = torch.randn(2, 6, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 15, generator=g, dtype=torch.float64, requires_grad=True)

    def f(vals, x, y):
        op = SparseOperator(idx[0], idx[1], vals, 15, 6, 2, shared=True)
        return op.mv(x), op.rmv(y), op.sq_rmv(y)
    vals = A.values().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (vals, x, y))
