"""Batches of general LPs: compaction of the working set, the Gram of the active rows with
the bound rows on its diagonal, and the Gram updated by the rows that changed.

Every answer is compared with HiGHS (:func:`lpcheck.assert_matches_highs`), element by
element, and with the element solved alone.
"""
from __future__ import annotations

import pytest
import torch

from sparselp import LinearProgram, Status, solve
from sparselp.batching import GramCache, take_system
from sparselp.linsolve import CholeskyHessian
from sparselp.operators import SparseOperator
from sparselp.scaling import build_rows, equilibrate

from lpcheck import (assert_matches_highs, element, mixed_status_lp, random_lp,
                     stacked_operator)

F64 = torch.float64


class RecordingCholesky(CholeskyHessian):
    """The Cholesky strategy, recording the batch size of every Newton system it factors
    (the Newton loop corrects a factor by low rank in between, :mod:`sparselp.lowrank`)."""

    def __init__(self):
        self.sizes = []

    def upper(self, system, gram=None):
        self.sizes.append(system.w.shape[0])
        return super().upper(system, gram)


def _mixed_batch(seeds=(0, 1, 2, 3)):
    """12 LPs, optimal / infeasible / unbounded interleaved (four seeds of the mixed LP)."""
    parts = [mixed_status_lp(seed=s) for s in seeds]
    return {k: torch.cat([p[k] for p in parts]) for k in ("c", "A", "b")}


def test_mixed_batch_compacts_and_matches_highs_element_by_element():
    p = _mixed_batch()
    rec = RecordingCholesky()
    sol = solve(LinearProgram(**p), linear_solver=rec)
    B = p["c"].shape[0]
    assert sol.status == [Status.OPTIMAL, Status.INFEASIBLE, Status.UNBOUNDED] * 4, sol.message
    for i in range(B):
        assert_matches_highs(sol[i], **element(p, i), certificate=True)
        alone = solve(LinearProgram(**element(p, i)))
        assert alone.status == sol.status[i]
        if alone.status == Status.OPTIMAL:
            torch.testing.assert_close(sol.fun[i], alone.fun, rtol=1e-7, atol=1e-8)
    # Decided and converged elements leave the working set: fewer systems than B per step.
    assert min(rec.sizes) < B and sum(rec.sizes) < B * len(rec.sizes)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_box_batch_matches_highs_and_elements_alone(seed):
    p = random_lp(m=24, n=12, seed=seed, batch=10, box=(1.0,), cost="random",
                  interior="uniform")
    sol = solve(LinearProgram(**p))
    assert sol.status == [Status.OPTIMAL] * 10, sol.message
    for i in range(10):
        assert_matches_highs(sol[i], **element(p, i))
        alone = solve(LinearProgram(**element(p, i)))
        torch.testing.assert_close(sol.fun[i], alone.fun, rtol=1e-7, atol=1e-8)


def _explicit_gram(K, d):
    return torch.stack([K.to_dense(b).T @ torch.diag(d[b]) @ K.to_dense(b)
                        for b in range(d.shape[0])])


@pytest.mark.parametrize("shared", [False, True])
def test_gram_of_active_rows_with_bounds_on_the_diagonal(shared):
    K, g = stacked_operator(shared=shared)
    d = torch.rand(5, K.m, generator=g, dtype=F64) * (torch.rand(5, K.m, generator=g) < 0.5)
    d[0] = 0  # an element with no active row
    torch.testing.assert_close(K.gram(d), _explicit_gram(K, d))
    # Signed weights (a change of weights between two Newton steps) on a few rows.
    delta = torch.zeros_like(d)
    delta[1, 3], delta[2, 0], delta[2, K.m - 1] = -0.7, 1.3, -0.2
    torch.testing.assert_close(K.gram(delta), _explicit_gram(K, delta))


def test_take_selects_batch_elements_of_every_operator():
    K, g = stacked_operator()
    idx = torch.tensor([1, 4])
    x = torch.randn(5, K.n, generator=g, dtype=F64)
    y = torch.randn(5, K.m, generator=g, dtype=F64)
    Kt = K.take(idx)
    assert Kt.batch_size == 2
    torch.testing.assert_close(Kt.mv(x[idx]), K.mv(x)[idx])
    torch.testing.assert_close(Kt.rmv(y[idx]), K.rmv(y)[idx])
    S = SparseOperator.from_coo(torch.tensor([[0, 1, 2], [1, 0, 3]]),
                                torch.tensor([1.0, -2.0, 3.0], dtype=F64), (3, 4), 5)
    torch.testing.assert_close(S.take(idx).mv(x[idx]), S.mv(x)[idx])
    assert S._unshare().take(idx) is None  # a block-diagonal batch keeps its elements


def test_take_system_matches_the_system_of_the_elements():
    p = random_lp(m=9, n=4, seed=2, batch=4, box=0.5)
    lp = LinearProgram(**p)
    sys4 = equilibrate(build_rows(lp), 10)
    sub = take_system(sys4, torch.tensor([0, 3]))
    x = torch.randn(4, 4, dtype=F64)
    torch.testing.assert_close(sub.K.mv(x[[0, 3]]) - sub.k, (sys4.K.mv(x) - sys4.k)[[0, 3]])
    torch.testing.assert_close(sub.c, sys4.c[[0, 3]])


def test_gram_cache_updates_equal_a_fresh_gram():
    K, g = stacked_operator(B=3, m=40, n=6)
    w = (torch.rand(3, K.m, generator=g, dtype=F64) < 0.5).to(F64) * 2.0
    cache = GramCache()
    cache.gram(K, w)
    for _ in range(4):  # a few rows enter or leave, as between two Newton steps
        flip = torch.randint(0, K.m, (3, 2), generator=g)
        w = w.scatter(1, flip, 2.0 - w.gather(1, flip))
        torch.testing.assert_close(cache.gram(K, w), K.gram(w), rtol=1e-12, atol=1e-12)
    cache.take(torch.tensor([2]))
    w = w[[2]].clone()
    w[0, 5] = 2.0 - w[0, 5]
    torch.testing.assert_close(cache.gram(K.take(torch.tensor([2])), w),
                               K.take(torch.tensor([2])).gram(w), rtol=1e-12, atol=1e-12)
    w = w * 3.0  # a new sigma: every active row changes, a fresh Gram
    torch.testing.assert_close(cache.gram(K.take(torch.tensor([2])), w),
                               K.take(torch.tensor([2])).gram(w))
