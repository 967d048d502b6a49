"""Test metrics of the training study, from scikit-learn.

Binary (``scores`` (N,), larger = more positive): ROC AUC, average precision, accuracy
and F1 at score 0 (probability 0.5 under the sigmoid: the threshold a cross-entropy
model is trained for), F1 at the threshold that maximises F1 on the validation split
(``val_scores``; no choice is made on the test set; ``val_f1`` is that F1 on the
validation split, for choices such as a loss's eps) and, for reference only, the largest
F1 over all test thresholds (an oracle, optimistic).

Multi-class (``scores`` (N, K)): accuracy, macro F1, one-vs-rest macro AUC (of the softmax
probabilities) and AUC_mu (Kleiman & Page, ICML 2019) with the default partition matrix
``1 - I``: the mean over class pairs ``i < j`` of the AUC of ``s_i - s_j`` separating
class ``i`` from class ``j`` on the samples of those two classes.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score,
                             precision_recall_curve, roc_auc_score)

__all__ = ["binary_metrics", "multiclass_metrics", "auc_mu", "best_f1_threshold"]


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """``(threshold, F1)``: predicting ``scores >= threshold`` maximises F1 on these."""
    prec, rec, thr = precision_recall_curve(labels, scores)
    f1 = 2 * prec[:-1] * rec[:-1] / np.maximum(prec[:-1] + rec[:-1], 1e-300)
    i = int(np.argmax(f1))
    return float(thr[i]), float(f1[i])


def binary_metrics(labels, scores, val_labels=None, val_scores=None) -> dict:
    """The binary metrics (see the module docstring) as plain floats."""
    y, s = np.asarray(labels), np.asarray(scores, dtype=np.float64).reshape(-1)
    pred = (s > 0).astype(int)
    out = {"auc": roc_auc_score(y, s), "average_precision": average_precision_score(y, s),
           "accuracy": accuracy_score(y, pred), "f1_at_0.5": f1_score(y, pred, zero_division=0),
           "f1_oracle": best_f1_threshold(y, s)[1]}
    if val_scores is not None:
        thr, val_f1 = best_f1_threshold(np.asarray(val_labels),
                                        np.asarray(val_scores, dtype=np.float64).reshape(-1))
        out["f1_val_threshold"] = f1_score(y, (s >= thr).astype(int), zero_division=0)
        out["val_threshold"], out["val_f1"] = thr, val_f1
    return {k: float(v) for k, v in out.items()}


def auc_mu(labels, scores) -> float:
    """AUC_mu with partition matrix ``1 - I`` (classes without test samples are skipped)."""
    y, s = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    present = [k for k in range(s.shape[1]) if np.any(y == k)]
    aucs = []
    for a, i in enumerate(present):
        for j in present[a + 1:]:
            m = (y == i) | (y == j)
            aucs.append(roc_auc_score(y[m] == i, s[m, i] - s[m, j]))
    return float(np.mean(aucs))


def multiclass_metrics(labels, scores) -> dict:
    """The multi-class metrics (see the module docstring) as plain floats."""
    y, s = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    pred = s.argmax(1)
    return {"auc_mu": auc_mu(y, s),
            "auc_ovr": float(roc_auc_score(y, p, multi_class="ovr", average="macro",
                                           labels=np.arange(s.shape[1]))),
            "accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0))}
