"""``sparselp bench train``: the training study's grid, its tables and figures.

Three studies, each a set of :func:`benchmarks.train.train` runs (cached: a run whose
``metrics.json`` holds the same settings is read back, and an interrupted one resumes):

- ``grid``: losses x imbalance ratios x seeds at one minibatch size (LibAUC's binary
  protocol, or the seed paper's with ``--protocol seed --imratios 1,0.4,0.2,0.1``): test
  AUC, average precision and F1, mean +- std over the seeds; ROC curves
  of the first seed (the seed paper's Fig. 2).
- ``size``: test AUC and F1 against the minibatch size (64 .. 4,096) for the LP losses and
  cross-entropy, at one imbalance ratio and a fixed number of epochs, with error bars.
- ``longtail``: the 10-class long-tailed task: AUC_mu, one-vs-rest AUC and accuracy of
  cross-entropy and ``multiclass-auc``.

Choices are made on the validation split, never on the test set: LibAUC's learning rate
(``--libauc-lrs``, its examples' 0.1 and two smaller) is picked per imbalance ratio by the
validation AUC of the first seed, then used for every seed.

Writes ``<out>/train_runs.csv`` (one row per run), ``train_summary.csv`` (mean +- std),
``train_roc.png`` and ``train_batch_size.png``; ``--runs`` holds the runs' folders.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time

import numpy as np

from .tables import emit, write_csv
from .train import (TrainConfig, add_arguments, config_from_args, recorded_config,
                    saved_config, train)
from .idx_data import find_dataset
from .train_objectives import (DEFAULT_EPS, NO_WARMUP_LOSSES, libauc_available,
                               warmup_ce_epochs)

__all__ = ["run", "summarise", "main", "default_dataset"]

METRICS = ("auc", "average_precision", "f1_val_threshold", "f1_at_0.5", "f1_oracle",
           "auc_mu", "auc_ovr", "accuracy", "seconds_per_step", "val_auc", "val_f1")


def default_dataset() -> str:
    """Fashion-MNIST when installed (``make data``), else scikit-learn's digits."""
    return "fashion-mnist" if find_dataset("fashion-mnist") else "digits"


def _key(cfg: TrainConfig) -> str:
    parts = [cfg.dataset, cfg.protocol, f"r{cfg.imratio:g}", cfg.loss, cfg.model,
             f"e{cfg.epochs}", f"b{cfg.batch_size}", f"s{cfg.seed}"]
    parts += [f"lr{cfg.lr:g}"] if cfg.lr is not None else []
    parts += [f"eps{cfg.eps:g}"] if cfg.eps is not None else []
    # A warm-up, given or the loss's default, named: runs from before a default changed
    # stay in their own folders (train() refuses to resume a checkpoint of other settings).
    warmup = warmup_ce_epochs(cfg.loss, cfg.warmup_ce_epochs, cfg.epochs)
    parts += [f"wce{warmup}"] if warmup or cfg.warmup_ce_epochs is not None else []
    # The other settings, where not the defaults, as a hash: a run folder holds one config.
    named = ("dataset", "protocol", "imratio", "loss", "model", "epochs", "batch_size",
             "seed", "lr", "eps", "warmup_ce_epochs")
    default = dataclasses.asdict(TrainConfig())
    rest = {k: v for k, v in dataclasses.asdict(cfg).items()
            if k not in named and v != default[k]}
    if rest:
        parts.append("h" + hashlib.sha1(json.dumps(rest, sort_keys=True).encode())
                     .hexdigest()[:8])
    return "_".join(parts)


def _one(cfg: TrainConfig, runs: str, study: str, progress: bool) -> dict:
    """The row of one run (read back when finished with the same settings); a warm-up
    given for the grid applies to the losses that take one."""
    if cfg.loss in NO_WARMUP_LOSSES:
        cfg = dataclasses.replace(cfg, warmup_ce_epochs=None)
    out = os.path.join(runs, _key(cfg))
    path = os.path.join(out, "metrics.json")
    result = None
    if os.path.exists(path):
        with open(path) as fh:
            old = json.load(fh)
        if recorded_config(old.get("config") or {}) == saved_config(cfg) \
                and old.get("epochs_done") == cfg.epochs:
            result = old
    if result is None:
        t = time.perf_counter()
        result = train(cfg, out, progress=progress)
        print(f"  {_key(cfg)}: test AUC {result['metrics'].get('auc', result['metrics'].get('auc_mu')):.4f}"
              f" ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    row = {"study": study, **{k: v for k, v in dataclasses.asdict(cfg).items()
                              if k not in ("data_dir",)}}
    row.update({k: result["metrics"].get(k) for k in METRICS if k in result["metrics"]})
    row.update(val_auc=result["val_auc"], seconds_per_step=result["seconds_per_step"],
               run=out, warmup_ce_epochs=warmup_ce_epochs(cfg.loss, cfg.warmup_ce_epochs,
                                                          cfg.epochs))
    return row


def _libauc_lr(base: TrainConfig, lrs, runs, progress) -> tuple[float, list[dict]]:
    """LibAUC's learning rate chosen by validation AUC (first seed); the tuning rows."""
    rows = [_one(dataclasses.replace(base, lr=lr), runs, "libauc-tuning", progress)
            for lr in lrs]
    best = max(rows, key=lambda r: r["val_auc"])
    return best["lr"], rows


def run(quick: bool = False, dataset: str | None = None, model: str = "cnn",
        losses=("ce", "auc", "auc-hinge", "fscore", "fscore-hinge", "precision-at-recall",
                "libauc-aucm"),
        imratios=(0.01, 0.05), seeds=(0, 1, 2), epochs: int = 4, batch_size: int = 256,
        batch_sizes=(64, 256, 1024, 4096),
        size_losses=("ce", "auc-hinge", "fscore", "fscore-hinge", "precision-at-recall"),
        size_imratio: float = 0.05, longtail: bool = True, libauc_lrs=(0.1, 0.03, 0.01),
        studies=("grid", "size", "longtail"), runs: str | None = "runs/bench-train",
        progress: bool = False, base: TrainConfig | None = None) -> list[dict]:
    """Every run's row (see the module docstring). ``quick``: digits, the MLP, 1 epoch,
    one seed and small minibatches (seconds; the test suite runs it). ``runs`` None: a
    fresh temporary folder (no run is read back; the report's choice)."""
    if runs is None:
        import tempfile

        runs = tempfile.mkdtemp(prefix="sparselp-train-")
    if quick:
        dataset, model, epochs, seeds, imratios = "digits", "mlp", 1, (0,), (0.1,)
        batch_size, batch_sizes, libauc_lrs = 64, (32, 128), (0.1, 0.01)
        losses = [l for l in losses if l in ("ce", "auc", "auc-hinge", "libauc-aucm")]
        size_losses = [l for l in size_losses if l in ("ce", "auc-hinge")]
    base = base or TrainConfig()
    base = dataclasses.replace(base, dataset=dataset or default_dataset(), model=model,
                               epochs=epochs, batch_size=batch_size)
    if base.protocol == "longtail":
        raise ValueError("the grid and size studies are binary: protocol 'libauc' or 'seed' "
                         "(the long-tailed task is the 'longtail' study)")
    missing_libauc = libauc_available()
    rows = []
    for r in imratios if "grid" in studies else ():
        for loss in losses:
            cfg = dataclasses.replace(base, imratio=r, loss=loss)
            if loss == "libauc-aucm":
                if missing_libauc:
                    rows.append({"study": "grid", "imratio": r, "loss": loss,
                                 "status": f"skipped: {missing_libauc}"})
                    continue
                lr, tuning = _libauc_lr(dataclasses.replace(cfg, seed=seeds[0]), libauc_lrs,
                                        runs, progress)
                rows += tuning
                cfg = dataclasses.replace(cfg, lr=lr)
            rows += [_one(dataclasses.replace(cfg, seed=s), runs, "grid", progress)
                     for s in seeds]
    for b in batch_sizes if "size" in studies else ():
        for loss in size_losses:
            cfg = dataclasses.replace(base, imratio=size_imratio, loss=loss, batch_size=b)
            rows += [_one(dataclasses.replace(cfg, seed=s), runs, "size", progress)
                     for s in seeds]
    if longtail and "longtail" in studies:
        for loss in ("ce", "multiclass-auc"):
            # eps named (the default's), so that a run of an older default is not read back
            eps = DEFAULT_EPS.get(loss) if base.eps is None else base.eps
            cfg = dataclasses.replace(base, protocol="longtail", imratio=0.1 if quick else 0.01,
                                      loss=loss, eps=eps)
            rows += [_one(dataclasses.replace(cfg, seed=s), runs, "longtail", progress)
                     for s in seeds]
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation (over seeds) of every metric, per study, imbalance
    ratio, loss, minibatch size and protocol (skipped runs keep their status)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("study") == "libauc-tuning":
            continue
        key = (r["study"], r.get("protocol", "libauc"), r["imratio"], r["loss"],
               r.get("batch_size"))
        groups.setdefault(key, []).append(r)
    out = []
    for (study, protocol, imratio, loss, b), rs in groups.items():
        row = {"study": study, "protocol": protocol, "imratio": imratio, "loss": loss,
               "batch_size": b,
               # A skipped row has no seed (read from a CSV: an empty one).
               "seeds": sum(r.get("seed") not in (None, "") for r in rs)}
        if not row["seeds"]:
            row["status"] = rs[0].get("status", "")
            out.append(row)
            continue
        row["lr"] = rs[0].get("lr")
        for m in METRICS:
            vals = [float(r[m]) for r in rs if r.get(m) not in (None, "")]
            if vals:
                row[m] = float(np.mean(vals))
                row[m + "_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        out.append(row)
    return out


def _floats(text: str, cast=float):
    return tuple(cast(v) for v in text.split(",") if v.strip())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sparselp bench train",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="digits, MLP, 1 epoch (seconds)")
    p.add_argument("--losses", default="ce,auc,auc-hinge,fscore,fscore-hinge,"
                                       "precision-at-recall,libauc-aucm")
    p.add_argument("--imratios", default="0.01,0.05", help="grid: imbalance ratios")
    p.add_argument("--seeds", default="0,1,2", help="seeds of every setting")
    p.add_argument("--batch-size", type=int, default=256, help="grid: minibatch size")
    p.add_argument("--batch-sizes", default="64,256,1024,4096",
                   help="size study: minibatch sizes")
    p.add_argument("--size-losses", default="ce,auc-hinge,fscore,fscore-hinge,precision-at-recall",
                   help="size study: losses")
    p.add_argument("--size-imratio", type=float, default=0.05,
                   help="size study: imbalance ratio")
    p.add_argument("--libauc-lrs", default="0.1,0.03,0.01",
                   help="LibAUC learning rates tried on validation (first seed)")
    p.add_argument("--studies", default="grid,size,longtail", help="which studies")
    p.add_argument("--runs", default="runs/bench-train", help="the runs' folders")
    p.add_argument("--out", default="results", help="folder of the CSVs and figures")
    add_arguments(p)
    p.set_defaults(dataset=None, epochs=4)
    args = p.parse_args(argv)
    base = config_from_args(args, dataset=args.dataset or default_dataset())
    rows = run(quick=args.quick, dataset=base.dataset, model=args.model,
               losses=args.losses.split(","), imratios=_floats(args.imratios),
               seeds=_floats(args.seeds, int), epochs=args.epochs,
               batch_size=args.batch_size, batch_sizes=_floats(args.batch_sizes, int),
               size_losses=args.size_losses.split(","), size_imratio=args.size_imratio,
               libauc_lrs=_floats(args.libauc_lrs), studies=args.studies.split(","),
               runs=args.runs, progress=not args.no_progress, base=base)
    write_csv(rows, os.path.join(args.out, "train_runs.csv"))
    summary = summarise(rows)
    cols = ["study", "imratio", "loss", "batch_size", "seeds", "auc", "auc_std",
            "average_precision", "f1_val_threshold", "f1_val_threshold_std", "auc_mu",
            "auc_mu_std", "seconds_per_step"]
    emit(summary, os.path.join(args.out, "train_summary.csv"), cols)
    from .train_figures import batch_size_figure, roc_figure

    for path in (roc_figure(rows, args.out), batch_size_figure(summary, args.out)):
        if path:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
