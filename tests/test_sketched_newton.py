"""SketchedHessian: the Newton Sketch strategy, alone and inside the solver."""
import numpy as np
import pytest
import torch

from benchmarks.random_lps import mangasarian_lp
from sketching.hessian import SKETCHES, SketchedHessian
from sparselp.linsolve import CholeskyHessian, NewtonSystem
from sparselp.operators import DenseOperator, SelectionOperator, SparseOperator, StackedOperator
from sparselp.problem import LinearProgram
from sparselp.solver import solve

from lpcheck import assert_matches_highs

DT = torch.float64
KINDS = sorted(SKETCHES)




def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _system(op, frac=0.5, shift=1e-3, seed=0):
    g = _gen(seed)
    B = op.batch_size
    w = torch.rand(B, op.m, generator=g, dtype=DT) * (torch.rand(B, op.m, generator=g) < frac)
    return NewtonSystem(op, w, torch.full((B, op.n), shift, dtype=DT))


def _h_error(system, x, x_ref):
    """Relative error in the H-norm, per batch element."""
    e = x - x_ref
    return ((e * system.matvec(e)).sum(-1) / (x_ref * system.matvec(x_ref)).sum(-1)).sqrt()


def _dense_op(m=3000, n=20, seed=1, batch=None):
    shape = (m, n) if batch is None else (batch, m, n)
    return DenseOperator(torch.randn(*shape, generator=_gen(seed), dtype=DT))


@pytest.mark.parametrize("kind", KINDS)
def test_sketched_solve_error_shrinks_as_sketch_grows(kind):
    op = _dense_op()
    system = _system(op)
    g = torch.randn(1, op.n, generator=_gen(2), dtype=DT)
    x_ref = CholeskyHessian().factor(system)(g)
    errors = []
    for factor in (2, 8, 32):
        strat = SketchedHessian(kind, sketch_factor=factor, generator=3)
        errs = [float(_h_error(system, strat.factor(system)(g), x_ref)) for _ in range(4)]
        assert strat.last_info["sketched"] == [True]
        errors.append(np.mean(errs))
    # The Newton-sketch error scales like sqrt(n / s): 4x rows, about half the error.
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.35, errors
    assert errors[2] < 0.6 * errors[0], errors


def test_exact_gram_when_active_rows_fit_in_the_sketch():
    op = _dense_op(m=500, n=10)
    system = _system(op, frac=0.05)  # about 25 active rows <= s = 4 n = 40
    g = torch.randn(1, op.n, generator=_gen(4), dtype=DT)
    strat = SketchedHessian("gaussian", generator=0)
    x = strat.factor(system)(g)
    assert strat.last_info["sketched"] == [False]
    assert strat.last_info["active_rows"][0] == int((system.w > 0).sum()) <= 40
    torch.testing.assert_close(x, CholeskyHessian().factor(system)(g), rtol=1e-10, atol=1e-12)
    # A higher cut-off keeps a larger active set exact too.
    big = _system(op, frac=0.5)  # about 250 active rows
    default = SketchedHessian("gaussian", generator=0)
    default.factor(big)
    assert default.last_info["sketched"] == [True]  # 250 > s = 40
    strat = SketchedHessian("gaussian", generator=0, exact_threshold=10)
    torch.testing.assert_close(strat.factor(big)(g), CholeskyHessian().factor(big)(g),
                               rtol=1e-10, atol=1e-12)
    assert strat.last_info["sketched"] == [False]


def test_fresh_sketch_each_call_and_reproducible_sequence():
    op = _dense_op(m=1000, n=10)
    system = _system(op)
    g = torch.randn(1, op.n, generator=_gen(5), dtype=DT)
    a, b = SketchedHessian("countsketch", generator=7), SketchedHessian("countsketch", generator=7)
    xa1, xa2 = a.factor(system)(g), a.factor(system)(g)
    assert not torch.allclose(xa1, xa2)
    torch.testing.assert_close(b.factor(system)(g), xa1, rtol=0, atol=0)
    torch.testing.assert_close(b.factor(system)(g), xa2, rtol=0, atol=0)
    assert a.calls == a.sketched_calls == 2


def _operators():
    A = torch.randn(2, 2000, 12, generator=_gen(6), dtype=DT)
    A[torch.rand(2, 2000, 12, generator=_gen(7)) < 0.5] = 0
    sparse = A[0].to_sparse()
    sel = SelectionOperator(torch.arange(12), 12, -1.0, 1, DT, "cpu")
    return {
        "dense-batched": DenseOperator(A),
        "sparse": SparseOperator.from_coo(sparse.indices(), sparse.values(), (2000, 12)),
        "sparse-batched": SparseOperator.from_coo(A.to_sparse().indices(),
                                                  A.to_sparse().values(), (2, 2000, 12)),
        "stacked": StackedOperator([DenseOperator(A[0]), sel]),
    }


@pytest.mark.parametrize("name", ["dense-batched", "sparse", "sparse-batched", "stacked"])
@pytest.mark.parametrize("kind", ["sparse_sign", "srht", "leverage"])
def test_operator_layouts(name, kind):
    op = _operators()[name]
    system = _system(op, seed=8)
    B = op.batch_size
    g = torch.randn(B, op.n, generator=_gen(9), dtype=DT)
    x_ref = CholeskyHessian().factor(system)(g)
    strat = SketchedHessian(kind, sketch_factor=40, generator=1)
    x = strat.factor(system)(g)
    assert x.shape == (B, op.n)
    assert strat.last_info["sketched"] == [True] * B
    assert bool((_h_error(system, x, x_ref) < 0.4).all())
    # Few active rows: the exact branch, equal to Cholesky.
    small = _system(op, frac=0.01, seed=10)
    x_ref = CholeskyHessian().factor(small)(g)
    torch.testing.assert_close(strat.factor(small)(g), x_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sketch="hadamard"), "sketch must be one of"),
    (dict(sketch=int), "sketch must be one of"),
    (dict(sketch_size=0), "sketch_size must be a positive integer"),
    (dict(sketch_size=100, sketch_factor=2.0), "sketch_size or sketch_factor, not both"),
    (dict(sketch_factor=-1.0), "sketch_factor must be a positive number"),
    (dict(sketch_factor=float("nan")), "sketch_factor must be a positive number"),
    (dict(exact_threshold=0.5), "exact_threshold must be a number >= 1"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SketchedHessian(**kwargs)


def test_size_rule_and_attributes():
    assert SketchedHessian(sketch_factor=4).size_for(200) == 800
    assert SketchedHessian(sketch_size=123).size_for(200) == 123
    assert SketchedHessian().size_for(10) == 40
    s = SketchedHessian("srht")
    assert s.exact is False and s.name == "sketch-srht"


# -- inside the solver: answers checked against HiGHS ----------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_solver_with_sketched_hessian_matches_highs(kind):
    c, A, b, x_star = mangasarian_lp(600, 10, seed=11)
    strat = SketchedHessian(kind, sketch_size=20, generator=12)
    sol = solve(LinearProgram(c, A, b), linear_solver=strat)
    assert strat.sketched_calls > 0  # the sketch was really used
    assert sol.linear_solver == f"sketch-{kind}"
    assert_matches_highs(sol, c, A, b, check_x=True)
    torch.testing.assert_close(sol.fun, c @ x_star, rtol=1e-6, atol=1e-8)


def test_solver_sparse_lp_with_countsketch_matches_highs():
    # Sparse binding rows may leave the optimal face larger than a vertex: compare values.
    c, A, b, _ = mangasarian_lp(800, 12, density=0.3, seed=13)
    strat = SketchedHessian("countsketch", sketch_factor=2, generator=14)
    sol = solve(LinearProgram(c, A, b), linear_solver=strat)
    assert strat.sketched_calls > 0
    assert_matches_highs(sol, c, A, b)
