"""Every loss against the batch size: forward + backward time, status and peak memory.

``python -m benchmarks.loss_scaling [--quick] [--baseline scipy] [--device cuda]
[--out results/loss_scaling.csv]``
(``sparselp bench loss-scaling``). Each configuration runs in a fresh process
(:func:`benchmarks.peakmem.run_isolated`, one torch thread): the loss is called once on
a batch of 64 (lazy imports and first-call costs), then forward + backward is timed on the
batch, with 20% positives (``MultiClassAUCLoss``: K = 10 balanced classes). Columns:

- ``status``: ``OPTIMAL`` when the loss's LP was certified (the loss warns otherwise:
  ``ITERATION_LIMIT`` and the residuals), else the child's failure (timeout, memory);
- ``time_s``: forward + backward on the batch; ``peak_mib``: peak resident set size of the
  child over its size after the imports (on a CUDA ``--device``: the device's
  ``torch.cuda.max_memory_allocated``), and ``bytes_per_sample`` the same per sample;
- ``solver``: ``auto``, the losses as users get them (the F-score and precision-at-recall
  losses answer from their certified closed form, no solve); a baseline (``--baseline
  structured,scipy``, up to ``--baseline-max``) runs those two losses through the solver
  instead (``closed_form=False``) with that ``linear_solver``: ``structured`` is what the
  solver picks for them, SciPy's SuperLU the choice before it.

The pairwise losses are quadratic in the batch: they are skipped above ``--max-pairs``
pairs (2e7 by default; the scale benchmark measures them further, chunked).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

__all__ = ["run", "main", "loss_step", "LOSSES", "pairs"]

LOSSES = ("auc", "multiclass-auc", "fscore", "precision-at-recall")
RATIO_LOSSES = ("fscore", "precision-at-recall")
FULL_BATCHES = (256, 1024, 4096, 16384, 65536)
QUICK_BATCHES = (256,)
COLUMNS = ("loss", "dtype", "batch", "solver", "status", "time_s", "peak_mib",
           "bytes_per_sample", "pairs", "device", "error")
NUM_CLASSES = 10
POS_FRAC = 0.2


def pairs(loss: str, batch: int) -> int:
    """Pairs of the pairwise LPs at this batch (0 for the ratio losses)."""
    if loss == "auc":
        p = max(1, round(batch * POS_FRAC))
        return p * (batch - p)
    if loss == "multiclass-auc":
        counts = [batch // NUM_CLASSES + (i < batch % NUM_CLASSES) for i in range(NUM_CLASSES)]
        return sum(counts[i] * counts[j] for i in range(NUM_CLASSES)
                   for j in range(i + 1, NUM_CLASSES))
    return 0


def _data(loss: str, batch: int, dtype, seed: int, device="cpu"):
    """Scores uniform in [0, 1) (a (batch, K) matrix for the multi-class loss) and labels:
    the first 20% positive, or K balanced classes (drawn on the CPU, then moved)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    if loss == "multiclass-auc":
        scores = torch.rand(batch, NUM_CLASSES, generator=g, dtype=dtype)
        labels = torch.arange(batch) % NUM_CLASSES
    else:
        labels = torch.zeros(batch, dtype=torch.long)
        labels[:max(1, round(batch * POS_FRAC))] = 1
        scores = torch.rand(batch, generator=g, dtype=dtype)
    return scores.to(device).requires_grad_(), labels.to(device)


def loss_step(loss: str, batch: int, dtype: str = "float32", solver: str = "auto",
              seed: int = 0, device: str = "cpu") -> dict:
    """Forward + backward of one loss after a warm-up call (what each child runs); on a
    CUDA ``device`` timed up to the device's synchronisation."""
    import torch

    from benchmarks.scale import make_loss
    kwargs = {} if solver == "auto" else {"linear_solver": solver, "closed_form": False,
                                          "options": {"linear_solver": solver}}
    fn = make_loss(loss, NUM_CLASSES, **kwargs)
    dt = getattr(torch, dtype)
    cuda = torch.device(device).type == "cuda"
    fn(*_data(loss, 64, dt, seed + 1, device)).backward()
    scores, labels = _data(loss, batch, dt, seed, device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        value = fn(scores, labels)
        value.backward()
        if cuda:
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - t0
    bad = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)
           and "LP layer" in str(w.message)]
    status = "OPTIMAL" if not bad else bad[0].split(" is ")[1].split(":")[0]
    return {"time_s": elapsed, "status": status, "loss_value": float(value.detach()),
            "message": bad[0][:300] if bad else ""}


def _row(loss, dtype, batch, solver, timeout, device="cpu") -> dict:
    from benchmarks.peakmem import run_isolated
    r = run_isolated("benchmarks.loss_scaling:loss_step",
                     {"loss": loss, "batch": batch, "dtype": dtype, "solver": solver,
                      "device": device},
                     timeout=timeout, device=device, threads=1, preload=("sparselp.losses",))
    res = r["result"] or {}
    # On a GPU the peak is the device's (torch.cuda.max_memory_allocated), else RSS.
    net = r["cuda_peak"] if device != "cpu" else r["net_rss"]
    return {"loss": loss, "dtype": dtype, "batch": batch, "solver": solver, "device": device,
            "status": res.get("status", r["status"]), "time_s": res.get("time_s"),
            "peak_mib": None if net is None else net / 2 ** 20,
            "bytes_per_sample": None if net is None else net / batch,
            "pairs": pairs(loss, batch) or None, "loss_value": res.get("loss_value"),
            "error": (res.get("message") or r["error"])[:200]}


def run(batches=FULL_BATCHES, losses=LOSSES, dtypes=("float32", "float64"),
        baseline: tuple = (), baseline_max: int = 4096, max_pairs: float = 2e7,
        timeout: float = 300.0, verbose: bool = False, device: str = "cpu") -> list[dict]:
    """One row per (loss, dtype, batch, solver); ``baseline`` strategies (e.g. ``("scipy",)``)
    run for the ratio losses up to ``baseline_max``, beside ``auto``; ``device`` (e.g.
    ``"cuda"``) holds the scores, and the peak is then the device's memory."""
    rows = []
    for loss in losses:
        for dtype in dtypes:
            for batch in batches:
                if pairs(loss, batch) > max_pairs:
                    continue
                solvers = ("auto",) + tuple(s for s in baseline if loss in RATIO_LOSSES
                                            and batch <= baseline_max)
                for solver in solvers:
                    rows.append(_row(loss, dtype, batch, solver, timeout, device))
                    if verbose:
                        print({k: rows[-1][k] for k in COLUMNS[:7]}, flush=True)
    return rows


def main(argv=None) -> list[dict]:
    from benchmarks.tables import print_table, write_csv
    p = argparse.ArgumentParser(prog="sparselp bench loss-scaling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="batch 256, float32 only")
    p.add_argument("--batches", default=None, help="comma-separated batch sizes")
    p.add_argument("--losses", default=",".join(LOSSES), help="comma-separated losses")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--baseline", default="",
                   help="solver paths to compare for the ratio losses, e.g. structured,scipy")
    p.add_argument("--baseline-max", type=int, default=4096)
    p.add_argument("--max-pairs", type=float, default=2e7)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per configuration")
    p.add_argument("--device", default="cpu", help="where the scores live (e.g. cuda)")
    p.add_argument("--out", default=os.path.join("results", "loss_scaling.csv"))
    a = p.parse_args(argv)
    batches = QUICK_BATCHES if a.quick else FULL_BATCHES
    if a.batches:
        batches = tuple(int(b) for b in a.batches.split(","))
    dtypes = ("float32",) if a.quick else tuple(a.dtypes.split(","))
    rows = run(batches, tuple(a.losses.split(",")), dtypes,
               tuple(s for s in a.baseline.split(",") if s), a.baseline_max, a.max_pairs,
               a.timeout, device=a.device)
    print_table(rows, COLUMNS[:-1])
    write_csv(rows, a.out, COLUMNS)
    return rows


if __name__ == "__main__":
    main()
