"""The fixed-pattern LDL^T strategy (:mod:`sparselp.factor`, ``linear_solver="ldl"``).

Its solves are checked against a dense solve built here from the same entries (in
test_linsolve.py too), the analysis is shown to happen once per operator, whole solves are
compared with HiGHS (float64 and float32, single and batched), and the fallback to SuperLU
is exercised with ``qdldl`` hidden from the import system.
"""
from __future__ import annotations

import sys

import pytest
import torch

import sparselp
from sparselp import linsolve
from sparselp.factor import have_qdldl
from sparselp.linsolve import LDLHessian, NewtonSystem, ScipyHessian, get_strategy
from sparselp.operators import SelectionOperator, SparseOperator, StackedOperator

from lpcheck import assert_matches_highs, element, random_lp

pytestmark = pytest.mark.skipif(not have_qdldl(), reason="qdldl not installed")
F64 = torch.float64


def _stacked(g, m=30, n=12, density=0.3, batch=2):
    A = torch.randn(m, n, generator=g, dtype=F64) * (torch.rand(m, n, generator=g) < density)
    idx = torch.nonzero(A).T
    sel = torch.tensor([0, 3, 7, 11])
    op = StackedOperator([SparseOperator.from_coo(idx, A[tuple(idx)], (m, n), batch_size=batch),
                          SelectionOperator(sel, n, -1.0, batch, F64, torch.device("cpu"))])
    return op, torch.cat([A, -torch.eye(n, dtype=F64)[sel]])


def _dense_solve(dense, w, shift, rhs):
    H = dense.T @ (w.unsqueeze(-1) * dense) + torch.diag(shift)
    return torch.linalg.solve(H, rhs)


def test_pattern_analysed_once_and_values_refactored():
    g = torch.Generator().manual_seed(3)
    op, dense = _stacked(g)
    strat = LDLHessian()
    solvers = []
    for step in range(4):  # the active rows change from step to step, as in the ALM
        w = torch.rand(2, op.m, generator=g, dtype=F64) * 10 ** step
        w = w * (torch.rand(2, op.m, generator=g) < 0.5)
        shift = torch.full((2, 1), 10.0 ** -step, dtype=F64)
        rhs = torch.randn(2, op.n, generator=g, dtype=F64)
        x = strat.factor(NewtonSystem(op, w, shift))(rhs)
        for b in range(2):
            ref = _dense_solve(dense, w[b], shift[b].expand(op.n), rhs[b])
            assert float((x[b] - ref).norm() / ref.norm()) < 1e-9
        solvers.append([p.solver for p in strat._patterns.get(op)])
    # one qdldl.Solver per batch element, made at the first step and updated afterwards
    assert all(s == solvers[0] for s in solvers) and len(set(map(id, solvers[0]))) == 2
    assert strat.factorizations == 8
    # one numeric factor is kept per pattern: a solve from before a refactorization refuses
    old = strat.factor(NewtonSystem(op, w, shift))
    strat.factor(NewtonSystem(op, 2 * w, shift))
    with pytest.raises(RuntimeError, match="refactored since"):
        old(rhs)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solves_random_sparse_lps_like_highs(seed, dtype):
    p = random_lp(60, 25, seed, dtype=dtype, eq=5, box=1.0, density=0.2, layout="coo")
    sol = sparselp.solve(sparselp.LinearProgram(**p), linear_solver="ldl")
    assert sol.linear_solver == "ldl"
    assert_matches_highs(sol, **p)


@pytest.mark.parametrize("seed", [0, 1])
def test_dense_side_solves_like_highs(seed):
    # The strategy "auto" gives nearly dense factors: both sides of the normal equations.
    for m, n in [(60, 25), (15, 40)]:
        p = random_lp(m, n, seed, box=1.0, density=0.3, layout="coo")
        sol = sparselp.solve(sparselp.LinearProgram(**p), linear_solver="dense-side")
        assert sol.linear_solver == "dense-side"
        assert_matches_highs(sol, **p)


def test_batched_lps_loop_over_elements():
    p = random_lp(40, 15, 5, batch=3, box=1.0, density=0.3, layout="coo")
    sol = sparselp.solve(sparselp.LinearProgram(**p), linear_solver="ldl")
    for i in range(3):
        assert_matches_highs(sol[i], **element(p, i))


def test_auto_picks_ldl_for_general_sparse_on_cpu(monkeypatch):
    g = torch.Generator().manual_seed(0)
    op, _ = _stacked(g)
    strat = get_strategy("auto", op)
    assert isinstance(strat, LDLHessian)
    assert strat.factorizations == 2  # the analysis made for the choice is kept
    assert 0 < strat.flops(op) <= linsolve.LDL_FLOPS_MAX
    # a factor predicted denser than the limit goes to LAPACK's dense Cholesky of the
    # smaller side, or to SuperLU's supernodes when that side is above dense_max_n
    monkeypatch.setattr(linsolve, "LDL_FLOPS_MAX", 1.0)
    assert get_strategy("auto", op).name == "dense-side"
    assert get_strategy("auto", op, dense_max_n=min(op.m, op.n) - 1).name == "scipy"
    monkeypatch.undo()
    p = random_lp(50, 20, 4, box=1.0, density=0.2, layout="coo")
    assert sparselp.solve(sparselp.LinearProgram(**p)).linear_solver == "ldl"


def test_missing_qdldl_falls_back_to_superlu(monkeypatch):
    monkeypatch.setitem(sys.modules, "qdldl", None)  # `import qdldl` raises ImportError
    g = torch.Generator().manual_seed(0)
    op, _ = _stacked(g)
    assert isinstance(get_strategy("auto", op), ScipyHessian)
    with pytest.raises(ValueError, match="linear_solver='ldl' does not support"):
        get_strategy("ldl", op)
    with pytest.raises(ValueError, match="needs the qdldl package"):
        LDLHessian().factor(NewtonSystem(op, torch.ones(2, op.m, dtype=F64),
                                         torch.ones(2, 1, dtype=F64)))
    p = random_lp(50, 20, 4, box=1.0, density=0.2, layout="coo")
    sol = sparselp.solve(sparselp.LinearProgram(**p))
    assert sol.linear_solver == "scipy"  # the choice is recorded on the answer
    assert_matches_highs(sol, **p)
