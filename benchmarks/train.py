"""``sparselp train``: train a network with an LP loss (or cross-entropy, or LibAUC) on
imbalanced images, resumably, and write its test metrics.

One run writes into ``--out``:

- ``checkpoint.pt`` after every epoch (model, optimizer, the loss's own state, the
  minibatch sampler's generator, the learning curve): a run that is stopped resumes from
  its last finished epoch when started again with the same ``--out``; a finished run is
  extended by asking for more ``--epochs`` (the other settings must match, else it refuses
  and names them; fewer epochs than it holds are refused too);
- ``curve.csv``: per epoch the mean training loss, the validation AUC (AUC_mu for
  multi-class), wall and CPU seconds and seconds per step;
- ``metrics.json``: the settings, the data's description and source, and the test
  metrics of the last epoch (:mod:`benchmarks.train_metrics`);
- ``scores.npz``: the test scores and labels (for ROC curves).

``--warmup-ce-epochs K`` trains the first K epochs with cross-entropy and the rest with
``--loss`` (one Adam throughout), as LibAUC's examples pretrain with cross-entropy; each
loss has a default (:func:`benchmarks.train_objectives.warmup_ce_epochs`).

Data, protocols and minibatches: :mod:`benchmarks.train_data`; models:
:mod:`benchmarks.train_models`; losses and their optimizers: :mod:`benchmarks.
train_objectives`. Exit codes: 0 done, 2 bad arguments, 3 data or LibAUC not installed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from .tables import write_csv
from .train_data import DATASET_NAMES, PROTOCOLS, StratifiedBatches, make_task
from .train_ddp import (global_loss, grad_scale, launched_by_torchrun, local_part,
                        train_distributed, train_torchrun)
from .train_metrics import auc_mu, binary_metrics, multiclass_metrics
from .train_models import MODELS, build_model
from .train_objectives import (DEFAULT_EPS, DEFAULT_WARMUP_CE_EPOCHS, LOSSES,
                               MULTICLASS_REDUCTION, make_objective, warmup_ce_epochs)

__all__ = ["TrainConfig", "train", "train_step", "main", "add_arguments", "config_from_args",
           "saved_config", "recorded_config"]


@dataclasses.dataclass
class TrainConfig:
    """The settings of one run (``None``: the loss's or the optimizer's default)."""
    dataset: str = "digits"
    protocol: str = "libauc"
    imratio: float = 0.05
    loss: str = "ce"
    model: str = "cnn"
    epochs: int = 4
    batch_size: int = 256
    seed: int = 0
    lr: float | None = None
    eps: float | None = None
    recall: float = 0.8
    epoch_decay: float = 2e-3
    val_fraction: float = 0.1
    warmup_ce_epochs: int | None = None
    data_dir: str | None = None
    device: str = "cpu"


def _scores(model, X: torch.Tensor, device, chunk: int = 1024) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(X[i:i + chunk].to(device)).float().cpu()
                         for i in range(0, len(X), chunk)])
    model.train()
    return out.numpy()[:, 0] if out.shape[1] == 1 else out.numpy()


def _save(obj, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a run killed while saving keeps its previous checkpoint


def _resume(path: str, cfg: TrainConfig, model, opt, objective, batches):
    """``(first epoch, curve)`` from the checkpoint at ``path``, or ``(0, [])``."""
    if not os.path.exists(path):
        return 0, []
    state = torch.load(path, map_location=cfg.device, weights_only=False)
    mine, theirs = saved_config(cfg), recorded_config(state["config"])
    differ = [k for k in mine if k != "epochs" and mine[k] != theirs.get(k)]
    if differ:
        raise ValueError(f"{path} holds a run with other settings ("
                         + ", ".join(f"{k}={theirs.get(k)!r} here, {mine[k]!r} asked" for k in differ)
                         + "); use another --out or --no-resume")
    if state["epoch"] > cfg.epochs:
        raise ValueError(f"{path} holds {state['epoch']} epochs, more than the epochs="
                         f"{cfg.epochs} asked; ask for at least {state['epoch']}, use another "
                         f"--out or --no-resume")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    objective.load_state_dict(state["objective"])
    batches.set_state(state["sampler"])
    torch.set_rng_state(state["torch_rng"])
    return state["epoch"], state["curve"]


def train_step(model, objective, opt, x, y, scale: float = 1.0) -> torch.Tensor:
    """One step: forward, the objective's loss, backward (of ``scale`` times the loss: the
    factor DDP needs, :func:`benchmarks.train_ddp.grad_scale`), the optimizer's step; the
    (detached) loss."""
    loss = objective.loss(model(x), y)
    opt.zero_grad(set_to_none=True)
    (loss * scale if scale != 1.0 else loss).backward()
    opt.step()
    return loss.detach()


def _epoch(model, objective, opt, batches, task, device, desc, progress, group=None) -> dict:
    """One epoch of training; the row of the learning curve (without validation). With a
    process ``group`` each rank trains on its share of every minibatch
    (:mod:`benchmarks.train_ddp`) and the curve holds the global minibatch's loss."""
    model.train()
    wall, cpu = time.perf_counter(), time.process_time()
    total, steps = 0.0, 0
    rank, world = (0, 1) if group is None else (dist.get_rank(group), dist.get_world_size(group))
    for idx in tqdm(batches, desc=desc, disable=not progress, leave=False):
        mine = idx if group is None else local_part(idx, rank, world)
        scale = 1.0 if group is None else grad_scale(objective.name, len(mine), len(idx), world)
        loss = train_step(model, objective, opt, task.X_train[mine].to(device),
                          task.y_train[mine].to(device), scale)
        if group is not None:
            loss = global_loss(loss, objective.name, len(mine), len(idx), group)
        total, steps = total + float(loss), steps + 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"train_loss": total / steps, "seconds": wall, "cpu_seconds": cpu,
            "seconds_per_step": wall / steps, "steps": steps}


def train(cfg: TrainConfig, out: str, resume: bool = True, progress: bool = True,
          group=None) -> dict:
    """Run (or resume) ``cfg``, writing into ``out``; returns the content of metrics.json.
    With a process ``group`` (``--nproc``, :mod:`benchmarks.train_ddp`): DDP over its ranks
    with the loss of the global minibatch; rank 0 writes the files."""
    lead = group is None or dist.get_rank(group) == 0
    warmup = warmup_ce_epochs(cfg.loss, cfg.warmup_ce_epochs, cfg.epochs)  # refused: no files
    os.makedirs(out, exist_ok=True)
    ckpt = os.path.join(out, "checkpoint.pt")
    if not resume and os.path.exists(ckpt) and lead:
        os.remove(ckpt)
    if group is not None:
        dist.barrier(group)  # no rank reads a checkpoint rank 0 is removing
    task = make_task(cfg.dataset, cfg.protocol, cfg.imratio, cfg.seed, cfg.val_fraction,
                     cfg.data_dir)
    device = torch.device(cfg.device)
    objective = make_objective(cfg.loss, task.num_classes, lr=cfg.lr, eps=cfg.eps,
                               recall=cfg.recall, epoch_decay=cfg.epoch_decay, device=device,
                               process_group=group)
    warm = make_objective("ce", task.num_classes, lr=objective.lr) if warmup else None
    torch.manual_seed(cfg.seed)  # the same initial weights for every loss of a seed
    model = build_model(cfg.model, tuple(task.X_train.shape[-2:]),
                        1 if task.binary else task.num_classes).to(device)
    opt = objective.make_optimizer(model.parameters())
    batches = StratifiedBatches(task.y_train, cfg.batch_size, cfg.seed, objective.positive_rate)
    first, curve = _resume(ckpt, cfg, model, opt, objective, batches) if resume else (0, [])
    net = model if group is None else nn.parallel.DistributedDataParallel(model)
    for epoch in range(first, cfg.epochs):
        objective.epoch_start(epoch, cfg.epochs, opt)
        now = warm if epoch < warmup else objective  # the warm-up: cross-entropy, same Adam
        row = {"epoch": epoch + 1, **_epoch(net, now, opt, batches, task, device,
                                            f"{now.name} epoch {epoch + 1}/{cfg.epochs}",
                                            progress, group)}
        val = _scores(model, task.X_val, device)
        row["val_auc"] = (binary_metrics(task.y_val, val)["auc"] if task.binary
                          else auc_mu(task.y_val.numpy(), val))
        curve.append(row)
        if lead:
            _save({"config": saved_config(cfg), "epoch": epoch + 1, "curve": curve,
                   "model": model.state_dict(), "optimizer": opt.state_dict(),
                   "objective": objective.state_dict(), "sampler": batches.state(),
                   "torch_rng": torch.get_rng_state()}, ckpt)
            write_csv(curve, os.path.join(out, "curve.csv"))
        if progress:
            print(f"epoch {epoch + 1}: loss {row['train_loss']:.4f}  val AUC "
                  f"{row['val_auc']:.4f}  {row['seconds']:.1f} s", file=sys.stderr)
    test, val = _scores(model, task.X_test, device), _scores(model, task.X_val, device)
    y_test = task.y_test.numpy()
    metrics = (binary_metrics(y_test, test, task.y_val.numpy(), val) if task.binary
               else multiclass_metrics(y_test, test))
    steps = [r["seconds_per_step"] for r in curve]
    result = {"config": saved_config(cfg), "data": task.description,
              "source": task.source, "epochs_done": len(curve), "metrics": metrics,
              "val_auc": curve[-1]["val_auc"] if curve else None,
              "seconds_per_step": float(np.median(steps)) if steps else None}
    if lead:
        np.savez_compressed(os.path.join(out, "scores.npz"), scores=test, labels=y_test)
        with open(os.path.join(out, "metrics.json"), "w") as fh:
            json.dump(result, fh, indent=2)
    return result


def saved_config(cfg: TrainConfig) -> dict:
    """The settings as checkpoints and metrics record them: rank r's ``cuda:r`` is the
    run's ``cuda``, so that any number of processes can resume it; and the defaults that
    ``None`` stands for in the loss's settings (:data:`~benchmarks.train_objectives.
    DEFAULT_EPS`, the multi-class reduction, the cross-entropy warm-up), so that a run
    written under other defaults is not resumed under these (it is refused, naming
    them)."""
    d = dataclasses.asdict(cfg)
    d["device"] = torch.device(cfg.device).type if cfg.device.startswith("cuda") else cfg.device
    d["loss_defaults"] = {"eps": DEFAULT_EPS.get(cfg.loss), "reduction":
                          MULTICLASS_REDUCTION if cfg.loss == "multiclass-auc" else None,
                          "warmup_ce_epochs": DEFAULT_WARMUP_CE_EPOCHS.get(cfg.loss, 0)}
    return d


def recorded_config(config: dict) -> dict:
    """A checkpoint's or metrics.json's settings, comparable with :func:`saved_config`:
    records from before ``loss_defaults`` was written ran every loss on its class's own
    defaults (the multi-class loss then differs from today's and is not resumed), and
    records from before ``warmup_ce_epochs`` was written had no warm-up."""
    old = {"eps": None, "reduction": None, "warmup_ce_epochs": 0}
    return {"warmup_ce_epochs": None, **config,
            "loss_defaults": {**old, **config.get("loss_defaults", {})}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of one run (shared with ``sparselp bench train``)."""
    d = TrainConfig()
    p.add_argument("--dataset", choices=DATASET_NAMES, default=d.dataset,
                   help="digits needs no download; the others: make data, or --data-dir")
    p.add_argument("--protocol", choices=PROTOCOLS, default=d.protocol,
                   help="libauc: positives cut to --imratio of training; seed: negatives "
                        "kept at fraction --imratio; longtail: 10 classes decaying to "
                        "--imratio")
    p.add_argument("--imratio", type=float, default=d.imratio, help="see --protocol")
    p.add_argument("--model", choices=MODELS, default=d.model, help="network")
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs to train")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (None: 1e-3 for Adam, 0.1 for libauc-aucm's PESG)")
    p.add_argument("--eps", type=float, default=None,
                   help="LP loss margin or ramp width (None: the loss's default)")
    p.add_argument("--recall", type=float, default=d.recall,
                   help="precision-at-recall's recall target")
    p.add_argument("--epoch-decay", type=float, default=d.epoch_decay, help="LibAUC PESG's")
    p.add_argument("--warmup-ce-epochs", type=int, default=None,
                   help="train the first K epochs with cross-entropy, then with --loss (the "
                        "same Adam; an LP loss's; None: the loss's default, benchmarks/"
                        "train_objectives.py DEFAULT_WARMUP_CE_EPOCHS)")
    p.add_argument("--data-dir", default=None, help="a folder with the four IDX files")
    p.add_argument("--device", default=d.device, help="torch device")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args, **over) -> TrainConfig:
    """The :class:`TrainConfig` of parsed arguments (``over`` replaces fields)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values.update(over)
    return TrainConfig(**values)


def _check(cfg: TrainConfig) -> str | None:
    if cfg.epochs < 1:
        return f"--epochs must be at least 1, got {cfg.epochs}"
    if cfg.batch_size < 2:
        return f"--batch-size must be at least 2, got {cfg.batch_size}"
    try:
        warmup_ce_epochs(cfg.loss, cfg.warmup_ce_epochs, cfg.epochs)
    except ValueError as exc:
        return str(exc).replace("warmup_ce_epochs=", "--warmup-ce-epochs ", 1)
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sparselp train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--loss", choices=LOSSES, default="ce", help="what to train with")
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size,
                   help="minibatch size (every minibatch holds both classes)")
    p.add_argument("--seed", type=int, default=0, help="subsample, split, init and batches")
    p.add_argument("--out", default="runs/train", help="output folder")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out holds "
                                                            "a checkpoint")
    p.add_argument("--nproc", type=int, default=1,
                   help="processes (DistributedDataParallel, the loss of the global "
                        "minibatch: benchmarks/train_ddp.py)")
    add_arguments(p)
    args = p.parse_args(argv)
    cfg = config_from_args(args)
    bad = _check(cfg)
    if bad:
        print(f"sparselp train: error: {bad}", file=sys.stderr)
        return 2
    try:
        if launched_by_torchrun():
            if args.nproc != 1:
                raise ValueError("--nproc: under torchrun the processes are torchrun's "
                                 "(--nproc_per_node); leave --nproc at 1")
            result = train_torchrun(train, cfg, args.out, resume=not args.no_resume,
                                    progress=not args.no_progress)
            if result is None:  # not rank 0: rank 0 reports
                return 0
        elif args.nproc != 1:
            result = train_distributed(train, cfg, args.out, args.nproc,
                                       resume=not args.no_resume, progress=not args.no_progress)
        else:
            result = train(cfg, args.out, resume=not args.no_resume,
                           progress=not args.no_progress)
    except (ImportError, FileNotFoundError) as exc:
        print(f"sparselp train: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:
        print(f"sparselp train: error: {exc}", file=sys.stderr)
        return 2
    print(result["data"])
    print("  ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items()))
    print(f"wrote {os.path.join(args.out, 'metrics.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
