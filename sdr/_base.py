r"""Shared machinery of the sliced SDR estimators: whitening, slicing, eigen-decomposition.

Every estimator here finds a basis of the central subspace
:math:`\mathcal{S}_{Y|X}`, the smallest subspace with :math:`Y \perp X \mid P_{\mathcal{S}} X`,
in the same three steps:

1. **Whiten.** With the sample mean :math:`\mu` and covariance :math:`\Sigma`, set
   :math:`Z = (X - \mu)\,\Sigma_\delta^{-1/2}`, where
   :math:`\Sigma_\delta = \Sigma + \delta\,\tfrac{\operatorname{tr}\Sigma}{p} I` is the covariance
   with a small relative ridge :math:`\delta` (parameter ``ridge``). The inverse square root comes
   from ``eigh`` of the symmetric :math:`\Sigma_\delta`, which stays well defined for collinear
   or constant features (their eigenvalues are lifted to :math:`\delta\,\operatorname{tr}\Sigma/p`
   instead of producing ``inf``), where a plain Cholesky factor would fail.
2. **Slice.** Split the samples by the response: one slice per class for a categorical
   response, or ``n_slices`` slices of (nearly) equal size by the order of ``y`` for a
   continuous one.
3. **Eigen-decompose** a method-specific symmetric kernel matrix :math:`M` built from the
   slice moments of :math:`Z`; the leading eigenvectors :math:`\eta_j` map back to directions
   :math:`\beta_j = \Sigma_\delta^{-1/2}\eta_j` in the original coordinates.

**Torch input.** ``fit`` with a torch tensor ``X`` runs the same computation in torch, in
float64 on ``X.device`` (a GPU included); the fitted attributes are then tensors and
``transform`` of a tensor returns a tensor. Only the slicing of ``y`` happens on the CPU.

``components_`` holds the :math:`\beta_j` as rows normalised to unit length, with the sign
fixed so that the entry of largest magnitude is positive (as ``svd_flip`` does for PCA), so
that results are deterministic. ``transform`` returns :math:`(X - \mu)\,\beta`.

References
----------
.. [1] K.-C. Li, "Sliced inverse regression for dimension reduction", JASA 86 (1991).
.. [2] R. D. Cook and S. Weisberg, "Discussion of Li (1991)", JASA 86 (1991) (SAVE).
.. [3] B. Li and S. Wang, "On directional regression for dimension reduction", JASA 102 (2007).
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["SlicedEstimatorBase", "slice_labels"]


def slice_labels(y: np.ndarray, n_slices: int, categorical: bool | str = "auto") -> np.ndarray:
    """Slice index of every sample.

    Parameters
    ----------
    y : array of shape (n_samples,)
        Response.
    n_slices : int
        Number of slices for a continuous response.
    categorical : {"auto", True, False}
        ``True``: one slice per distinct value of ``y`` (classes). ``False``: quantile slices.
        ``"auto"``: classes when ``y`` is not of a floating dtype or has at most ``n_slices``
        distinct values, quantile slices otherwise.

    Returns
    -------
    labels : int array of shape (n_samples,)
        Slice of every sample, in ``0 .. h - 1``.
    """
    y = np.asarray(y)
    classes, inverse = np.unique(y, return_inverse=True)
    if categorical == "auto":
        categorical = (not np.issubdtype(y.dtype, np.floating)) or classes.size <= n_slices
    if categorical:
        return inverse.reshape(-1)
    # Quantile slices: sort by y (stable, so ties keep their input order) and cut the order
    # into n_slices runs of nearly equal length, as in Li (1991).
    order = np.argsort(y, kind="stable")
    labels = np.empty(y.shape[0], dtype=np.int64)
    for h, chunk in enumerate(np.array_split(order, n_slices)):
        labels[chunk] = h
    return labels


class SlicedEstimatorBase(TransformerMixin, BaseEstimator):
    """Base class: whitening, slicing and the eigen-decomposition of a kernel matrix.

    Subclasses implement ``_kernel(Z, labels) -> M`` (a symmetric ``(p, p)`` matrix).
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "n_slices": [Interval(Integral, 2, None, closed="left")],
        "categorical": [StrOptions({"auto"}), "boolean"],
        "ridge": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, n_components=None, *, n_slices=10, categorical="auto", ridge=1e-8):
        self.n_components = n_components
        self.n_slices = n_slices
        self.categorical = categorical
        self.ridge = ridge

    def fit(self, X, y):
        """Estimate the directions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Continuous or categorical response (any dtype ``np.unique`` can sort).

        Returns
        -------
        self
        """
        self._validate_params()
        if isinstance(X, torch.Tensor):
            return self._fit_torch(X, y)
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2,
                             y_numeric=False)
        n, p = X.shape
        k = p if self.n_components is None else self.n_components
        if k > p:
            raise ValueError(f"n_components={k} must be at most n_features={p}")
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        cov = Xc.T @ Xc / n
        lam, U = np.linalg.eigh(cov)
        # Relative ridge, with a floor so that an all-constant X still gives finite numbers.
        shift = self.ridge * max(np.trace(cov) / p, np.finfo(np.float64).tiny) + np.finfo(
            np.float64).tiny
        inv_sqrt = (U / np.sqrt(np.clip(lam, 0.0, None) + shift)) @ U.T
        Z = Xc @ inv_sqrt
        labels = slice_labels(y, self.n_slices, self.categorical)
        M = self._kernel(*_slice_moments(Z, labels), np.eye(p))
        M = 0.5 * (M + M.T)  # symmetrise rounding before eigh
        evals, evecs = np.linalg.eigh(M)
        top = np.argsort(evals)[::-1][:k]
        beta = inv_sqrt @ evecs[:, top]  # (p, k) directions in X coordinates
        norms = np.linalg.norm(beta, axis=0)
        beta = beta / np.where(norms > 0, norms, 1.0)
        signs = np.sign(beta[np.argmax(np.abs(beta), axis=0), np.arange(k)])
        beta = beta * np.where(signs == 0, 1.0, signs)
        self.components_ = beta.T
        self.eigenvalues_ = evals[top]
        self.n_slices_ = int(labels.max()) + 1
        return self

    def transform(self, X):
        """Project onto the directions: ``(X - mean_) @ components_.T``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        if isinstance(X, torch.Tensor):
            if X.dim() != 2 or X.shape[1] != self.n_features_in_:
                raise ValueError(f"X must have shape (n_samples, {self.n_features_in_}), got "
                                 f"{tuple(X.shape)}")
            mean, comps = (torch.as_tensor(t, device=X.device) for t in (self.mean_,
                                                                         self.components_))
            return (X.to(comps.dtype) - mean) @ comps.T
        X = validate_data(self, X, dtype=np.float64, reset=False)
        if isinstance(self.components_, torch.Tensor):
            return (X - self.mean_.cpu().numpy()) @ self.components_.cpu().numpy().T
        return (X - self.mean_) @ self.components_.T

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        name = type(self).__name__.lower()
        return np.asarray([f"{name}{i}" for i in range(self.components_.shape[0])], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _fit_torch(self, X: torch.Tensor, y):
        """The same estimate in torch, on ``X.device``, in float64; fitted attributes are
        torch tensors. ``y`` may be a tensor or an array (it is sliced on the CPU)."""
        if X.dim() != 2 or X.shape[0] < 2:
            raise ValueError(f"X must have shape (n_samples >= 2, n_features), got "
                             f"{tuple(X.shape)}")
        y_np = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        if y_np.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y_np.shape}")
        X = X.detach().to(torch.float64)
        if not torch.isfinite(X).all():
            raise ValueError("X contains NaN or Inf entries")
        n, p = X.shape
        k = p if self.n_components is None else self.n_components
        if k > p:
            raise ValueError(f"n_components={k} must be at most n_features={p}")
        self.n_features_in_ = p
        self.mean_ = X.mean(0)
        Xc = X - self.mean_
        cov = Xc.T @ Xc / n
        lam, U = torch.linalg.eigh(cov)
        tiny = torch.finfo(torch.float64).tiny
        shift = self.ridge * max(float(torch.trace(cov)) / p, tiny) + tiny
        inv_sqrt = (U / torch.sqrt(lam.clamp_min(0.0) + shift)) @ U.T
        Z = Xc @ inv_sqrt
        labels = torch.as_tensor(slice_labels(y_np, self.n_slices, self.categorical),
                                 device=X.device)
        eye = torch.eye(p, dtype=X.dtype, device=X.device)
        M = self._kernel(*_slice_moments(Z, labels), eye)
        evals, evecs = torch.linalg.eigh(0.5 * (M + M.T))
        top = torch.argsort(evals, descending=True)[:k]
        beta = inv_sqrt @ evecs[:, top]
        beta = beta / beta.norm(dim=0).clamp_min(tiny)
        signs = torch.sign(beta[beta.abs().argmax(0), torch.arange(k, device=X.device)])
        beta = beta * torch.where(signs == 0, torch.ones_like(signs), signs)
        self.components_ = beta.T.contiguous()
        self.eigenvalues_ = evals[top]
        self.n_slices_ = int(labels.max()) + 1
        return self

    def _kernel(self, props, means, seconds, eye):  # pragma: no cover
        """Kernel matrix (p, p) from slice proportions (h,), means (h, p), second moments
        (h, p, p) and the identity; numpy or torch alike."""
        raise NotImplementedError


def _slice_moments(Z, labels):
    """Slice proportions (h,), means (h, p) and second moments E[Z Z^T | h] (h, p, p).

    Works for numpy arrays and torch tensors alike (empty slices are skipped).
    """
    tt = isinstance(Z, torch.Tensor)
    uniq = torch.unique(labels) if tt else np.unique(labels)
    parts = [Z[labels == j] for j in uniq]
    counts = [P.shape[0] for P in parts]
    stack = torch.stack if tt else np.stack
    props = (torch.tensor(counts, dtype=Z.dtype, device=Z.device) if tt
             else np.asarray(counts, dtype=np.float64)) / Z.shape[0]
    means = stack([P.mean(0) for P in parts])
    seconds = stack([P.T @ P / c for P, c in zip(parts, counts)])
    return props, means, seconds
