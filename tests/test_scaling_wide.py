"""Scaling that survives coefficients from 1e-9 to 1e12 (:mod:`sparselp.scaling`).

The absolute extremes of every operator against the dense matrix; geometric scaling
undoing a row and column scaling that Ruiz's passes with bound rows left in place; and
LPs with coefficients spread over 1e-9..1e12 (by rows and columns, with costs spread on
their own, and entry by entry), plus issue 12's ``c = (1e12, -1)``, all against HiGHS.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import sparselp
from sparselp import LinearProgram
from sparselp.operators import DenseOperator, SelectionOperator, SparseOperator, StackedOperator
from sparselp.scaling import build_rows, equilibrate

from lpcheck import assert_matches_highs

F64 = torch.float64


def _extremes_dense(M, dim):
    a = M.abs()
    hi = a.amax(-1 - dim)
    lo = a.masked_fill(a == 0, torch.inf).amin(-1 - dim)
    return hi, lo


def _operators(B, m, n):
    g = torch.Generator().manual_seed(0)
    M = torch.randn(B, m, n, generator=g, dtype=F64) * (torch.rand(B, m, n, generator=g) < 0.5)
    M[:, 0] = 0  # an empty row
    M[:, :, 1] = 0  # an empty column
    shared = M[:1].expand(B, m, n)
    idx = M[0].nonzero().T
    bidx = M.nonzero().T
    sel = SelectionOperator(torch.tensor([0, 2]), n, -1.0, B, F64, "cpu")
    yield DenseOperator(M), M
    yield DenseOperator(M[0], B), shared
    yield SparseOperator.from_coo(idx, M[0][idx[0], idx[1]], (m, n), B), shared
    yield SparseOperator.from_coo(bidx, M[bidx[0], bidx[1], bidx[2]], (B, m, n)), M
    stacked = torch.cat([M, -torch.eye(n, dtype=F64)[[0, 2]].expand(B, 2, n)], 1)
    yield StackedOperator([DenseOperator(M), sel]), stacked


@pytest.mark.parametrize("dim", [0, 1])
def test_abs_extremes_match_the_dense_matrix(dim):
    B, m, n = 2, 5, 4
    for op, M in _operators(B, m, n):
        g = torch.Generator().manual_seed(1)
        r = 10 ** torch.randn(B, op.m, generator=g, dtype=F64)
        s = 10 ** torch.randn(B, n, generator=g, dtype=F64)
        hi, lo = op.abs_extremes(r, s, dim)
        ref_hi, ref_lo = _extremes_dense(r.unsqueeze(-1) * M * s.unsqueeze(-2), dim)
        torch.testing.assert_close(hi, ref_hi)
        torch.testing.assert_close(lo, ref_lo)  # inf on empty rows and columns


def _wide(seed, kind):
    """scipy-style LP with coefficients spread over about 1e-9..1e12."""
    rng = np.random.default_rng([seed, 77])
    m, n = int(rng.integers(3, 30)), int(rng.integers(2, 20))
    G = rng.standard_normal((m, n))
    x0 = rng.random(n)
    b = G @ x0 + rng.random(m)
    c = rng.standard_normal(n)
    R, C = 10.0 ** rng.uniform(-4.5, 6, m), 10.0 ** rng.uniform(-4.5, 6, n)
    if kind == "entries":  # entry by entry: no diagonal scaling undoes it
        E = 10.0 ** rng.uniform(-9, 12, (m, n)) * (rng.random((m, n)) < 0.3)
        A = np.sign(G) * E
        A[np.arange(m), rng.integers(0, n, m)] = rng.standard_normal(m)
        return dict(c=c, A=A, b=np.abs(A) @ x0 + 1, bounds=[(0, 1)] * n)
    if kind == "costs":  # costs spread on their own as well
        c = c * 10.0 ** rng.uniform(-3, 3, n)
    return dict(c=c * C, A=R[:, None] * G * C[None, :], b=b * R,
                bounds=[(0, 1 / cj) for cj in C])


def test_geometric_scaling_undoes_a_row_and_column_scaling():
    """Entries over 1e-9..1e12 by rows and columns: the scaled A spans a few decades,
    where Ruiz's passes with the bound rows in the column norms left it at ~1e9."""
    p = _wide(0, "rows_and_columns")
    A = np.abs(p["A"][p["A"] != 0])
    assert A.max() / A.min() > 1e15
    lb = torch.zeros(len(p["c"]), dtype=F64)
    ub = torch.tensor([hi for _, hi in p["bounds"]], dtype=F64)
    lp = LinearProgram(torch.tensor(p["c"]), torch.tensor(p["A"]), torch.tensor(p["b"]),
                       lb=lb, ub=ub)
    S = equilibrate(build_rows(lp), 10)
    m = len(p["b"])
    K = S.K.to_dense()[:m].abs()
    assert float(K[K > 0].max() / K[K > 0].min()) < 1e4
    c = S.c.abs()
    assert float(c.max() / c[c > 0].min()) < 1e5


def test_a_tiny_entry_does_not_blow_up_its_cost():
    """c = (1e12, -1), A = (1e-9, 1): scaling the row's entries to one would scale the
    costs to 1e21 apart; the scaling kept leaves them as they came."""
    lp = LinearProgram(torch.tensor([1e12, -1.0], dtype=F64), torch.tensor([[1e-9, 1.0]], dtype=F64),
                       torch.tensor([1.0], dtype=F64), lb=0.0, ub=10.0)
    S = equilibrate(build_rows(lp), 10)
    c = S.c.abs()
    assert float(c.max() / c.min()) < 1e13
    # the objective's scale is the geometric mean of its extremes: neither cost is lost
    assert float(c.min()) > 1e-7 and float(c.max()) < 1e7


def test_issue_12_linprog_case_matches_highs():
    res = sparselp.linprog([1e12, -1], A_ub=[[1e-9, 1]], b_ub=[1], bounds=[(0, 10)] * 2)
    assert_matches_highs(res.solution, np.array([1e12, -1.0]), np.array([[1e-9, 1.0]]),
                         np.array([1.0]), bounds=[(0, 10)] * 2)
    assert res.status == 0 and res.fun == pytest.approx(-1.0, abs=1e-8)


@pytest.mark.parametrize("kind", ["rows_and_columns", "costs", "entries"])
@pytest.mark.parametrize("seed", range(4))
def test_coefficients_over_1e_minus9_to_1e12_match_highs(kind, seed):
    p = _wide(seed, kind)
    res = sparselp.linprog(p["c"], A_ub=p["A"], b_ub=p["b"], bounds=p["bounds"])
    assert_matches_highs(res.solution, p["c"], p["A"], p["b"], bounds=p["bounds"])


@pytest.mark.parametrize("seed", [12, 30, 48])
def test_badly_scaled_float32_fuzz_lps_agree(seed):
    """Rows and columns scaled over 1e-4..1e4 in float32 (benchmarks.fuzz_lp): these
    ended at the iteration limit while the bound rows pinned the column scaling."""
    from benchmarks import fuzz_lp
    row = fuzz_lp.check_one("badly_scaled", seed, "float32")
    assert row["agree"] and not row["false_optimal"], row
