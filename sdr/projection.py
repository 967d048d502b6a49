r"""Row projections of a minibatch LP learned by sufficient dimension reduction.

The inequality rows of a minibatch LP (F-score, precision at recall) belong to samples:
row ``r`` is a constraint on sample ``rows_of_sample[r]`` (``-1`` for rows tied to no
sample, such as a recall constraint summing over all samples). Samples that look alike to
the response look alike to the LP: their rows are near copies of one another with nearby
right-hand sides. The projection built here therefore

1. fits an SDR estimator (default :class:`~sdr.estimators.SlicedInverseRegression`) on the
   minibatch features ``X`` and labels ``y``, and maps the samples to the reduced space
   ``Z = estimator.transform(X)`` (``n_components`` coordinates);
2. groups the samples in that space, separately within each stratum (each class for a
   categorical ``y``), ``n_groups`` groups in all, shared out in proportion to the strata
   sizes: equal-count slices of a one-dimensional SDR space, k-means in more dimensions;
3. replaces the rows of one *kind* (``row_kind``, e.g. "hinge row of a positive") whose
   samples fall in one group by their average. Rows tied to no sample are kept unchanged.

The result is the nonnegative group-averaging matrix :math:`S \in \mathbb{R}^{k \times m}`,
:math:`S_{gr} = 1/|g|` for row ``r`` in group ``g``. Each reduced row is implied by the rows
it averages, so the reduced LP is a relaxation of the full one (its value is a lower bound;
see :mod:`sdr.reduce`). With ``n_groups`` at least the number of samples, ``S`` is a
permutation of the rows and the LP is unchanged.

Out of sample (cross-validation, or a new minibatch), :class:`SDRGrouping` keeps the SDR
estimator and the slices or k-means centres fitted on training samples and assigns new
samples to the slice or nearest centre of their stratum.

References
----------
.. [1] K.-C. Li, "Sliced inverse regression for dimension reduction", JASA 86 (1991).
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans

from sparselp.operators import coo_tensor

from ._base import slice_labels
from .estimators import SlicedInverseRegression

__all__ = ["group_average_matrix", "SDRGrouping", "sdr_projection"]


def _as_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def group_average_matrix(groups, rows_of_sample, row_kind=None, dtype=torch.float64,
                         device=None) -> torch.Tensor:
    r"""Sparse averaging matrix of the rows whose samples share a group and a row kind.

    Parameters
    ----------
    groups : int array of shape (n_samples,)
        Group of every sample.
    rows_of_sample : int array of shape (m,)
        Sample of every LP row, ``-1`` for rows tied to no sample (kept unchanged).
    row_kind : int array of shape (m,), optional
        Family of every row; only rows of one family are averaged together. Default: the
        rank of the row among the rows of its sample (first row of a sample is kind 0, ...).

    Returns
    -------
    S : sparse COO tensor of shape (k, m)
        ``S[g, r] = 1 / |g|``; reduced rows are ordered by first appearance.
    """
    groups = _as_numpy(groups).astype(np.int64).reshape(-1)
    ros = _as_numpy(rows_of_sample).astype(np.int64).reshape(-1)
    m = ros.size
    if m == 0:
        raise ValueError("rows_of_sample is empty: the LP has no rows to group")
    if ros.max() >= groups.size or ros.min() < -1:
        raise ValueError(f"rows_of_sample must hold sample indices in [-1, {groups.size - 1}] "
                         f"(groups has {groups.size} samples), got range "
                         f"[{ros.min()}, {ros.max()}]")
    if row_kind is None:
        # Rank of each row among its sample's rows (stable order of appearance).
        order = np.argsort(ros, kind="stable")
        sorted_ros = ros[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_ros)) + 1]
        rank = np.arange(m) - np.repeat(starts, np.diff(np.r_[starts, m]))
        kind = np.empty(m, dtype=np.int64)
        kind[order] = rank
    else:
        kind = _as_numpy(row_kind).astype(np.int64).reshape(-1)
        if kind.size != m:
            raise ValueError(f"row_kind must have shape ({m},) like rows_of_sample, got "
                             f"({kind.size},)")
    g = np.where(ros >= 0, groups[np.clip(ros, 0, None)], -1)
    # Free rows (sample -1) each get a key of their own.
    key = np.stack([np.where(ros >= 0, kind, -1), np.where(ros >= 0, g, np.arange(m))], 1)
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    rank_of_key = np.argsort(np.argsort(first))  # order reduced rows by first appearance
    r_idx = rank_of_key[inv]
    counts = np.bincount(r_idx)
    vals = 1.0 / counts[r_idx]
    idx = torch.from_numpy(np.stack([r_idx, np.arange(m)]))
    return coo_tensor(idx, torch.from_numpy(vals), (counts.size, m)).coalesce().to(
        device=device, dtype=dtype)


def _apportion(total: int, sizes: np.ndarray) -> np.ndarray:
    """Share ``total`` groups out in proportion to ``sizes`` (largest remainders), with at
    least one and at most ``sizes[i]`` groups per stratum."""
    quota = total * sizes / sizes.sum()
    share = np.floor(quota).astype(int)
    for i in np.argsort(share - quota)[: max(0, total - share.sum())]:
        share[i] += 1
    return np.clip(share, 1, sizes)


class SDRGrouping:
    """Groups samples in an SDR space (slices or k-means), per stratum; fit once, apply anywhere.

    Parameters
    ----------
    n_groups : int
        Total number of groups over all strata (at least one per stratum, at most the
        stratum's number of training samples).
    estimator : sklearn transformer, optional
        SDR estimator (cloned); default ``SlicedInverseRegression(n_components=1)``.
    stratify : {"auto", True, False}
        Group within each class of ``y``. ``"auto"``: when ``y`` is not of a floating dtype.
    n_score_slices : int
        Score quantile slices per class when ``fit`` is given scores.
    prefit : bool
        ``estimator`` is already fitted: ``fit`` only forms the groups in its space (how
        cross-validation uses directions learned on other samples to reduce a minibatch).
    random_state : int, optional
        Seed of k-means.

    Attributes
    ----------
    estimator_ : fitted SDR estimator
    strata_ : ndarray of stratum values
    cells_ : list of (str, ndarray)
        Groups of every stratum: ``("edges", cut points)`` for a 1-D SDR space (equal-count
        slices), ``("centers", k-means centres of shape (k_s, n_components))`` otherwise.
    offsets_ : list of int
        Global group index of the first group of every stratum.
    """

    def __init__(self, n_groups, estimator=None, stratify="auto", n_score_slices=5,
                 prefit=False, random_state=None):
        self.n_groups = n_groups
        self.prefit = prefit
        self.n_score_slices = n_score_slices
        self.estimator = estimator
        self.stratify = stratify
        self.random_state = random_state

    def _joint(self, y, scores):
        """Slice labels of the response (label, score): class times score quantile."""
        scores = _as_numpy(scores).reshape(-1)
        if scores.shape != y.shape:
            raise ValueError(f"scores must have shape {y.shape} like y, got {scores.shape}")
        strata = self._strata(y)
        joint = np.zeros(y.shape[0], dtype=np.int64)
        for i, s in enumerate(np.unique(strata)):
            idx = np.flatnonzero(strata == s)
            q = slice_labels(scores[idx], self.n_score_slices, categorical=False)
            joint[idx] = i * self.n_score_slices + q
        return joint

    def _strata(self, y):
        y = _as_numpy(y).reshape(-1)
        strat = self.stratify
        if strat == "auto":
            strat = not np.issubdtype(y.dtype, np.floating)
        return y if strat else np.zeros(y.shape, dtype=np.int64)

    def fit(self, X, y, scores=None):
        """Fit the SDR estimator and the groups in its space, per stratum.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : array of shape (n_samples,)
        scores : array of shape (n_samples,), optional
            The scorer's outputs. When given, the SDR response is the pair (label, score):
            one slice per class and score quantile within the class (``n_score_slices``
            of them), so the estimated subspace is that of the LP's data (scores and
            labels) given the features, not of the labels alone.
        """
        if not (isinstance(self.n_groups, (int, np.integer)) and self.n_groups >= 1):
            raise ValueError(f"n_groups must be a positive integer, got {self.n_groups!r}")
        X, y = _as_numpy(X).astype(np.float64), _as_numpy(y).reshape(-1)
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise ValueError(f"X must have shape (n_samples, n_features) with n_samples = "
                             f"len(y) = {y.shape[0]}, got shape {X.shape}")
        if self.prefit:
            if self.estimator is None:
                raise ValueError("prefit=True needs a fitted estimator")
            self.estimator_ = self.estimator
        else:
            est = clone(self.estimator) if self.estimator is not None else \
                SlicedInverseRegression(n_components=1)
            self.estimator_ = est.fit(X, y if scores is None else self._joint(y, scores))
        Z = self.estimator_.transform(X)
        strata = self._strata(y)
        self.strata_, sizes = np.unique(strata, return_counts=True)
        share = _apportion(self.n_groups, sizes)
        self.cells_, self.offsets_, off = [], [], 0
        for s, k in zip(self.strata_, share):
            cells = self._cells(Z[strata == s], int(k))
            self.cells_.append(cells)
            self.offsets_.append(off)
            off += cells[1].shape[0] + 1 if cells[0] == "edges" else cells[1].shape[0]
        self.n_groups_ = off
        return self

    def _cells(self, Zs: np.ndarray, k: int):
        """Groups of one stratum: quantile cut points in 1-D, k-means centres otherwise.

        In one dimension, equal-count slices (as SIR slices a response) give groups of
        equal size, which k-means does not; cut points sit midway between the last
        training sample of a slice and the first of the next.
        """
        if Zs.shape[1] == 1:
            z = np.sort(Zs[:, 0])
            bounds = np.cumsum([len(c) for c in np.array_split(z, min(k, z.size))])[:-1]
            return ("edges", 0.5 * (z[bounds - 1] + z[bounds]))
        if k >= Zs.shape[0]:
            return ("centers", Zs.copy())
        km = KMeans(n_clusters=k, n_init=1, random_state=self.random_state)
        return ("centers", km.fit(Zs).cluster_centers_)

    def assign(self, X, y) -> np.ndarray:
        """Group of every sample: its slice (1-D) or nearest centre within its stratum.

        Samples of a stratum unseen in training go to the first stratum's groups.
        """
        X, y = _as_numpy(X).astype(np.float64), _as_numpy(y).reshape(-1)
        Z = self.estimator_.transform(X)
        strata = self._strata(y)
        out = np.empty(Z.shape[0], dtype=np.int64)
        for s in np.unique(strata):
            mask = strata == s
            hit = np.flatnonzero(self.strata_ == s)
            j = hit[0] if hit.size else 0
            (kind, C), off = self.cells_[j], self.offsets_[j]
            if kind == "edges":
                out[mask] = off + np.searchsorted(C, Z[mask, 0], side="right")
            else:
                d = ((Z[mask, None, :] - C[None, :, :]) ** 2).sum(-1)
                out[mask] = off + d.argmin(1)
        return out

    def projection(self, X, y, rows_of_sample, row_kind=None, dtype=torch.float64,
                   device=None) -> torch.Tensor:
        """Sparse group-averaging matrix (k, m) of a minibatch; see :func:`group_average_matrix`."""
        return group_average_matrix(self.assign(X, y), rows_of_sample, row_kind, dtype, device)


def sdr_projection(X, y, rows_of_sample, n_groups, estimator=None, row_kind=None,
                   scores=None, stratify="auto", n_score_slices=5, random_state=None,
                   dtype=torch.float64, device=None) -> torch.Tensor:
    r"""Group-averaging projection of a minibatch LP's rows learned by SDR on the minibatch.

    Parameters
    ----------
    X : array or tensor of shape (n_samples, n_features)
        Features of the minibatch (the backbone's input or embedding).
    y : array or tensor of shape (n_samples,)
        Labels (categorical: groups are formed within each class) or a continuous response.
    rows_of_sample : int array of shape (m,)
        Sample of every inequality row of the LP, ``-1`` for rows tied to no sample.
    n_groups : int
        Number of sample groups (all strata together); the reduced LP has about
        ``n_groups * (rows per sample)`` rows plus the free rows.
    estimator : sklearn transformer, optional
        Default ``SlicedInverseRegression(n_components=1)``.
    row_kind : int array of shape (m,), optional
        Family of every row (see :func:`group_average_matrix`).
    scores : array of shape (n_samples,), optional
        The scorer's outputs; if given, the SDR response is (label, score quantile), see
        :meth:`SDRGrouping.fit`. The LP depends on the minibatch only through scores and
        labels, so this is the response whose central subspace matters.
    stratify, n_score_slices, random_state : see :class:`SDRGrouping`.

    Returns
    -------
    S : sparse COO tensor of shape (k, m), nonnegative, rows summing to one

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((40, 3)); y = (X[:, 0] > 0).astype(int)
    >>> S = sdr_projection(X, y, np.arange(40), n_groups=8, random_state=0)
    >>> tuple(S.shape)
    (8, 40)
    """
    grouping = SDRGrouping(n_groups, estimator, stratify, n_score_slices,
                           random_state=random_state).fit(X, y, scores)
    return grouping.projection(X, y, rows_of_sample, row_kind, dtype, device)
