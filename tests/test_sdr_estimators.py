"""SDR estimators: scikit-learn contract, LDA equivalence, recovery of planted subspaces."""
import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.utils.estimator_checks import parametrize_with_checks

from sdr._base import slice_labels
from sdr.estimators import (DirectionalRegression, SlicedAverageVarianceEstimation,
                            SlicedInverseRegression)

ESTIMATORS = [SlicedInverseRegression, SlicedAverageVarianceEstimation, DirectionalRegression]


@parametrize_with_checks([E() for E in ESTIMATORS])
def test_sklearn_contract(estimator, check):
    # No expected-failure tags are needed: every check passes.
    check(estimator)


def _planted(seed=0, n=3000, p=6):
    """Correlated Gaussian X and a 2-D planted subspace span(B)."""
    rng = np.random.default_rng(seed)
    L = np.eye(p) + 0.3 * rng.standard_normal((p, p))
    X = rng.standard_normal((n, p)) @ L.T
    B = np.zeros((p, 2))
    B[0, 0] = B[1, 0] = 1.0
    B[2, 1], B[3, 1] = 1.0, -1.0
    return rng, X, B


def _max_angle_deg(est, B):
    return float(np.degrees(subspace_angles(est.components_.T, B)).max())


def test_sir_binary_equals_lda():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((800, 5)) @ rng.standard_normal((5, 5))
    y = (X @ rng.standard_normal(5) + rng.standard_normal(800) > 0).astype(int)
    sir = SlicedInverseRegression(n_components=1).fit(X, y).components_[0]
    lda = LinearDiscriminantAnalysis().fit(X, y).coef_[0]
    assert abs(sir @ lda) / np.linalg.norm(lda) > 0.99


@pytest.mark.parametrize("E", ESTIMATORS)
def test_recovers_monotone_two_index_model(E):
    # Li (1991)'s model: y = u / (0.5 + (w + 1.5)^2) + noise, u, w the planted directions.
    rng, X, B = _planted()
    u, w = X @ B[:, 0], X @ B[:, 1]
    y = u / (0.5 + (w + 1.5) ** 2) + 0.1 * rng.standard_normal(u.size)
    # A random 2-D subspace of R^6 is typically 60-90 degrees off; 15 allows n = 3000 noise.
    assert _max_angle_deg(E(n_components=2).fit(X, y), B) < 15.0


@pytest.mark.parametrize("E", [SlicedAverageVarianceEstimation, DirectionalRegression])
def test_second_moment_methods_recover_symmetric_link(E):
    rng, X, B = _planted(2)
    y = (X @ B[:, :1])[:, 0] ** 2 + 0.1 * rng.standard_normal(X.shape[0])
    assert _max_angle_deg(E(n_components=1).fit(X, y), B[:, :1]) < 10.0


def test_sir_misses_symmetric_link():
    # The documented blind spot: E[x | y] carries no information for y = (b^T x)^2.
    rng, X, B = _planted(2)
    y = (X @ B[:, :1])[:, 0] ** 2 + 0.1 * rng.standard_normal(X.shape[0])
    assert _max_angle_deg(SlicedInverseRegression(n_components=1).fit(X, y), B[:, :1]) > 30.0


def test_directional_regression_categorical_response():
    # Four classes: the sign of u and whether |w| > 1 (a spread difference SIR cannot see).
    rng, X, B = _planted(3)
    u, w = X @ B[:, 0], X @ B[:, 1]
    y = (u > 0).astype(int) + 2 * (np.abs(w) > 1)
    dr = DirectionalRegression(n_components=2).fit(X, y)
    assert dr.n_slices_ == 4
    assert _max_angle_deg(dr, B) < 10.0


def test_string_labels_are_classes():
    rng, X, B = _planted(4, n=600)
    y = np.where(X @ B[:, 0] > 0, "pos", "neg")
    est = SlicedInverseRegression(n_components=1).fit(X, y)
    assert est.n_slices_ == 2


def test_transform_and_components_conventions():
    rng, X, _ = _planted(5, n=400)
    y = X[:, 0] + 0.1 * rng.standard_normal(400)
    est = SlicedInverseRegression(n_components=3).fit(X, y)
    assert est.components_.shape == (3, X.shape[1])
    np.testing.assert_allclose(np.linalg.norm(est.components_, axis=1), 1.0)
    np.testing.assert_allclose(est.transform(X), (X - est.mean_) @ est.components_.T)
    assert np.all(np.diff(est.eigenvalues_) <= 1e-12)
    # Sign convention: the largest entry of every direction is positive.
    assert np.all(est.components_[np.arange(3), np.abs(est.components_).argmax(1)] > 0)


@pytest.mark.parametrize("E", ESTIMATORS)
def test_torch_input_matches_numpy(E):
    import torch
    rng, X, B = _planted(7, n=500)
    y = (X @ B[:, 0] > 0).astype(int) + 2 * (np.abs(X @ B[:, 1]) > 1)
    ref = E(n_components=2).fit(X, y)
    est = E(n_components=2).fit(torch.from_numpy(X), torch.from_numpy(y))
    assert isinstance(est.components_, torch.Tensor) and est.n_features_in_ == X.shape[1]
    np.testing.assert_allclose(est.components_.numpy(), ref.components_, atol=1e-8)
    np.testing.assert_allclose(est.eigenvalues_.numpy(), ref.eigenvalues_, atol=1e-8)
    Zt = est.transform(torch.from_numpy(X))
    assert isinstance(Zt, torch.Tensor)
    np.testing.assert_allclose(Zt.numpy(), ref.transform(X), atol=1e-8)
    np.testing.assert_allclose(est.transform(X), ref.transform(X), atol=1e-8)
    with pytest.raises(ValueError, match="n_components=7 must be at most n_features=6"):
        E(n_components=7).fit(torch.from_numpy(X), y)
    with pytest.raises(ValueError, match=r"y must have shape \(500,\)"):
        E().fit(torch.from_numpy(X), y[:3])


def test_collinear_and_constant_features_stay_finite():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 2))
    X = np.c_[x, x[:, :1] * 2.0, np.ones(300)]  # a copied column and a constant one
    y = x[:, 0] + 0.1 * rng.standard_normal(300)
    for E in ESTIMATORS:
        est = E(n_components=2).fit(X, y)
        assert np.isfinite(est.components_).all()
        assert np.isfinite(est.transform(X)).all()


def test_slice_labels():
    y = np.linspace(0.0, 1.0, 103)[::-1].copy()
    lab = slice_labels(y, 10)
    assert set(np.bincount(lab)) <= {10, 11}
    assert np.all(np.diff(lab[np.argsort(y)]) >= 0)  # slices follow the order of y
    np.testing.assert_array_equal(slice_labels(np.array([3, 1, 3, 2]), 10), [2, 0, 2, 1])
    # A float response with few distinct values is sliced by value under "auto".
    np.testing.assert_array_equal(slice_labels(np.array([0.5, 1.5, 0.5]), 10), [0, 1, 0])


def test_bad_input_messages():
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = X[:, 0]
    with pytest.raises(ValueError, match="n_components=4 must be at most n_features=3"):
        SlicedInverseRegression(n_components=4).fit(X, y)
    with pytest.raises(ValueError, match="n_slices"):
        SlicedInverseRegression(n_slices=1).fit(X, y)
    with pytest.raises(ValueError, match="requires y"):
        SlicedInverseRegression().fit(X, None)
    with pytest.raises(ValueError, match="NaN"):
        SlicedInverseRegression().fit(np.r_[X[:-1], [[np.nan, 0, 0]]], y)
