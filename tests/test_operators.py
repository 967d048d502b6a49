"""Sparse operators against dense products: every storage path gives the same numbers.

Paths: CSR input (row indices derived lazily), COO input, one entry per row (gather and
scatter instead of CSR), shared and batched (block-diagonal) matrices, one or several
right-hand sides, scaled and squared copies sharing one index pattern, and the scatter
path that autograd differentiates (checked with float64 gradcheck). Every operator class
gives the matrix of one batch element (``to_dense``, ``to_scipy``, ``dense_block``) equal
to the dense matrix whose products it computes.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparselp.operators import (DenseOperator, SelectionOperator, SparseOperator,
                                StackedOperator, crow_to_rows, index_dtype, is_expanded_scalar,
                                scipy_to_torch)
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


def _operators(g):
    """(name, operator, dense (B, m, n) reference) for every operator class, B = 2."""
    A = _dense_random(7, 5, g)
    Ab = torch.stack([_dense_random(7, 5, g), _dense_random(7, 5, g)])
    idx = torch.tensor([0, 3, 4])
    scale = torch.rand(2, 3, generator=g, dtype=torch.float64) + 0.5
    sel = torch.zeros(2, 3, 5, dtype=torch.float64)
    sel[:, torch.arange(3), idx] = scale
    dev = torch.device("cpu")
    shared = as_operator(A.to_sparse_csr(), "A", 5, 2, torch.float64, dev)
    batched = as_operator(Ab.to_sparse_coo(), "A", 5, 2, torch.float64, dev)
    S = SelectionOperator(idx, 5, -1.0, 2, torch.float64, dev, scale)
    dense = DenseOperator(A, 2)
    yield "dense shared", dense, A.expand(2, 7, 5)
    yield "dense batched", DenseOperator(Ab), Ab
    yield "sparse shared (CSR)", shared, A.expand(2, 7, 5)
    yield "sparse batched (COO)", batched, Ab
    yield "selection", S, sel
    yield "stack of one dense", StackedOperator([dense]), A.expand(2, 7, 5)
    yield "stack", StackedOperator([batched, dense, S]), torch.cat([Ab, A.expand(2, 7, 5), sel], 1)


def test_every_operator_gives_the_matrix_it_multiplies_by():
    g = torch.Generator().manual_seed(4)
    for name, op, ref in _operators(g):
        x = torch.randn(2, 5, generator=g, dtype=torch.float64)
        torch.testing.assert_close(op.mv(x), torch.einsum("bmn,bn->bm", ref, x), msg=name)
        for b in range(2):
            torch.testing.assert_close(op.to_dense(b), ref[b], msg=name)
            M = op.to_scipy(b)
            assert M.format == "csr" and M.shape == (op.m, op.n), name
            np.testing.assert_allclose(M.toarray(), ref[b].numpy(), err_msg=name)
            block = op.dense_block(b)
            if name.startswith("dense") or name == "stack of one dense":
                torch.testing.assert_close(block, ref[b], msg=name)
                # A view of the stored matrix (what lets a sketch act in place), not a copy.
                owner = op.parts[0] if isinstance(op, StackedOperator) else op
                assert block.untyped_storage().data_ptr() == \
                    owner.data.untyped_storage().data_ptr(), name
            else:
                assert block is None, name


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_stack_of_one_lp_multiplies_by_by_one_csr_like_its_parts(dtype):
    """One LP on CPU: the stack's products go through one CSR of the whole stack, with the
    parts' numbers; a batch, a gradient or a dense part keep the parts' products."""
    g = torch.Generator().manual_seed(5)
    A = _dense_random(7, 5, g).to(dtype)
    dev = torch.device("cpu")
    scale = torch.rand(1, 3, generator=g, dtype=dtype) + 0.5
    sparse = as_operator(A.to_sparse_csr(), "A", 5, 1, dtype, dev)
    op = StackedOperator([sparse, as_operator(A[:4].to_sparse_coo(), "A", 5, 1, dtype, dev),
                          SelectionOperator(torch.tensor([0, 3, 4]), 5, -1.0, 1, dtype, dev,
                                            scale)])
    ref = torch.cat([A, A[:4], torch.zeros(3, 5, dtype=dtype).index_put_(
        (torch.arange(3), torch.tensor([0, 3, 4])), scale[0])])
    x = torch.randn(1, 5, generator=g, dtype=dtype)
    y = torch.randn(1, op.m, generator=g, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else {}
    torch.testing.assert_close(op.mv(x), (ref @ x[0]).unsqueeze(0), **tol)
    torch.testing.assert_close(op.rmv(y), (ref.T @ y[0]).unsqueeze(0), **tol)
    assert op._by_one_csr(x, False) is not None and op._by_one_csr(y, True) is not None
    assert op.mv(x).dtype == dtype and op.rmv(y).dtype == dtype
    xg = x.clone().requires_grad_()
    assert op._by_one_csr(xg, False) is None  # autograd flows through the parts
    op.rmv(y.clone().requires_grad_()).sum().backward()
    assert op._by_one_csr(x.expand(2, 5), False) is None  # two right-hand sides: the parts
    assert StackedOperator([DenseOperator(A, 1), op.parts[2]])._by_one_csr(x, False) is None
    batched = StackedOperator([as_operator(A.to_sparse_csr(), "A", 5, 2, dtype, dev),
                               op.parts[2]])
    assert batched._by_one_csr(x, False) is None


def test_shared_tensor_helpers():
    crow = torch.tensor([0, 2, 2, 5, 6], dtype=torch.int32)
    rows = crow_to_rows(crow)
    assert rows.dtype == torch.int32 and rows.tolist() == [0, 0, 2, 2, 2, 3]
    assert crow_to_rows(crow, torch.long).dtype == torch.long
    assert index_dtype(2**31 - 2) == torch.int32 and index_dtype(2**31 - 1) == torch.int64
    t = torch.tensor(3.0)
    assert is_expanded_scalar(t.expand(4, 5)) and is_expanded_scalar(t)
    assert not is_expanded_scalar(torch.ones(4, 5)) and not is_expanded_scalar(torch.ones(1))
    assert not is_expanded_scalar(torch.ones(3).expand(4, 3))  # rows repeat, entries differ
    assert not is_expanded_scalar(t.expand(0, 3))
    M = sp.random(6, 4, density=0.5, format="csc", random_state=0)
    T = scipy_to_torch(M)
    assert T.layout == torch.sparse_coo and T.dtype == torch.float64
    np.testing.assert_array_equal(T.to_dense().numpy(), M.toarray())
    assert scipy_to_torch(M, dtype=torch.float32).dtype == torch.float32


def test_tiled_identity_pattern_takes_the_repeat_path_and_agrees():
    """[-I; -I] (the hinge LPs' matrix) is recognised as two identity tiles; its products
    equal those of the same entries in a shuffled (index) pattern."""
    from sparselp.formulations._base import separable_constraints
    from sparselp.problem import as_operator
    P = 7
    A = separable_constraints(torch.arange(P, dtype=torch.float64), torch.ones(P)).A
    cpu = torch.device("cpu")
    op = as_operator(A, "A", P, 1, torch.float64, cpu)
    assert op._pattern.tiles() == 2
    perm = torch.randperm(2 * P)
    dense = A.to_dense()
    shuffled = as_operator(dense[perm].to_sparse_csr(), "A", P, 1, torch.float64, cpu)
    assert shuffled._pattern.tiles() == 0
    x = torch.randn(3, P, dtype=torch.float64)
    y = torch.randn(3, 2 * P, dtype=torch.float64)
    torch.testing.assert_close(op.mv(x), x @ dense.T, rtol=0, atol=0)
    torch.testing.assert_close(op.rmv(y), y @ dense, rtol=1e-15, atol=0)
    torch.testing.assert_close(op.sq_rmv(y), y @ dense ** 2, rtol=1e-15, atol=0)
    torch.testing.assert_close(shuffled.mv(x)[:, perm.argsort()], op.mv(x))
    torch.testing.assert_close(op.rmv(y[:1]), y[:1] @ dense)
