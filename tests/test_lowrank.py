"""The Newton factor corrected by low rank between refactorizations (sparselp.lowrank):
every solve equals a fresh Cholesky solve of the current Hessian, whichever rows changed
(dense rows, bound rows, rows that left and came back), and the operators' ``row_block``
gives the rows of their dense matrices."""
from __future__ import annotations

import pytest
import torch

from sparselp import LinearProgram, Status, solve
from sparselp.linsolve import CholeskyHessian, NewtonSystem
from sparselp.lowrank import MAX_RANK_SHARE, FactorCache
from sparselp.operators import SparseOperator, marked_rows

from lpcheck import assert_matches_highs, element, random_lp, stacked_operator

F64 = torch.float64


@pytest.mark.parametrize("shared", [False, True])
def test_row_block_gives_the_rows_of_the_dense_matrix(shared):
    K, g = stacked_operator(B=3, m=6, n=4, shared=shared)
    rows = torch.randint(0, K.m, (3, 5), generator=g)
    block = K.row_block(rows)
    for b in range(3):
        torch.testing.assert_close(block[b], K.to_dense(b)[rows[b]])


def test_row_block_of_a_sparse_operator_is_none():
    S = SparseOperator.from_coo(torch.tensor([[0, 1], [1, 0]]),
                                torch.tensor([1.0, -2.0], dtype=F64), (2, 3), 2)
    assert S.row_block(torch.zeros(2, 1, dtype=torch.long)) is None


def test_marked_rows_puts_each_elements_marks_first_in_order():
    mask = torch.tensor([[False, True, False, True], [True, False, False, False]])
    rows = marked_rows(mask)
    assert rows.tolist()[0] == [1, 3]
    assert rows[1, 0] == 0 and not mask[1, rows[1, 1]]


class CountingCholesky(CholeskyHessian):
    def __init__(self):
        self.factors = 0

    def upper(self, system, gram=None):
        self.factors += 1
        return super().upper(system, gram)


def _fresh(K, w, shift, rhs):
    return CholeskyHessian().factor(NewtonSystem(K, w, shift))(rhs)


def test_factor_cache_solves_equal_fresh_factorizations():
    B, m, n = 4, 40, 12
    K, g = stacked_operator(B=B, m=m, n=n)
    shift = torch.full((B, n), 0.3, dtype=F64)
    w = (torch.rand(B, K.m, generator=g, dtype=F64) < 0.5).to(F64) * 5.0
    strategy = CountingCholesky()
    cache = FactorCache(strategy)
    seen = []
    for step in range(8):
        rhs = torch.randn(B, n, generator=g, dtype=F64)
        got = cache.solver(NewtonSystem(K, w, shift))(rhs)
        torch.testing.assert_close(got, _fresh(K, w, shift, rhs), rtol=1e-9, atol=1e-10)
        seen.append(strategy.factors)
        # A row or two enter or leave (dense rows and bound rows alike); at step 4 the
        # first change is undone (the net change drops it).
        flip = torch.randint(0, K.m, (B, 2), generator=g)
        w = w.scatter(1, flip, 5.0 - w.gather(1, flip))
    # One factor for the first step, corrected by the rows changed since (2 a step) until
    # they pass MAX_RANK_SHARE * n.
    assert seen[0] == 1 and seen[1] == 1
    assert seen[-1] < 8
    cache.take(torch.tensor([0, 2]))
    K2 = K.take(torch.tensor([0, 2]))
    w2, shift2 = w[[0, 2]].clone(), shift[[0, 2]]
    w2[:, :3] = 5.0 - w2[:, :3]
    rhs = torch.randn(2, n, generator=g, dtype=F64)
    torch.testing.assert_close(cache.solver(NewtonSystem(K2, w2, shift2))(rhs),
                               _fresh(K2, w2, shift2, rhs), rtol=1e-9, atol=1e-10)


def test_factor_cache_refactors_past_the_rank_bound():
    B, m, n = 2, 60, 8
    K, g = stacked_operator(B=B, m=m, n=n)
    shift = torch.ones(B, n, dtype=F64)
    w = torch.ones(B, K.m, dtype=F64)
    strategy = CountingCholesky()
    cache = FactorCache(strategy)
    cache.solver(NewtonSystem(K, w, shift))
    many = int(MAX_RANK_SHARE * n) + 1
    w2 = w.clone()
    w2[:, :many] = 0.0
    rhs = torch.randn(B, n, generator=g, dtype=F64)
    torch.testing.assert_close(cache.solver(NewtonSystem(K, w2, shift))(rhs),
                               _fresh(K, w2, shift, rhs))
    assert strategy.factors == 2
    w3 = w2.clone()
    w3[:, many] = 0.0  # one more row: corrected, not refactored
    torch.testing.assert_close(cache.solver(NewtonSystem(K, w3, shift))(rhs),
                               _fresh(K, w3, shift, rhs))
    assert strategy.factors == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_box_batch_with_low_rank_steps_matches_highs(seed):
    p = random_lp(m=60, n=30, seed=seed, batch=6, box=(1.0,), cost="random",
                  interior="uniform")
    strategy = CountingCholesky()
    sol = solve(LinearProgram(**p), linear_solver=strategy)
    assert sol.status == [Status.OPTIMAL] * 6, sol.message
    for i in range(6):
        assert_matches_highs(sol[i], **element(p, i))
    # The low-rank corrections served most Newton steps.
    assert strategy.factors < sol.nit
