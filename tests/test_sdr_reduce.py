"""Reduction of LPs by projections, SDR projections, the gradient cosine, and the CV choice."""
import copy

import numpy as np
import pytest
import torch

from sdr.estimators import DirectionalRegression, SlicedInverseRegression
from sdr.evaluation import (MinibatchLP, SparseRows, compare_reduction, full_solution,
                            lagrangian_gradient, solve_lp)
from sdr.projection import SDRGrouping, group_average_matrix, sdr_projection
from sdr.reduce import lift, operator_matrix, reduce
from sdr.select import SDRFamily, SketchFamily, select_dimension
from sparselp.formulations import precision_at_recall_data
from sparselp.problem import LinearProgram
from sparselp.solver import solve

from lpcheck import assert_matches_highs, highs, random_lp

DT = torch.float64


def _random_lp(m=60, n=4, seed=0, sparse=False, bounds=False):
    """The shared generator's LP with a random c: a bounded polytope for m >> n, boxed by
    [-5, 5] with ``bounds``. Returns (LinearProgram, A, b, c)."""
    p = random_lp(m, n, seed, cost="random", box=(5.0,) if bounds else None)
    A = p["A"]
    lp = LinearProgram(**dict(p, A=A.to_sparse_csr() if sparse else A))
    return lp, A, p["b"], p["c"]


def _dense(M):
    return M.to_dense() if M.layout != torch.strided else M


# --- reduce -------------------------------------------------------------------------------
@pytest.mark.parametrize("sparse_A", [False, True])
@pytest.mark.parametrize("sparse_S", [False, True])
def test_reduce_matches_explicit_product(sparse_A, sparse_S):
    lp, A, b, c = _random_lp(sparse=sparse_A, bounds=True)
    S = torch.rand(7, 60, generator=torch.Generator().manual_seed(1), dtype=DT)
    red = reduce(lp, S.to_sparse() if sparse_S else S)
    torch.testing.assert_close(_dense(operator_matrix(red.A)), S @ A)
    torch.testing.assert_close(red.b[0], S @ b)
    torch.testing.assert_close(red.c, lp.c)
    torch.testing.assert_close(red.lb, lp.lb)
    torch.testing.assert_close(red.ub, lp.ub)
    res, ref = solve_lp(red), highs(c, S @ A, S @ b, bounds=(-5, 5))
    assert res.status == "optimal" and ref.status == 0
    assert res.fun == pytest.approx(ref.fun, rel=1e-9, abs=1e-9)


def test_reduce_accepts_csr_numpy_and_scipy_projections():
    import scipy.sparse as sp
    lp, A, b, _ = _random_lp()
    S = torch.rand(5, 60, generator=torch.Generator().manual_seed(9), dtype=DT)
    for P in (S.to_sparse_csr(), S.numpy(), sp.csr_matrix(S.numpy())):
        red = reduce(lp, P)
        torch.testing.assert_close(_dense(operator_matrix(red.A)), S @ A)
        torch.testing.assert_close(red.b[0], S @ b)


def test_reduce_with_sketch_equals_its_dense_matrix():
    from sketching import GaussianSketch, SparseSignSketch
    lp, A, b, _ = _random_lp()
    for cls in (GaussianSketch, SparseSignSketch):
        S = cls(20, 60, generator=3)
        Sd = S.to_dense()
        red = reduce(lp, S)
        torch.testing.assert_close(_dense(operator_matrix(red.A)), Sd @ A)
        torch.testing.assert_close(red.b[0], Sd @ b)
        v = torch.rand(20, dtype=DT)
        torch.testing.assert_close(lift(S, v), Sd.T @ v)


def test_reduce_keeps_equalities_and_batches():
    g = torch.Generator().manual_seed(2)
    A = torch.randn(30, 3, generator=g, dtype=DT)
    b = 1.0 + torch.rand(2, 30, generator=g, dtype=DT)
    c = torch.randn(2, 3, generator=g, dtype=DT)
    A_eq = torch.tensor([[1.0, 1.0, 1.0]], dtype=DT)
    lp = LinearProgram(c, A, b, A_eq=A_eq, b_eq=torch.tensor([0.5], dtype=DT))
    S = torch.rand(5, 30, generator=g, dtype=DT)
    red = reduce(lp, S)
    assert red.batched and red.batch_size == 2
    torch.testing.assert_close(red.b, b @ S.T)
    torch.testing.assert_close(_dense(operator_matrix(red.A_eq)), A_eq)
    torch.testing.assert_close(red.b_eq, lp.b_eq)


@pytest.mark.parametrize("sparse", [False, True])
def test_reduce_batch_of_different_matrices(sparse):
    g = torch.Generator().manual_seed(8)
    A = torch.randn(2, 10, 3, generator=g, dtype=DT)
    b = 1.0 + torch.rand(2, 10, generator=g, dtype=DT)
    S = torch.rand(4, 10, generator=g, dtype=DT)
    red = reduce(LinearProgram(torch.randn(2, 3, generator=g, dtype=DT),
                               A.to_sparse() if sparse else A, b), S)
    for i in range(2):
        torch.testing.assert_close(_dense(operator_matrix(red.A, i)), S @ A[i])
        torch.testing.assert_close(red.b[i], S @ b[i])


def test_reduce_bad_input():
    lp, *_ = _random_lp()
    with pytest.raises(ValueError, match=r"projection must have shape \(k, m\) with m = 60"):
        reduce(lp, torch.ones(3, 59, dtype=DT))
    with pytest.raises(TypeError, match="projection must be a torch matrix"):
        reduce(lp, [[1.0] * 60])
    with pytest.raises(ValueError, match="no inequality rows"):
        reduce(LinearProgram(torch.ones(2, dtype=DT), A_eq=torch.ones(1, 2, dtype=DT),
                             b_eq=torch.ones(1, dtype=DT)), torch.ones(1, 1, dtype=DT))
    off = LinearProgram(torch.ones(2, dtype=DT), torch.eye(2, dtype=DT),
                        torch.tensor([1.0, float("inf")], dtype=DT))
    with pytest.raises(ValueError, match=r"\+inf entries"):
        reduce(off, torch.ones(1, 2, dtype=DT))
    with pytest.raises(TypeError, match="problem must be a LinearProgram"):
        reduce("lp", torch.ones(1, 2, dtype=DT))


def test_nonnegative_aggregation_is_a_relaxation():
    lp, A, b, c = _random_lp(m=80, n=5, seed=4, bounds=True)
    full = highs(c, A, b, bounds=(-5, 5))
    rng = np.random.default_rng(0)
    for k in (3, 10, 40):
        S = group_average_matrix(rng.integers(0, k, 80), np.arange(80))
        res = solve_lp(reduce(lp, S))
        assert res.status == "optimal"
        assert res.fun <= full.fun + 1e-9  # the reduced value is a lower bound


def test_signed_projection_can_be_unbounded_and_is_reported():
    # min -x s.t. x <= 1, -x <= 1: summing the two rows leaves 0 <= 2, no bound on x.
    A = torch.tensor([[1.0], [-1.0]], dtype=DT)
    theta = torch.ones(2, dtype=DT)
    mlp = MinibatchLP(lambda t: dict(c=-torch.ones(1, dtype=DT), A=A, b=t), theta,
                      torch.arange(2))
    out = compare_reduction(mlp, torch.ones(1, 2, dtype=DT))
    assert out["status"] == "unbounded"
    assert np.isnan(out["grad_cos"]) and np.isnan(out["obj_rel_err"])


# --- group averaging and SDR projections ---------------------------------------------------
def test_group_average_matrix_structure():
    groups = np.array([0, 0, 1, 1, 1])
    ros = np.array([0, 1, 2, 3, 4, -1, 0, 2])  # two rows for samples 0 and 2, one free row
    S = group_average_matrix(groups, ros).to_dense()
    assert S.shape == (5, 8)
    assert (S >= 0).all()
    torch.testing.assert_close(S.sum(1), torch.ones(5, dtype=DT))
    # Free row 5 is kept alone; second rows (6, 7) are not mixed with first rows.
    assert S[:, 5].count_nonzero() == 1 and S[S[:, 5] > 0, 5].item() == 1.0
    assert S[:, 6].nonzero().item() != S[:, 0].nonzero().item()
    torch.testing.assert_close(S[S[:, 2] > 0][0, [2, 3, 4]], torch.full((3,), 1 / 3, dtype=DT))
    with pytest.raises(ValueError, match="rows_of_sample must hold sample indices"):
        group_average_matrix(groups, np.array([0, 7]))
    with pytest.raises(ValueError, match="row_kind must have shape"):
        group_average_matrix(groups, ros, row_kind=np.zeros(3))


def _pool(n=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    s = X @ np.array([1.0, 0.5, 0.0, 0.0]) + 0.3 * rng.standard_normal(n)
    y = (s + 0.5 * rng.standard_normal(n) > 0).astype(np.int64)
    return X, y, s


def _prec_builder(X, y, s):
    def build(idx):
        lab = y[idx]
        pos, neg = np.flatnonzero(lab == 1), np.flatnonzero(lab == 0)
        ros = np.r_[np.repeat(pos, 2), np.repeat(neg, 2), -1]
        kind = np.r_[np.tile([0, 1], lab.size), -1]
        yt = torch.as_tensor(lab)
        return MinibatchLP(lambda t: precision_at_recall_data(t, yt, 0.8),
                           torch.as_tensor(s[idx], dtype=DT), torch.as_tensor(ros),
                           torch.as_tensor(kind))
    return build


def test_sdr_projection_with_one_group_per_sample_is_exact():
    X, y, s = _pool()
    mlp = _prec_builder(X, y, s)(np.arange(y.size))
    S = sdr_projection(X, y, mlp.rows_of_sample, n_groups=y.size, row_kind=mlp.row_kind,
                       scores=s, random_state=0)
    assert S.shape[0] == mlp.rows_of_sample.numel()  # a permutation of the rows
    out = compare_reduction(mlp, S)
    assert out["status"] == "optimal"
    assert out["obj_rel_err"] < 1e-9 and out["grad_cos"] > 1 - 1e-9


def test_sdr_projection_reduces_and_stays_a_relaxation():
    X, y, s = _pool()
    mlp = _prec_builder(X, y, s)(np.arange(y.size))
    lp, res, g = full_solution(mlp)
    for est in (None, DirectionalRegression(n_components=2)):
        S = sdr_projection(X, y, mlp.rows_of_sample, n_groups=12, estimator=est,
                           row_kind=mlp.row_kind, scores=s, random_state=0)
        assert 12 * 2 <= S.shape[0] <= 12 * 2 + 1 + 4  # groups x 2 kinds + the recall row
        red = solve_lp(reduce(lp, S))
        assert red.status == "optimal" and red.fun <= res.fun + 1e-9


def test_sdr_grouping_out_of_sample_and_prefit():
    X, y, s = _pool(120)
    grp = SDRGrouping(10, random_state=0).fit(X[:80], y[:80], s[:80])
    groups = grp.assign(X[80:], y[80:])
    assert groups.min() >= 0 and groups.max() < grp.n_groups_
    # Groups never mix classes.
    for gid in np.unique(groups):
        assert len(set(y[80:][groups == gid])) == 1
    pre = SDRGrouping(40, grp.estimator_, prefit=True).fit(X[80:], y[80:])
    assert pre.estimator_ is grp.estimator_ and pre.n_groups_ == 40
    with pytest.raises(ValueError, match="n_groups must be a positive integer"):
        SDRGrouping(0).fit(X, y)
    with pytest.raises(ValueError, match="scores must have shape"):
        SDRGrouping(3).fit(X, y, s[:5])


# --- gradients -----------------------------------------------------------------------------
def test_lagrangian_gradient_matches_finite_differences():
    X, y, s = _pool()
    mlp = _prec_builder(X, y, s)(np.arange(y.size))
    _, res, g = full_solution(mlp)
    d = torch.as_tensor(np.random.default_rng(1).standard_normal(y.size)) * 1e-6
    f = []
    for sign in (1, -1):
        m2 = copy.copy(mlp)
        m2.theta = mlp.theta + sign * d
        f.append(solve_lp(m2.problem()).fun)
    assert float(g @ d) == pytest.approx((f[0] - f[1]) / 2, rel=1e-4, abs=1e-13)


def test_gradient_wrt_b_is_minus_dual_and_sparse_rows_agree():
    lp, A, b, c = _random_lp(m=40, n=3, seed=5)
    nz = A.nonzero().T
    rows = SparseRows(nz[0], nz[1], A[nz[0], nz[1]], tuple(A.shape))
    mlp = MinibatchLP(lambda t: dict(c=c, A=rows, b=t), b, torch.arange(40))
    res = solve_lp(mlp.problem())
    ref = highs(c, A, b)
    assert res.fun == pytest.approx(ref.fun, rel=1e-9)
    torch.testing.assert_close(lagrangian_gradient(mlp, res.x, res.v, res.v_eq), -res.v)


def test_sparselp_solver_path_agrees_with_highs():
    lp, A, b, c = _random_lp(m=40, n=3, seed=6)
    a, h = solve_lp(lp, "sparselp"), solve_lp(lp, "highs")
    assert a.status == "optimal"
    assert a.fun == pytest.approx(h.fun, rel=1e-7, abs=1e-7)
    with pytest.raises(ValueError, match="solver must be"):
        solve_lp(lp, "cplex")


# --- cross-validated choice ---------------------------------------------------------------
def test_select_dimension_picks_smallest_ratio_meeting_target():
    X, y, s = _pool(150, seed=3)
    build = _prec_builder(X, y, s)
    grid = [0.1, 0.3, 1.0]
    fam = SDRFamily(SlicedInverseRegression(n_components=1), random_state=0)
    choice, table = select_dimension(X, y, build, fam, grid, scores=s, target=0.9, n_splits=3)
    assert [r["ratio"] for r in table] == grid
    means = [r["mean"] for r in table]
    assert table[-1]["mean"] > 1 - 1e-9  # ratio 1: every sample its own group, exact
    expect = next(r for r, mu in zip(grid, means) if mu >= 0.9)
    assert choice == expect
    assert all(f"fold{i}" in table[0] for i in range(3))


def test_select_dimension_with_sketches_reports_failures():
    from sketching import GaussianSketch
    X, y, s = _pool(90, seed=4)
    choice, table = select_dimension(X, y, _prec_builder(X, y, s),
                                     SketchFamily(GaussianSketch, seed=0), [0.5, 1.0],
                                     scores=s, n_splits=3)
    # A signed sketch of an LP of free variables is not a relaxation: here it fails.
    assert choice is None
    assert all(r["mean"] < 0.95 for r in table)


def test_select_dimension_bad_input():
    X, y, s = _pool(30)
    fam = SDRFamily()
    with pytest.raises(ValueError, match="grid must hold reduction ratios"):
        select_dimension(X, y, _prec_builder(X, y, s), fam, [0.0, 0.5])
    with pytest.raises(ValueError, match="target must lie in"):
        select_dimension(X, y, _prec_builder(X, y, s), fam, [0.5], target=1.5)
    with pytest.raises(ValueError, match="same number of samples"):
        select_dimension(X, y[:10], _prec_builder(X, y, s), fam, [0.5])


def test_keep_rows_block_projection():
    from sdr.reduce import KeepRows
    lp, A, b, c = _random_lp(m=12, n=3, seed=7, sparse=True)
    keep = torch.zeros(12, dtype=torch.bool)
    keep[[1, 5, 6]] = True
    S = torch.rand(4, 9, generator=torch.Generator().manual_seed(0), dtype=DT)
    P = KeepRows(S, keep)
    assert P.shape == (7, 12)
    dense_P = torch.zeros(7, 12, dtype=DT)
    dense_P[:4, ~keep] = S
    dense_P[torch.arange(4, 7), torch.tensor([1, 5, 6])] = 1.0
    red = reduce(lp, P)
    torch.testing.assert_close(_dense(operator_matrix(red.A)), dense_P @ A)
    torch.testing.assert_close(red.b[0], dense_P @ b)
    v = torch.rand(7, dtype=DT)
    torch.testing.assert_close(lift(P, v), dense_P.T @ v)
    with pytest.raises(ValueError, match=r"projection must have shape \(k, 9\)"):
        KeepRows(torch.ones(2, 12, dtype=DT), keep)


def test_sketch_family_keeps_bound_rows():
    from sketching import GaussianSketch
    X, y, s = _pool(40)
    mlp = _prec_builder(X, y, s)(np.arange(40))
    P = SketchFamily(GaussianSketch, keep_bounds=True).make(0.5, X, y, mlp)
    # precision_at_recall: one sign row (a bound) per sample, 40 hinge rows + 1 recall row.
    assert int(P.keep.sum()) == 40 and P.shape == (round(0.5 * 41) + 40, 81)
    out = compare_reduction(mlp, P)
    # No longer unbounded (eta >= 0 kept): the reduced LP's status is HiGHS's, and sparselp
    # reaches the same status (and certificate) on it.
    red = reduce(mlp.problem(), P)
    sol = solve(red)
    ref = assert_matches_highs(sol, red.c[0], red.A, red.b[0], red.A_eq, red.b_eq[0],
                               lb=red.lb[0], ub=red.ub[0])
    assert out["status"] == {0: "optimal", 2: "infeasible"}[ref.status]
