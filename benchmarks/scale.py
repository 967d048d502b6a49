"""Past one device: the memory planner against measured peaks, and the chunked AUC loss.

``python -m benchmarks.scale [--quick] [--out results/scale.csv]`` (``sparselp bench
scale``) runs, each configuration in a fresh process
(:func:`benchmarks.peakmem.run_isolated`, one torch thread):

- ``planner``: every loss at a grid of batch sizes (and the chunked AUC loss at a grid of
  block sizes): forward + backward, the measured peak (CPU: resident set size over the
  interpreter's after its imports; CUDA: ``max_memory_allocated``) beside
  :func:`sparselp.plan`'s prediction, and their ratio;
- ``chunked``: :class:`sparselp.AUCLoss` with the block size the planner picks for a
  budget, up to 1e8 pairs, beside the closed-form floor (one number per pair) at the sizes
  where the floor fits;
- ``refusal``: an over-budget request must raise :class:`sparselp.MemoryBudgetError` before
  anything large is allocated: the memory it took is recorded.
"""
from __future__ import annotations

import argparse
import os
import time

__all__ = ["loss_step", "refuse_step", "run_planner", "run_chunked", "run_refusal", "main"]

_PRELOAD = ("sparselp.losses",)
COLUMNS = ("part", "loss", "dtype", "batch", "pairs", "block_size", "status", "predicted_mb",
           "measured_mb", "ratio", "total_s", "loss_value", "error")


def _data(loss: str, batch: int, pos_frac: float, num_classes: int, dtype, seed: int):
    import torch
    g = torch.Generator().manual_seed(seed)
    if loss == "multiclass-auc":
        scores = torch.rand(batch, num_classes, generator=g, dtype=dtype)
        labels = torch.arange(batch) % num_classes
    else:
        scores = torch.rand(batch, generator=g, dtype=dtype)
        labels = torch.zeros(batch, dtype=torch.long)
        labels[:max(1, round(batch * pos_frac))] = 1
    return scores.requires_grad_(), labels


def make_loss(loss: str, num_classes: int = 10, block_size: int | None = None, **kwargs):
    """The loss module called ``loss`` (``auc``, ``auc-hinge``, ``multiclass-auc``,
    ``fscore``, ``precision-at-recall``)."""
    from sparselp.losses import AUCLoss, FScoreLoss, MultiClassAUCLoss, PrecisionAtRecallLoss
    if loss == "auc":
        return AUCLoss(block_size=block_size, **kwargs)
    if loss == "auc-hinge":
        return AUCLoss(surrogate="hinge", block_size=block_size, **kwargs)
    if loss == "multiclass-auc":
        return MultiClassAUCLoss(num_classes, **kwargs)
    if loss == "fscore":
        return FScoreLoss(**kwargs)
    if loss == "precision-at-recall":
        return PrecisionAtRecallLoss(**kwargs)
    raise ValueError(f"loss must be auc, auc-hinge, multiclass-auc, fscore or "
                     f"precision-at-recall, got {loss!r}")


def loss_step(loss: str = "auc", batch: int = 1000, pos_frac: float = 0.5,
              num_classes: int = 10, dtype: str = "float32", block_size: int | None = None,
              memory_budget: str | None = None, seed: int = 0) -> dict:
    """Forward + backward of one loss (what each child process runs)."""
    import torch
    dt = getattr(torch, dtype)
    kwargs = {} if memory_budget is None else {"memory_budget": memory_budget}
    fn = make_loss(loss, num_classes, block_size, **kwargs)
    scores, labels = _data(loss, batch, pos_frac, num_classes, dt, seed)
    t0 = time.perf_counter()
    value = fn(scores, labels)
    value.backward()
    return {"total_s": time.perf_counter() - t0, "loss_value": float(value.detach()),
            "block_size": getattr(fn, "last_block_size", block_size)}
