"""Formulations: structure, closed forms, agreement with HiGHS, bad input."""
import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from sparselp.formulations import (auc_from_hinge, binary_auc, binary_auc_data, fscore,
                                   fscore_data, multiclass_auc, precision_at_recall,
                                   precision_at_recall_data)
from sparselp.linsolve import get_strategy
from sparselp.solver import solve

from lpcheck import assert_matches_highs

F64 = torch.float64


def _data(n=14, seed=0, frac=0.4):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, generator=g, dtype=F64)
    y = (torch.rand(n, generator=g) < frac).long()
    y[0], y[1] = 1, 0
    return s, y


def _check_with_solvers(lp):
    """Solve with sparselp and compare with HiGHS on the same sparse data."""
    sol = solve(lp)
    A = lp.A.to_scipy(0)
    kw = {}
    if lp.A_eq is not None:
        kw = dict(A_eq=lp.A_eq.to_scipy(0), b_eq=lp.b_eq[0])
    ref = assert_matches_highs(sol, lp.c[0], A, lp.b[0], bounds=(None, None), **kw)
    return sol, ref


def _closed_auc(s, y, eps):
    pos, neg = s[y == 1], s[y == 0]
    return (eps - (pos[:, None] - neg[None, :])).clamp_min(0).reshape(-1)


def test_binary_auc_structure_and_diagonal_path():
    s, y = _data()
    lp = binary_auc(s, y, eps=0.5)
    P = int(y.sum()) * int((y == 0).sum())
    assert (lp.m, lp.n) == (2 * P, P)
    assert lp.A.is_sparse and lp.A.nnz == 2 * P
    assert lp.A.rows_separable
    assert get_strategy("auto", lp.A).name == "diagonal"
    data = binary_auc_data(s, y, eps=0.5)
    assert data.A.layout == torch.sparse_csr


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_auc_matches_closed_form_and_highs(reduction):
    s, y = _data()
    eps = 0.5
    lp = binary_auc(s, y, eps=eps, reduction=reduction)
    sol, ref = _check_with_solvers(lp)
    z = _closed_auc(s, y, eps)
    np.testing.assert_allclose(sol.x.numpy(), z.numpy(), atol=1e-6)
    expected = z.mean() if reduction == "mean" else z.sum()
    assert float(sol.fun) == pytest.approx(float(expected), rel=1e-7)
    assert sol.linear_solver == "diagonal"


def test_auc_from_hinge_is_auc_with_clear_margins():
    from sklearn.metrics import roc_auc_score
    g = torch.Generator().manual_seed(1)
    eps = 0.1
    s = torch.randperm(30, generator=g).to(F64) * 2 * eps  # every gap >= 2 eps
    y = (torch.rand(30, generator=g) < 0.5).long()
    z = _closed_auc(s, y, eps)
    assert float(auc_from_hinge(z, eps)) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def _manual_auc_mu_objective(S, Y, P, eps):
    """Direct loops over class pairs and sample pairs (Kleiman & Page's definition)."""
    K = S.shape[1]
    terms = []
    for i in range(K):
        for j in range(i + 1, K):
            v = P[j] - P[i]
            a, b = S[Y == i], S[Y == j]
            h = [max(0.0, eps - float((sa - sb) @ v)) for sa in a for sb in b]
            terms.append(sum(h) / len(h))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("P", [None, "random"])
def test_multiclass_auc_mu_matches_definition_and_highs(P):
    g = torch.Generator().manual_seed(2)
    S = torch.randn(12, 3, generator=g, dtype=F64)
    Y = torch.arange(12) % 3
    Pm = 1 - torch.eye(3, dtype=F64) if P is None else \
        torch.rand(3, 3, generator=g, dtype=F64) * (1 - torch.eye(3, dtype=F64))
    lp = multiclass_auc(S, Y, P=None if P is None else Pm, eps=0.3)
    assert lp.A.rows_separable
    sol, ref = _check_with_solvers(lp)
    assert ref.fun == pytest.approx(_manual_auc_mu_objective(S, Y, Pm, 0.3), rel=1e-9)


def test_multiclass_auc_mu_default_P_is_score_difference():
    S = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    Y = torch.tensor([0, 1, 2])
    # pair (0, 1): nu = (s_0(a) - s_1(a)) - (s_0(b) - s_1(b)) = 3 - (-2) = 5, etc.
    lp = multiclass_auc(S, Y, eps=10.0, reduction="sum")
    nu = torch.tensor([5.0, 4.0, 3.0], dtype=F64)
    np.testing.assert_allclose(lp.b[0, :3].numpy(), (nu - 10.0).numpy())


def test_multiclass_auc_ova_matches_highs():
    g = torch.Generator().manual_seed(3)
    S = torch.randn(10, 3, generator=g, dtype=F64)
    Y = torch.arange(10) % 3
    lp = multiclass_auc(S, Y, eps=0.2, variant="ova")
    sol, ref = _check_with_solvers(lp)
    expected = 0.0
    for k in range(3):
        a, b = S[Y == k, k], S[Y != k, k]
        expected += (0.2 - (a[:, None] - b[None, :])).clamp_min(0).mean() / 3
    assert ref.fun == pytest.approx(float(expected), rel=1e-9)


def test_multiclass_missing_class_raise_or_skip():
    S = torch.randn(6, 3, dtype=F64)
    Y = torch.tensor([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"no sample of class\(es\) \[2\]"):
        multiclass_auc(S, Y)
    lp = multiclass_auc(S, Y, missing="skip")
    assert lp.n == 9


def _ramp(s, eps=1.0):
    """The relaxed 0/1 prediction, written out: 0 below -eps, 1 above eps, linear between."""
    return torch.clamp(0.5 + s / (2 * eps), min=0.0, max=1.0)


def _closed_f(s, y, eps):
    u = _ramp(s, eps)
    up, un = u[y == 1].sum(), u[y == 0].sum()
    return float(2 * up / (up + un + (y == 1).sum()))


def test_fscore_matches_charnes_cooper_closed_form_and_highs():
    s, y = _data(n=16, seed=4)
    lp = fscore(s, y, eps=1.0)
    assert lp.A.is_sparse and not lp.A.rows_separable  # general sparse path
    sol, ref = _check_with_solvers(lp)
    assert -ref.fun == pytest.approx(_closed_f(s, y, 1.0), rel=1e-9)
    n = s.numel()
    t = float(sol.x[-1])
    assert t == pytest.approx(1 / (float(_ramp(s).sum()) + int(y.sum())),
                              rel=1e-6)
    np.testing.assert_allclose(sol.x[:n].numpy(), (_ramp(s) * t).numpy(),
                               atol=1e-7)


def test_fscore_is_f1_with_clear_margins():
    g = torch.Generator().manual_seed(5)
    s = torch.randn(40, generator=g, dtype=F64)
    s = s + torch.sign(s) * 1.0  # |s| >= eps: the ramp is 0 or 1
    y = (torch.rand(40, generator=g) < 0.5).long()
    assert _closed_f(s, y, 1.0) == pytest.approx(f1_score(y, (s > 0).long()), abs=1e-12)
    d = fscore_data(s, y, 1.0)
    assert d.A_eq.shape == (1, 41)


def _closed_precision_at_recall(s, y, beta, eps):
    """theta* = the largest threshold meeting the recall bound (bisection), then the FP bound."""
    sp_, sn = s[y == 1], s[y == 0]

    def xi_sum(t):
        return float((1 - (sp_ - t) / eps).clamp_min(0).sum())
    lo, hi = float(s.min()) - 10 * eps, float(s.max()) + 10 * eps
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if xi_sum(mid) <= (1 - beta) * sp_.numel() else (lo, mid)
    return float((1 + (sn - lo) / eps).clamp_min(0).mean())


@pytest.mark.parametrize("beta", [0.5, 0.8])
def test_precision_at_recall_matches_threshold_closed_form_and_highs(beta):
    s, y = _data(n=16, seed=6)
    lp = precision_at_recall(s, y, recall=beta, eps=0.5)
    sol, ref = _check_with_solvers(lp)
    assert ref.fun == pytest.approx(_closed_precision_at_recall(s, y, beta, 0.5), rel=1e-7)


def test_formulations_never_densify(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a formulation densified a matrix")
    monkeypatch.setattr(torch.Tensor, "to_dense", boom)
    s, y = _data()
    binary_auc_data(s, y)
    fscore_data(s, y)
    precision_at_recall_data(s, y)


def test_half_precision_scores_give_float32_lp():
    s, y = _data()
    lp = binary_auc(s.half(), y)
    assert lp.dtype == torch.float32
    assert binary_auc(s.bfloat16(), y).dtype == torch.float32


@pytest.mark.parametrize("build,kwargs,match", [
    (binary_auc, dict(labels=torch.ones(5, dtype=torch.long)), "no negative"),
    (binary_auc, dict(labels=torch.zeros(5, dtype=torch.long)), "no positive"),
    (binary_auc, dict(labels=torch.tensor([0, 1, 2, 0, 1])), "labels must be 0 or 1"),
    (binary_auc, dict(labels=torch.tensor([0, 1, 0])), r"labels must have shape \(5,\)"),
    (binary_auc, dict(labels=torch.tensor([0, 1, 0, 1, 0]), eps=0.0), "eps must be a positive number"),
    (fscore, dict(labels=torch.ones(5, dtype=torch.long)), "no negative"),
    (precision_at_recall, dict(labels=torch.tensor([0, 1, 0, 1, 0]), recall=1.5),
     r"recall must be in \(0, 1\]"),
])
def test_bad_input_messages(build, kwargs, match):
    s = torch.randn(5, dtype=F64)
    kwargs = dict(kwargs)
    labels = kwargs.pop("labels")
    with pytest.raises(ValueError, match=match):
        build(s, labels, **kwargs)


def test_bad_scores():
    y = torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="scores contains NaN or Inf"):
        binary_auc(torch.tensor([0.0, float("nan"), 1.0, 2.0]), y)
    with pytest.raises(ValueError, match=r"scores must have shape \(n,\)"):
        binary_auc(torch.zeros(4, 2), y)
    with pytest.raises(ValueError, match=r"scores must have shape \(n, K\)"):
        multiclass_auc(torch.zeros(4), y)
    with pytest.raises(ValueError, match=r"P must have shape \(2, 2\)"):
        multiclass_auc(torch.zeros(4, 2), y, P=torch.ones(3, 3))
    with pytest.raises(TypeError, match="scores must be a floating tensor"):
        binary_auc(torch.arange(4), y)


def test_absent_classes_one_helper():
    from sparselp.formulations._base import absent_classes, describe_absent

    assert absent_classes(torch.tensor([1, 1, 1])) == [0]
    assert absent_classes(torch.tensor([0, 0])) == [1]
    assert absent_classes(torch.tensor([0, 1])) == []
    assert absent_classes(torch.tensor([0, 0, 3]), 4) == [1, 2]
    assert describe_absent([0]) == "negative (label 0) sample"
    assert describe_absent([1]) == "positive (label 1) sample"
    assert describe_absent([1, 2], 4) == "sample of class(es) [1, 2]"
