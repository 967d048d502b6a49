r"""The LPs of the accuracy-versus-reduction study, with the sample behind every row.

Each builder returns a function ``build(idx) -> sdr.evaluation.MinibatchLP`` for a subset
``idx`` of a sample pool, with the LP's data written as differentiable functions of the
parameters (scores, or the right-hand side) so that the gradient of the optimal value
with respect to them follows by autograd (:mod:`sdr.evaluation`).

Minibatch LPs: the F-score (Charnes-Cooper) and precision-at-recall LPs of
:mod:`sparselp.formulations`, built from the scores of a fixed linear scorer and the
labels of the samples ``idx``; the map from rows to samples follows their documented row
layout.

Random dense LP: :math:`\min c^T x` s.t. :math:`a_i^T x \le b_i` with Gaussian
:math:`a_i, c` and :math:`b_i \sim 1 + U(0, 1)`, so ``x = 0`` is interior; with
``m >> n`` rows the polytope is bounded with overwhelming probability (Wendel). Its
"samples" are its rows: features are the polar points :math:`a_i / b_i` and the response is
their alignment :math:`-c^T a_i / (\|c\| b_i)` with the objective (active rows have the
largest), and the parameters are ``b`` (gradient :math:`-v`).
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sdr.evaluation import MinibatchLP
from sparselp.formulations import fscore_data, precision_at_recall_data

__all__ = ["precision_at_recall_builder", "fscore_builder", "random_lp_builder",
           "dataset_pool"]

_DT = torch.float64


def _check_binary(labels: np.ndarray):
    pos = np.flatnonzero(labels == 1)
    neg = np.flatnonzero(labels != 1)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("the minibatch needs both positives and negatives")
    return pos, neg


def precision_at_recall_builder(scores: np.ndarray, labels: np.ndarray, recall: float = 0.8):
    """``build(idx)``: :func:`sparselp.formulations.precision_at_recall` of the samples ``idx``.

    Its rows: two per positive (in the order of the positives), two per negative, then the
    recall row (tied to no sample). Row kind: the parity of the row (hinge or sign row).
    """

    def build(idx) -> MinibatchLP:
        lab = labels[idx]
        pos, neg = _check_binary(lab)
        ros = np.r_[np.repeat(pos, 2), np.repeat(neg, 2), -1]
        kind = np.r_[np.tile([0, 1], lab.size), -1]
        y = torch.as_tensor(lab)
        return MinibatchLP(lambda s: precision_at_recall_data(s, y, recall),
                           torch.as_tensor(scores[idx], dtype=_DT), torch.as_tensor(ros),
                           torch.as_tensor(kind))

    return build


def fscore_builder(scores: np.ndarray, labels: np.ndarray):
    """``build(idx)``: :func:`sparselp.formulations.fscore` of the samples ``idx``.

    Its rows: ``2k`` and ``2k + 1`` belong to sample ``k``, the last row (``-t <= 0``) to
    none. Row kind: the parity of the row.
    """

    def build(idx) -> MinibatchLP:
        lab = labels[idx]
        _check_binary(lab)
        ros = np.r_[np.repeat(np.arange(lab.size), 2), -1]
        kind = np.r_[np.tile([0, 1], lab.size), -1]
        y = torch.as_tensor(lab)
        return MinibatchLP(lambda s: fscore_data(s, y), torch.as_tensor(scores[idx], dtype=_DT),
                           torch.as_tensor(ros), torch.as_tensor(kind))

    return build


def random_lp_builder(m: int, n: int, seed: int = 0):
    """``(X, y, build)`` of a random dense LP with ``m`` rows (the pool) and ``n`` columns."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, n, generator=g, dtype=_DT)
    b = 1.0 + torch.rand(m, generator=g, dtype=_DT)
    c = torch.randn(n, generator=g, dtype=_DT)
    X = (A / b[:, None]).numpy()
    y = (-(A @ c) / (c.norm() * b)).numpy()

    def build(idx) -> MinibatchLP:
        idx_t = torch.as_tensor(np.asarray(idx))
        Ai = A.index_select(0, idx_t)

        def fn(theta):
            return dict(c=c, A=Ai, b=theta)

        return MinibatchLP(fn, b.index_select(0, idx_t), torch.arange(idx_t.numel()), None)

    return X, y, build


def dataset_pool(name: str, seed: int = 0):
    """Features, binary labels and fixed linear scores of a held-out pool.

    A logistic regression fitted on one half of the data (standardised) is the fixed
    scorer; the other half is the pool the LPs are built from.
    ``digits``: label 1 for digits 5-9; ``breast_cancer``: label 1 for malignant.
    """
    if name == "digits":
        data = load_digits()
        X, y = data.data, (data.target >= 5).astype(np.int64)
    elif name == "breast_cancer":
        data = load_breast_cancer()
        X, y = data.data, (data.target == 0).astype(np.int64)
    else:
        raise ValueError(f"unknown dataset {name!r}; expected 'digits' or 'breast_cancer'")
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.5, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(Xa)
    clf = LogisticRegression(C=0.1, max_iter=2000).fit(scaler.transform(Xa), ya)
    Xp = scaler.transform(Xb)
    s = clf.decision_function(Xp)
    # Unit spread, so that the hinge margin 1 of the LPs is on the scale of the scores.
    return Xp, yb, s / s.std()
