"""Figures of the training study (matplotlib Agg): ROC curves and test AUC / F1 against
the minibatch size. Shared by ``sparselp bench train`` and section (f) of the report."""
from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["roc_figure", "batch_size_figure"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


#: one color a loss in every figure; cross-entropy, the baseline, black (dashed in the
#: minibatch-size figure)
LOSS_COLORS = {"ce": "k", "auc": "C0", "auc-hinge": "C1", "precision-at-recall": "C2",
               "fscore": "C3", "fscore-hinge": "C4", "fscore-hinge-negatives": "C5",
               "libauc-aucm": "C6", "multiclass-auc": "C7"}


def _color(loss: str, i: int) -> str:
    return LOSS_COLORS.get(loss, f"C{8 + i % 2}")


def _save(plt, fig, out: str, name: str) -> str:
    fig.tight_layout()
    path = os.path.join(out, name)
    os.makedirs(out, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def roc_figure(rows: list[dict], out: str, name: str = "train_roc.png") -> str | None:
    """Test ROC curves of every loss of the grid, one panel per imbalance ratio, for the
    first seed of each (the seed paper's Fig. 2); None when no run's scores are found."""
    from sklearn.metrics import roc_auc_score, roc_curve

    grid = [r for r in rows if r.get("study") == "grid" and r.get("run")]
    if not grid:
        return None
    first = min(int(r["seed"]) for r in grid)
    ratios = sorted({float(r["imratio"]) for r in grid})
    plt = _plt()
    fig, axes = plt.subplots(1, len(ratios), figsize=(4.6 * len(ratios), 4.2), squeeze=False)
    for ax, ratio in zip(axes[0], ratios):
        chosen = [r for r in grid if float(r["imratio"]) == ratio and int(r["seed"]) == first]
        for i, r in enumerate(chosen):
            path = os.path.join(r["run"], "scores.npz")
            if not os.path.exists(path):
                continue
            data = np.load(path)
            fpr, tpr, _ = roc_curve(data["labels"], data["scores"])
            auc = roc_auc_score(data["labels"], data["scores"])
            ax.plot(fpr, tpr, color=_color(r["loss"], i), lw=1.3,
                    label=f"{r['loss']} (AUC {auc:.3f})")
        ax.plot([0, 1], [0, 1], ":", color="gray", lw=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"training positives {ratio:.0%} (seed {first})", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    return _save(plt, fig, out, name)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def batch_size_figure(summary: list[dict], out: str,
                      name: str = "train_batch_size.png") -> str | None:
    """Test AUC and F1 (at the validation-chosen threshold) against the minibatch size,
    mean +- std over seeds, one line per loss; None without ``size`` rows."""
    rows = [r for r in summary if r.get("study") == "size" and not math.isnan(_num(r.get("auc")))]
    if not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    losses = sorted({r["loss"] for r in rows})
    for ax, metric, label in zip(axes, ("auc", "f1_val_threshold"),
                                 ("test AUC", "test F1 (threshold chosen on validation)")):
        for i, loss in enumerate(losses):
            pts = sorted((int(_num(r["batch_size"])), _num(r.get(metric)),
                          _num(r.get(metric + "_std"))) for r in rows if r["loss"] == loss)
            xs, ys, es = zip(*pts)
            ax.errorbar(xs, ys, yerr=[0 if math.isnan(e) else e for e in es], marker="o",
                        capsize=3, label=loss, color=_color(loss, i),
                        linestyle="--" if loss == "ce" else "-")
        ax.set_xscale("log", base=2)
        sizes = sorted({int(_num(r["batch_size"])) for r in rows})
        ax.set_xticks(sizes, [f"{b:,}" for b in sizes])
        ax.set_xlabel("minibatch size")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    seeds = max(int(_num(r.get("seeds"))) for r in rows)
    fig.suptitle(f"fixed number of epochs; mean +- std over {seeds} seeds", fontsize=10)
    return _save(plt, fig, out, name)
