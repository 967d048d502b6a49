"""The structured Newton strategy (:mod:`sparselp.structured`): separable rows plus a few
dense rows and columns, solved by a Schur complement and Woodbury in O(nnz).

Every solve is checked against ``torch.linalg.solve`` of the dense ``H`` built here from
the same entries (never through the operator), and every LP answer against HiGHS.
"""
from __future__ import annotations

import pytest
import torch

import sparselp
from sparselp import LinearProgram, Status
from sparselp.formulations import fscore, precision_at_recall
from sparselp.linsolve import (DiagonalHessian, NewtonSystem, ScipyHessian, StructuredHessian,
                               get_strategy)
from sparselp.operators import SelectionOperator, SparseOperator, StackedOperator
from sparselp.scaling import build_rows, equilibrate
from sparselp.structured import analyse

from lpcheck import assert_matches_highs

F64 = torch.float64
B, M, N = 3, 300, 200


def _structured(g, kc, kr, shared, dtype=F64, m=M, n=N, batch=B):
    """(operator, dense (B, m + kr, n)): rows with one entry among the columns kc..n plus
    entries on the ``kc`` dense columns, then ``kr`` dense rows."""
    A = torch.zeros(batch, m + kr, n, dtype=dtype)
    cols = torch.randint(kc, n, (batch, m), generator=g)
    A[torch.arange(batch)[:, None], torch.arange(m)[None], cols] = \
        torch.randn(batch, m, generator=g, dtype=dtype)
    if kc:
        A[:, :m, :kc] = torch.randn(batch, m, kc, generator=g, dtype=dtype) * \
            (torch.rand(batch, m, kc, generator=g) < 0.7)
    if kr:
        A[:, m:] = torch.randn(batch, kr, n, generator=g, dtype=dtype) * \
            (torch.rand(batch, kr, n, generator=g) < 0.9)
    if shared:
        A = A[:1].expand(batch, -1, -1)
        idx = torch.nonzero(A[0]).T
        return SparseOperator.from_coo(idx, A[0][tuple(idx)], tuple(A[0].shape),
                                       batch_size=batch), A
    idx = torch.nonzero(A).T
    return SparseOperator.from_coo(idx, A[tuple(idx)], tuple(A.shape)), A


def _csr(A):
    """A torch CSR tensor of a scipy CSR matrix."""
    return torch.sparse_csr_tensor(*(torch.from_numpy(a) for a in (A.indptr, A.indices, A.data)),
                                   A.shape, check_invariants=True)


def _check(op, A, g, shift_value, shift_shape=(N,), atol_be=1e-14):
    """Solve with the structured strategy and compare with the dense solve."""
    batch, m = A.shape[0], A.shape[1]
    w = torch.rand(batch, m, generator=g, dtype=F64) * (torch.rand(batch, m, generator=g) < 0.5)
    w[:, :10] = 0  # inactive rows
    shift = shift_value * (1 + torch.rand(batch, *shift_shape, generator=g, dtype=F64))
    H = A.transpose(1, 2).double() @ (w.unsqueeze(-1) * A.double())
    H = H + torch.diag_embed(shift.expand(batch, A.shape[2]))
    rhs = torch.randn(batch, A.shape[2], generator=g, dtype=F64)
    ref = torch.linalg.solve(H, rhs)
    strat = get_strategy("structured", op)
    x = strat.factor(NewtonSystem(op, w.to(A.dtype), shift.to(A.dtype)))(rhs.to(A.dtype))
    assert x.shape == rhs.shape and x.dtype == A.dtype
    x = x.double()
    # Backward error (normwise) at round-off, as a direct solve has; the forward error
    # within cond(H) times that.
    res = ((H @ x.unsqueeze(-1)).squeeze(-1) - rhs).norm(dim=-1)
    be = res / (torch.linalg.matrix_norm(H, 2) * x.norm(dim=-1) + rhs.norm(dim=-1))
    assert float(be.max()) <= atol_be, float(be.max())
    cond = torch.linalg.cond(H)
    err = (x - ref).norm(dim=-1) / ref.norm(dim=-1)
    unit = 1e-13 if A.dtype == F64 else 1e-7  # float32: the rounding of rhs
    assert bool((err <= unit * cond + 10 * unit).all()), (err, cond)
    return x


@pytest.mark.parametrize("shift", [1.0, 1e-6, 1e-12], ids=["shift1", "shift1e-6", "shift1e-12"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "batched"])
@pytest.mark.parametrize("kc,kr", [(0, 3), (3, 0), (2, 2), (5, 40)],
                         ids=["rows-only", "cols-only", "both", "many-rows"])
def test_structured_solve_matches_dense(kc, kr, shared, shift):
    g = torch.Generator().manual_seed(kc * 100 + kr + shared)
    op, A = _structured(g, kc, kr, shared)
    lay = analyse(op)
    assert lay is not None and (lay.k_c, lay.k_r) == (kc, kr)
    _check(op, A, g, shift)


def test_shift_per_element_and_float32():
    g = torch.Generator().manual_seed(5)
    op, A = _structured(g, 2, 2, False)
    _check(op, A, g, 0.1, shift_shape=(1,))
    op32, A32 = _structured(g, 2, 2, True, dtype=torch.float32)
    # float32 in, float32 out, computed in float64: backward error of a float32 rounding.
    _check(op32, A32, g, 0.1, atol_be=1e-7)


def test_tiny_shift_on_columns_that_only_dense_rows_touch():
    """The active-set system of the layer: a square, well-conditioned ``A_J^T A_J`` plus
    a 1e-12 shift, with columns that only the dense rows reach. Woodbury alone loses about
    eps / 1e-12 there; the refinement must bring the answer to round-off."""
    g = torch.Generator().manual_seed(11)
    n = 120
    A = torch.zeros(1, n, n, dtype=F64)
    A[0, torch.arange(n - 2), torch.arange(n - 2)] = 1 + torch.rand(n - 2, generator=g,
                                                                     dtype=F64)
    A[0, :n - 2, n - 3] = torch.rand(n - 2, generator=g, dtype=F64)  # a dense column
    A[0, n - 2:] = torch.rand(2, n, generator=g, dtype=F64)  # two dense rows
    idx = torch.nonzero(A).T
    op = SparseOperator.from_coo(idx, A[tuple(idx)], tuple(A.shape))
    w = torch.ones(1, n, dtype=F64)
    shift = torch.full((1, 1), 1e-12, dtype=F64)
    H = A[0].T @ A[0] + 1e-12 * torch.eye(n, dtype=F64)
    assert float(torch.linalg.cond(H)) < 1e6
    rhs = torch.randn(1, n, generator=g, dtype=F64)
    ref = torch.linalg.solve(H, rhs[0])
    errs = [float((StructuredHessian(refine=r).factor(NewtonSystem(op, w, shift))(rhs)[0]
                   - ref).norm() / ref.norm()) for r in (0, 3)]
    assert errs[0] > 1e-9 and errs[1] <= 1e-12, errs


def test_stacked_with_bound_rows_and_uneven_batch():
    """Bound rows (selections) join the diagonal; batch elements with different dense
    lines are padded to the largest."""
    g = torch.Generator().manual_seed(6)
    A = torch.zeros(2, M + 1, N, dtype=F64)
    cols = torch.randint(2, N, (2, M), generator=g)
    A[torch.arange(2)[:, None], torch.arange(M)[None], cols] = torch.randn(2, M, generator=g,
                                                                          dtype=F64)
    A[0, :M, 0] = torch.randn(M, generator=g, dtype=F64)  # element 0: one dense column
    A[1, :M, :2] = torch.randn(M, 2, generator=g, dtype=F64)  # element 1: two, no dense row
    A[0, M] = torch.randn(N, generator=g, dtype=F64)  # element 0: one dense row
    idx = torch.nonzero(A).T
    sel = torch.tensor([0, 3, 7])
    op = StackedOperator([SparseOperator.from_coo(idx, A[tuple(idx)], tuple(A.shape)),
                          SelectionOperator(sel, N, -1.0, 2, F64, torch.device("cpu"))])
    dense = torch.cat([A, -torch.eye(N, dtype=F64)[sel].expand(2, -1, -1)], 1)
    lay = analyse(op)
    assert (lay.k_c, lay.k_r) == (2, 1)
    _check(op, dense, g, 1e-3)


def test_structure_detection_and_auto_choice():
    g = torch.Generator().manual_seed(7)
    s = torch.rand(500, generator=g, dtype=F64)
    y = (torch.rand(500, generator=g) < 0.2).long()
    for lp in (fscore(s, y), precision_at_recall(s, y)):
        K = equilibrate(build_rows(lp), 10).K
        lay = analyse(K)
        assert (lay.k_c, lay.k_r) == (1, 1)  # the t / theta column, the eq / recall row
        assert isinstance(get_strategy("auto", K), StructuredHessian)
    # A general sparse matrix (three entries a row, no dense line) is not structured.
    rows = torch.arange(600).repeat_interleave(3)
    cols = torch.randint(0, 400, (1800,), generator=g)
    general = SparseOperator.from_coo(torch.stack([rows, cols]),
                                      torch.randn(1800, generator=g, dtype=F64), (600, 400))
    assert analyse(general) is None and not StructuredHessian().supports(general)
    # ...so auto takes the general sparse path: LDL^T where qdldl imports, else SuperLU.
    from sparselp.factor import have_qdldl
    from sparselp.linsolve import LDLHessian
    assert isinstance(get_strategy("auto", general), LDLHessian if have_qdldl() else ScipyHessian)
    with pytest.raises(ValueError, match="not separable apart from a few dense"):
        get_strategy("structured", general)
    # Row-separable: the diagonal strategy comes first; more dense lines than the cap: no.
    sep = SparseOperator.from_coo(torch.stack([torch.arange(50), torch.arange(50) % 10]),
                                  torch.ones(50, dtype=F64), (50, 10))
    assert isinstance(get_strategy("auto", sep), DiagonalHessian)
    op, _ = _structured(g, 3, 4, True)
    assert not StructuredHessian(cap=6).supports(op) and StructuredHessian(cap=7).supports(op)


@pytest.mark.parametrize("n", [100, 300, 2000])
@pytest.mark.parametrize("kind", ["fscore", "precision-at-recall"])
def test_ratio_lps_match_highs(kind, n):
    g = torch.Generator().manual_seed(n)
    s = torch.randn(n, generator=g, dtype=F64)
    y = (torch.rand(n, generator=g) < 0.3).long()
    y[0], y[1] = 1, 0
    lp = fscore(s, y) if kind == "fscore" else precision_at_recall(s, y)
    sol = sparselp.solve(lp)
    assert sol.linear_solver == "structured"
    assert_matches_highs(sol, lp.c[0], lp.A.to_scipy(0), lp.b[0],
                         None if lp.A_eq is None else lp.A_eq.to_scipy(0),
                         None if lp.A_eq is None else lp.b_eq[0])



def test_free_columns_are_clipped_at_their_first_kink():
    """clip_free_columns on a precision-at-recall subproblem: the Newton direction built
    here from the dense H keeps its non-free columns, stays a descent direction, and a free
    column stops, at t = 1, at or before the kink of each row that touches it alone (the
    bound rows), on it where that row binds."""
    from sparselp.linesearch import RowKinds
    from sparselp.newton import Subproblem, clip_free_columns

    g = torch.Generator().manual_seed(3)
    n = 60
    y = (torch.rand(n, generator=g) < 0.3).long()
    y[0], y[1] = 1, 0
    lp = precision_at_recall(torch.randn(n, generator=g, dtype=F64), y)
    system = build_rows(lp)
    Kd = system.K.to_dense(0)
    tau, sigma = 1e3, torch.full((1, 1), 1e3, dtype=F64)
    x = torch.rand(1, lp.n, generator=g, dtype=F64) + 0.5  # xi, eta > 0: bound rows off
    x[0, -1] = 0.0  # theta
    sub = Subproblem(system, RowKinds(system.eq, F64), torch.zeros_like(system.k), x.clone(),
                     sigma, torch.full((1, 1), tau, dtype=F64), True)
    u = sub.argument(x)
    p = sub.rows.proj(u)
    w = sub.hessian_weights(u, p, False)
    grad = sub.gradient(x, p)
    H = sigma[0, 0] * Kd.T @ (w[0, :, None] / sigma[0, 0] * Kd) + torch.eye(lp.n, dtype=F64) / tau
    d = -torch.linalg.solve(H, grad[0]).unsqueeze(0)
    free = (w[0].unsqueeze(-1) * Kd.abs()).sum(0) == 0
    assert bool(free.any()) and not bool(free.all())
    dc = clip_free_columns(sub, u, w, d)
    torch.testing.assert_close(dc[0, ~free], d[0, ~free], rtol=0, atol=0)
    ratio = dc[0, free] / d[0, free]
    assert bool(((ratio > 0) & (ratio <= 1)).all()) and float(ratio.min()) < 1e-2
    assert float((grad * dc).sum()) < 0
    # Single-column rows that approach their kink along d: at t = 1 they are on it.
    s = sigma * (d @ Kd.T)
    single = (Kd != 0).sum(1) == 1
    col = (Kd != 0).to(torch.int64).argmax(1)
    hit = single & (u[0] < 0) & (s[0] > 0) & free[col]
    hit &= (dc[0, col] / d[0, col]) < 1
    assert bool(hit.any())
    v = (u + sigma * (dc @ Kd.T))[0, hit]
    assert float(v.max()) <= 1e-9  # never past the kink
    assert float((v.abs() <= 1e-9).sum()) >= 1  # and the binding ones on it


def test_batch_of_lps_with_a_shared_matrix_matches_highs():
    """Precision at recall: the scores enter b, so one matrix serves a batch of LPs."""
    g = torch.Generator().manual_seed(8)
    y = (torch.rand(400, generator=g) < 0.25).long()
    lps = [precision_at_recall(torch.randn(400, generator=g, dtype=F64), y) for _ in range(3)]
    A = lps[0].A.to_scipy(0)
    batch = LinearProgram(torch.stack([p.c[0] for p in lps]),
                          _csr(A),
                          torch.stack([p.b[0] for p in lps]))
    sol = sparselp.solve(batch)
    assert sol.linear_solver == "structured" and all(st == Status.OPTIMAL for st in sol.status)
    for i, p in enumerate(lps):
        assert_matches_highs(sol[i], p.c[0], A, p.b[0])


def test_layer_gradient_through_the_structured_solve():
    """The active-set solves of the layer's backward go through the same strategies: the
    gradient of x with respect to b is that of the dense Cholesky path."""
    g = torch.Generator().manual_seed(9)
    s = torch.randn(60, generator=g, dtype=F64)
    y = (torch.rand(60, generator=g) < 0.3).long()
    y[0], y[1] = 1, 0
    lp = precision_at_recall(s, y)
    A = lp.A.to_scipy(0)
    A_t = _csr(A)
    weights = torch.randn(lp.n, generator=g, dtype=F64)
    grads = {}
    for name in ("structured", "cholesky"):
        b = lp.b[0].clone().requires_grad_()
        x = sparselp.lp_solve(lp.c[0], A_t, b, linear_solver=name)
        (x * weights).sum().backward()
        grads[name] = b.grad
    assert float(grads["cholesky"].abs().max()) > 0
    torch.testing.assert_close(grads["structured"], grads["cholesky"], rtol=1e-8, atol=1e-10)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(10)
    op, A = _structured(g, 2, 2, True)
    w = torch.rand(B, A.shape[1], generator=g, dtype=F64)
    shift = torch.full((B, 1), 1e-3, dtype=F64)
    rhs = torch.randn(B, N, generator=g, dtype=F64)
    x = StructuredHessian().factor(NewtonSystem(op, w, shift))(rhs)
    idx = torch.nonzero(A[0]).T
    op_c = SparseOperator.from_coo(idx.cuda(), A[0][tuple(idx)].cuda(), tuple(A[0].shape),
                                   batch_size=B)
    x_c = StructuredHessian().factor(NewtonSystem(op_c, w.cuda(), shift.cuda()))(rhs.cuda())
    torch.testing.assert_close(x_c.cpu(), x, rtol=1e-10, atol=1e-12)
