"""The Newton-system strategies of :mod:`sparselp.linsolve`, each against a dense solve.

``get_strategy(name, K).factor(NewtonSystem(K, w, shift))(rhs)`` must solve
``(K^T diag(w) K + diag(shift)) x = rhs`` for every batch element, on dense, sparse
(shared and batched) and stacked operators; the reference is ``torch.linalg.solve`` of
the dense matrix built here from the same entries, never through the operator.
"""
from __future__ import annotations

import zlib

import pytest
import torch

from sparselp.factor import have_qdldl
from sparselp.linsolve import (CGHessian, CholeskyHessian, DiagonalHessian, LDLHessian,
                               NewtonSystem, ScipyHessian, cg, get_strategy)
from sparselp.operators import (DenseOperator, SelectionOperator, SparseOperator,
                                StackedOperator)

B, M, N = 3, 14, 6
# Relative error of x allowed per strategy: direct solves to round-off, CG to its own
# stopping rule (relative residual 1e-10) times the conditioning of these systems.
RTOL = {torch.float64: {"diagonal": 1e-12, "cholesky": 1e-10, "scipy": 1e-10, "ldl": 1e-10,
                        "dense-side": 1e-10, "cg": 1e-8},
        torch.float32: {"diagonal": 1e-6, "cholesky": 1e-4, "scipy": 1e-4, "ldl": 1e-4,
                        "dense-side": 1e-4, "cg": 1e-4}}


def _coo(dense: torch.Tensor):
    """COO indices and values of a (m, n) or (B, m, n) tensor, zeros left out."""
    idx = torch.nonzero(dense).T
    return idx, dense[tuple(idx)]


def _dense_matrix(kind, g, dtype):
    """(operator, dense (B, m, n) copy of its matrices) for one kind of operator."""
    A = torch.randn(B, M, N, generator=g, dtype=dtype)
    A = A * (torch.rand(B, M, N, generator=g) < 0.5)
    if kind == "dense":
        return DenseOperator(A), A
    if kind == "dense-shared":
        return DenseOperator(A[0], batch_size=B), A[:1].expand(B, M, N)
    if kind == "sparse-shared":
        idx, vals = _coo(A[0])
        return SparseOperator.from_coo(idx, vals, (M, N), batch_size=B), A[:1].expand(B, M, N)
    if kind == "sparse":
        idx, vals = _coo(A)
        return SparseOperator.from_coo(idx, vals, (B, M, N)), A
    if kind == "stacked":  # [A; -I_L]: the solver's constraint rows with lower bounds
        idx, vals = _coo(A[0])
        sel = torch.tensor([0, 2, 5])
        op = StackedOperator([SparseOperator.from_coo(idx, vals, (M, N), batch_size=B),
                              SelectionOperator(sel, N, -1.0, B, dtype, torch.device("cpu"))])
        bound_rows = -torch.eye(N, dtype=dtype)[sel]
        return op, torch.cat([A[0], bound_rows]).expand(B, -1, -1)
    raise ValueError(kind)


def _separable_matrix(kind, g, dtype):
    """Row-separable operators: every row holds one entry, several rows per column."""
    cols = torch.arange(N).repeat(3)
    vals = (torch.rand(cols.numel(), generator=g, dtype=dtype) + 0.2) * \
        torch.where(torch.rand(cols.numel(), generator=g) < 0.5, -1.0, 1.0).to(dtype)
    A = torch.zeros(cols.numel(), N, dtype=dtype)
    A[torch.arange(cols.numel()), cols] = vals
    if kind == "dense-separable":
        return DenseOperator(A, batch_size=B), A.expand(B, -1, -1)
    idx, v = _coo(A)
    sp_op = SparseOperator.from_coo(idx, v, tuple(A.shape), batch_size=B)
    if kind == "sparse-separable":
        return sp_op, A.expand(B, -1, -1)
    sel = torch.tensor([1, 4])
    op = StackedOperator([sp_op, SelectionOperator(sel, N, 1.0, B, dtype, torch.device("cpu"))])
    return op, torch.cat([A, torch.eye(N, dtype=dtype)[sel]]).expand(B, -1, -1)


def _system(op, dense, g, shift_shape):
    dtype = dense.dtype
    m = dense.shape[1]
    # Weights >= 0 with zeros (inactive rows), a positive shift: H is positive definite.
    w = torch.rand(B, m, generator=g, dtype=dtype) * (torch.rand(B, m, generator=g) < 0.7)
    shift = 0.2 + torch.rand(B, *shift_shape, generator=g, dtype=dtype)
    H = dense.transpose(1, 2) @ (w.unsqueeze(-1) * dense)
    H = H + torch.diag_embed(shift.expand(B, N))
    rhs = torch.randn(B, N, generator=g, dtype=dtype)
    return NewtonSystem(op, w, shift), torch.linalg.solve(H, rhs), rhs


def _rel_err(x, ref):
    return float(((x - ref).norm(dim=-1) / ref.norm(dim=-1)).max())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shift_shape", [(N,), (1,)], ids=["shift-n", "shift-1"])
@pytest.mark.parametrize("kind", ["dense", "dense-shared", "sparse-shared", "sparse", "stacked"])
@pytest.mark.parametrize("name", ["cholesky", "cg", "scipy", "dense-side", "ldl"])
def test_strategy_solves_the_newton_system(name, kind, shift_shape, dtype):
    if name == "ldl" and not have_qdldl():
        pytest.skip("qdldl not installed (tests/test_factor.py covers the fallback)")
    g = torch.Generator().manual_seed(zlib.crc32(f"{name}-{kind}".encode()))
    op, dense = _dense_matrix(kind, g, dtype)
    system, ref, rhs = _system(op, dense, g, shift_shape)
    x = get_strategy(name, op).factor(system)(rhs)
    assert x.shape == (B, N) and x.dtype == dtype
    assert _rel_err(x, ref) <= RTOL[dtype][name], _rel_err(x, ref)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", ["dense-separable", "sparse-separable", "stacked-separable"])
@pytest.mark.parametrize("name", ["diagonal", "cholesky", "cg", "scipy", "dense-side", "ldl"])
def test_row_separable_systems(name, kind, dtype):
    if name == "ldl" and not have_qdldl():
        pytest.skip("qdldl not installed (tests/test_factor.py covers the fallback)")
    g = torch.Generator().manual_seed(7)
    op, dense = _separable_matrix(kind, g, dtype)
    assert op.rows_separable
    system, ref, rhs = _system(op, dense, g, (N,))
    x = get_strategy(name, op).factor(system)(rhs)
    assert _rel_err(x, ref) <= RTOL[dtype][name], _rel_err(x, ref)


@pytest.mark.parametrize("name", ["scipy", "dense-side"])
def test_smaller_side_of_wide_rows(name):
    # Fewer active rows than columns: the Woodbury form factors the k x k side.
    g = torch.Generator().manual_seed(3)
    A = torch.randn(B, 4, 11, generator=g, dtype=torch.float64)
    op = SparseOperator.from_coo(*_coo(A), (B, 4, 11))
    w = torch.rand(B, 4, generator=g, dtype=torch.float64) * torch.tensor([1.0, 0, 1, 1])
    shift = 0.2 + torch.rand(B, 11, generator=g, dtype=torch.float64)
    H = A.transpose(1, 2) @ (w.unsqueeze(-1) * A) + torch.diag_embed(shift)
    rhs = torch.randn(B, 11, generator=g, dtype=torch.float64)
    x = get_strategy(name, op).factor(NewtonSystem(op, w, shift))(rhs)
    assert _rel_err(x, torch.linalg.solve(H, rhs)) <= 1e-10


def test_auto_choice_and_supports():
    g = torch.Generator().manual_seed(1)
    sep, _ = _separable_matrix("sparse-separable", g, torch.float64)
    sparse, _ = _dense_matrix("sparse-shared", g, torch.float64)
    dense, _ = _dense_matrix("dense", g, torch.float64)
    assert isinstance(get_strategy("auto", sep), DiagonalHessian)
    assert isinstance(get_strategy("auto", sparse), LDLHessian if have_qdldl() else ScipyHessian)
    assert isinstance(get_strategy("auto", dense), CholeskyHessian)
    assert isinstance(get_strategy("auto", dense, dense_max_n=N - 1), CGHessian)
    mine = CGHessian(tol=1e-3)
    assert get_strategy(mine, dense) is mine
    assert DiagonalHessian().supports(sep) and not DiagonalHessian().supports(dense)
    assert ScipyHessian().supports(dense) and CholeskyHessian().supports(sparse)
    with pytest.raises(ValueError, match="does not support this problem .rows not separable"):
        get_strategy("diagonal", dense)
    with pytest.raises(ValueError, match="needs a constraint matrix with at most one nonzero"):
        DiagonalHessian().factor(NewtonSystem(dense, torch.ones(B, M, dtype=torch.float64),
                                              torch.ones(B, 1, dtype=torch.float64)))
    with pytest.raises(ValueError, match="linear_solver must be 'auto' or one of"):
        get_strategy("lu", dense)


def _spd(g, n, cond):
    """A batch of SPD matrices with eigenvalues spread over [1, cond]."""
    Q, _ = torch.linalg.qr(torch.randn(B, n, n, generator=g, dtype=torch.float64))
    ev = torch.logspace(0, torch.log10(torch.tensor(cond)).item(), n, dtype=torch.float64)
    return Q @ torch.diag_embed(ev.expand(B, n)) @ Q.transpose(1, 2)


def test_cg_alone_batched_with_and_without_preconditioner():
    g = torch.Generator().manual_seed(2)
    n = 20
    H = _spd(g, n, 1e3)
    rhs = torch.randn(B, n, generator=g, dtype=torch.float64)
    ref = torch.linalg.solve(H, rhs)

    def mv(v):
        return (H @ v.unsqueeze(-1)).squeeze(-1)
    for pre in (None, 1.0 / H.diagonal(dim1=1, dim2=2)):
        x, info = cg(mv, rhs, pre, tol=1e-10)
        assert _rel_err(x, ref) <= 1e-8
        # The reported (recursively updated) residual is the true relative residual up to
        # round-off (cond * eps), and within the tolerance.
        true = ((rhs - mv(x)).norm(dim=-1) / rhs.norm(dim=-1))
        torch.testing.assert_close(info["residual"], true, rtol=0, atol=1e-12)
        assert float(info["residual"].max()) <= 1e-10
        assert 1 <= info["iterations"] <= 2 * n
    # A warm start at the answer takes no step; maxiter caps the work.
    x, info = cg(mv, rhs, tol=1e-10, x0=ref)
    assert info["iterations"] == 0 and torch.equal(x, ref)
    x, info = cg(mv, rhs, tol=1e-14, maxiter=3)
    assert info["iterations"] == 3 and float(info["residual"].min()) > 1e-14


def test_cg_strategy_records_its_last_solve():
    g = torch.Generator().manual_seed(3)
    op, dense = _dense_matrix("sparse", g, torch.float64)
    system, ref, rhs = _system(op, dense, g, (N,))
    strat = CGHessian(tol=1e-6)
    x = strat.factor(system)(rhs)
    assert float(strat.last_info["residual"].max()) <= 1e-6
    # The looser tolerance shows in the answer: CG stopped at a 1e-6 relative residual.
    assert _rel_err(x, ref) <= 1e-4
