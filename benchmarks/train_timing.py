"""Per-iteration time of a training step with each loss, interleaved (``sparselp bench
train-timing``).

One model, one stratified minibatch of the real task per round; each round runs one
training step (forward, loss, backward, optimizer step) per loss, in turn, so that the
load of a shared machine falls on every loss alike. Reported per loss: the median wall
time of a step and its interquartile range, the median CPU time (``time.process_time``),
and the median over rounds of the step's time divided by cross-entropy's step in the
same round (a per-round ratio cancels load that changes between rounds). The first
round warms up and is dropped.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from .tables import emit, quartiles
from .train import train_step
from .train_data import StratifiedBatches, make_task
from .train_models import build_model
from .train_objectives import libauc_available, make_objective

__all__ = ["time_steps", "main"]


def _step(model, objective, opt, x, y) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    train_step(model, objective, opt, x, y)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_steps(dataset: str | None = "digits", model: str = "cnn", batch: int = 256,
               imratio: float = 0.05, losses=("ce", "auc", "auc-hinge", "fscore",
                                              "precision-at-recall"),
               repeats: int = 15, seed: int = 0, device: str = "cpu") -> list[dict]:
    """One row per loss (see the module docstring); ``losses`` must start with ``"ce"``;
    ``dataset`` None: Fashion-MNIST when installed, else digits."""
    if dataset is None:
        from .train_grid import default_dataset

        dataset = default_dataset()
    if losses[0] != "ce":
        raise ValueError("losses must start with 'ce', the baseline of the ratios")
    task = make_task(dataset, "libauc", imratio, seed)
    torch.manual_seed(seed)
    net = build_model(model, tuple(task.X_train.shape[-2:]), 1).to(device)
    objs = {name: make_objective(name, device=device) for name in losses
            if name != "libauc-aucm" or libauc_available() is None}
    # Each loss its own optimizer over the same parameters: a step's cost is measured, the
    # weights drift alike for all.
    opts = {name: o.make_optimizer(net.parameters()) for name, o in objs.items()}
    batches = StratifiedBatches(task.y_train, batch, seed)
    rec = {name: [] for name in objs}
    it = iter(batches)
    for rnd in range(repeats + 1):
        try:
            idx = next(it)
        except StopIteration:
            it = iter(batches)
            idx = next(it)
        x, y = task.X_train[idx].to(device), task.y_train[idx].to(device)
        for name, obj in objs.items():
            t = _step(net, obj, opts[name], x, y)
            if rnd:
                rec[name].append(t)
    ce = np.array([w for w, _ in rec["ce"]])
    rows = []
    for name in losses:
        row = {"loss": name, "model": model, "batch": batch, "dataset": dataset,
               "repeats": repeats}
        if name not in rec:
            rows.append({**row, "status": f"skipped: {libauc_available()}"})
            continue
        wall = np.array([w for w, _ in rec[name]])
        cpu = np.array([c for _, c in rec[name]])
        q25, med, q75 = quartiles(wall)
        r25, rmed, r75 = quartiles(wall / ce)
        rows.append({**row, "status": "ok", "step_s": med, "step_s_q25": q25,
                     "step_s_q75": q75, "cpu_s": float(np.median(cpu)),
                     "ratio_to_ce": rmed, "ratio_to_ce_q25": r25, "ratio_to_ce_q75": r75})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sparselp bench train-timing",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default=None, help="default: fashion-mnist if installed")
    p.add_argument("--model", default="cnn")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--losses", default="ce,auc,auc-hinge,fscore,precision-at-recall")
    p.add_argument("--out", default="results/train_timing.csv")
    args = p.parse_args(argv)
    rows = time_steps(args.dataset, args.model, args.batch,
                      losses=tuple(args.losses.split(",")), repeats=args.repeats)
    emit(rows, args.out, ["loss", "model", "batch", "dataset", "repeats", "status", "step_s",
                          "step_s_q25", "step_s_q75", "cpu_s", "ratio_to_ce",
                          "ratio_to_ce_q25", "ratio_to_ce_q75"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
