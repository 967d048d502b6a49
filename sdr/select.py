r"""Choose the reduced dimension by K-fold cross-validation against a target accuracy.

What is cross-validated
-----------------------
The samples of a pool (features ``X``, labels ``y``) are split by
:class:`sklearn.model_selection.KFold`. For every fold and every grid value ``r`` (a
*reduction ratio*, reduced rows / original rows):

1. the projection family is fitted on the training folds' samples only
   (``family.fit(X_train, y_train, scores_train)``: the SDR directions; a random sketch
   learns nothing);
2. the held-out fold is one minibatch: its LP is built (``build(test_idx)``, e.g. the
   F-score LP of the held-out samples' scores and labels) and solved in full;
3. a projection with about ``r * m`` rows is made for that minibatch
   (``family.make(r, X_test, y_test, mlp)``: the held-out samples are grouped in the SDR
   space fitted in step 1; a sketch is drawn with ``round(r * m)`` rows), the reduced LP
   is solved, and the score is recorded (default: cosine between the gradients of the
   optimal value with respect to the scores under the reduced and the full LP,
   :mod:`sdr.evaluation`). A reduced LP not solved to optimality (e.g. unbounded) scores 0.

The choice is the smallest grid ratio whose mean score over the folds reaches ``target``
(``None`` if none does). Ratios, not absolute row counts, are chosen so that the choice
transfers from a held-out fold to a minibatch of another size.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.model_selection import KFold

from .evaluation import MinibatchLP, compare_reduction, full_solution
from .projection import SDRGrouping
from .reduce import KeepRows, operator_matrix

__all__ = ["SketchFamily", "SDRFamily", "select_dimension"]


class SketchFamily:
    """Random sketches of a given class, seeded per call.

    Parameters
    ----------
    sketch_cls : callable
        ``sketch_cls(sketch_size, n_rows, generator=int)``, e.g. ``sketching.GaussianSketch``.
    seed : int
    keep_bounds : bool
        Keep the rows with a single nonzero (variable bounds written as rows) unchanged and
        sketch only the other rows (:class:`sdr.reduce.KeepRows`); the sketch then has
        ``round(ratio * m_other)`` rows. Otherwise all ``m`` rows are sketched to
        ``round(ratio * m)``.
    """

    def __init__(self, sketch_cls, seed: int = 0, name: str | None = None,
                 keep_bounds: bool = False):
        self.sketch_cls, self.seed, self.keep_bounds = sketch_cls, seed, keep_bounds
        self.name = name or getattr(sketch_cls, "__name__", "sketch")
        self._calls = 0
        self._keep = {}

    def fit(self, X, y, scores=None):
        return self

    def _bound_rows(self, mlp: MinibatchLP) -> torch.Tensor:
        if id(mlp) not in self._keep:
            lp = mlp.problem()
            A = operator_matrix(lp.A)
            if A.layout == torch.strided:
                nnz = (A != 0).sum(1)
            else:
                crow = A.to_sparse_csr().crow_indices()
                nnz = crow[1:] - crow[:-1]
            self._keep = {id(mlp): nnz == 1}
        return self._keep[id(mlp)]

    def make(self, ratio: float, X, y, mlp: MinibatchLP):
        m = int(mlp.rows_of_sample.numel())
        self._calls += 1
        seed = self.seed * 100003 + self._calls
        if not self.keep_bounds:
            return self.sketch_cls(max(1, int(round(ratio * m))), m, generator=seed)
        keep = self._bound_rows(mlp)
        m_other = int((~keep).sum())
        S = self.sketch_cls(max(1, int(round(ratio * m_other))), m_other, generator=seed)
        return KeepRows(S, keep)


class SDRFamily:
    """Group-averaging projections from an SDR estimator (see :mod:`sdr.projection`).

    ``fit`` fits the SDR estimator on the training samples (response: labels, or
    (label, score) when scores are given); ``make(ratio, X, y, mlp)`` forms
    ``round(ratio * n_samples)`` groups of the minibatch being reduced in that fitted
    space, as a deployed projection would (a minibatch always knows its own features),
    and returns the group-averaging matrix. With ratio 1 every sample is its own group and
    the LP is unchanged.
    """

    def __init__(self, estimator=None, stratify="auto", n_score_slices=5, random_state=0,
                 name=None):
        self.estimator, self.stratify, self.random_state = estimator, stratify, random_state
        self.n_score_slices = n_score_slices
        self.name = name or ("SDR-" + type(estimator).__name__ if estimator is not None
                             else "SDR-SlicedInverseRegression")

    def fit(self, X, y, scores=None):
        grouping = SDRGrouping(1, self.estimator, self.stratify, self.n_score_slices,
                               random_state=self.random_state).fit(X, y, scores)
        self.estimator_ = grouping.estimator_
        return self

    def make(self, ratio: float, X, y, mlp: MinibatchLP):
        n_groups = max(1, int(round(ratio * len(y))))
        grouping = SDRGrouping(n_groups, self.estimator_, self.stratify, self.n_score_slices,
                               prefit=True, random_state=self.random_state).fit(X, y)
        return grouping.projection(X, y, mlp.rows_of_sample, mlp.row_kind)


# Over 60 lines only through its public docstring; the body is about 43.
def select_dimension(X, y, build, family, grid, *, scores=None, target: float = 0.95,
                     n_splits: int = 5, metric: str = "grad_cos", shuffle: bool = True,
                     random_state=0, solver: str = "highs"):
    """Smallest reduction ratio whose mean K-fold score meets ``target``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Features of the sample pool.
    y : array of shape (n_samples,)
        Labels (or response).
    build : callable
        ``build(idx) -> MinibatchLP`` for the samples ``idx`` (an int array).
    family : SketchFamily or SDRFamily
        Anything with ``fit(X, y)`` and ``make(ratio, X, y, mlp) -> projection``.
    grid : sequence of float
        Reduction ratios in (0, 1], tried in increasing order.
    scores : array of shape (n_samples,), optional
        The scorer's outputs, handed to ``family.fit`` with the training samples (the SDR
        response then is (label, score); see :meth:`sdr.projection.SDRGrouping.fit`).
    target : float
        Required mean score.
    metric : {"grad_cos"} or any key of :func:`sdr.evaluation.compare_reduction` where
        larger is better.

    Returns
    -------
    choice : float or None
        Smallest ratio of ``grid`` whose mean score is ``>= target``.
    table : list of dict
        One row per ratio: ``ratio``, ``mean``, ``std``, ``min``, ``n_failed`` (folds where
        the reduced LP was not optimal), ``mean_k``, ``mean_actual_ratio``, ``meets`` and
        ``fold<i>`` scores; flat, ready for ``csv.DictWriter``.
    """
    grid = sorted(float(r) for r in grid)
    if not grid or grid[0] <= 0 or grid[-1] > 1:
        raise ValueError(f"grid must hold reduction ratios in (0, 1], got {grid}")
    if not 0 < target <= 1:
        raise ValueError(f"target must lie in (0, 1], got {target}")
    X, y = np.asarray(X), np.asarray(y)
    scores = None if scores is None else np.asarray(scores)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same number of samples, got {X.shape[0]} "
                         f"and {y.shape[0]}")
    kf = KFold(n_splits=n_splits, shuffle=shuffle,
               random_state=random_state if shuffle else None)
    per_fold = {r: [] for r in grid}
    extra = {r: {"failed": 0, "k": [], "ratio": []} for r in grid}
    for train, test in kf.split(X):
        family.fit(X[train], y[train], None if scores is None else scores[train])
        mlp = build(test)
        full = full_solution(mlp, solver)
        for r in grid:
            S = family.make(r, X[test], y[test], mlp)
            res = compare_reduction(mlp, S, solver, full)
            val = res[metric]
            if res["status"] != "optimal" or not math.isfinite(val):
                extra[r]["failed"] += 1
                val = 0.0
            per_fold[r].append(val)
            extra[r]["k"].append(res["k"])
            extra[r]["ratio"].append(res["ratio"])
    table, choice = [], None
    for r in grid:
        s = np.asarray(per_fold[r])
        row = dict(ratio=r, mean=float(s.mean()), std=float(s.std()), min=float(s.min()),
                   n_failed=extra[r]["failed"], mean_k=float(np.mean(extra[r]["k"])),
                   mean_actual_ratio=float(np.mean(extra[r]["ratio"])),
                   meets=bool(s.mean() >= target))
        row.update({f"fold{i}": float(v) for i, v in enumerate(s)})
        table.append(row)
        if choice is None and row["meets"]:
            choice = r
    return choice, table
