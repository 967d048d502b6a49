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

__all__ = ["loss_step", "refuse_step", "run", "run_planner", "run_chunked", "run_refusal",
           "run_distributed", "main"]

_PRELOAD = ("sparselp.losses",)
COLUMNS = ("part", "loss", "dtype", "batch", "pairs", "block_size", "status", "predicted_mb",
           "measured_mb", "ratio", "total_s", "loss_value", "note")


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
        return AUCLoss(surrogate="paper", block_size=block_size, **kwargs)
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


def refuse_step(batch: int = 10**6, budget: str = "1GB") -> dict:
    """An over-budget request (AUC_mu over ``batch`` scores): must raise before the LP
    exists. Returns whether it was refused and ``allocated``: the peak RSS during the call
    over the RSS just before it (the scores themselves are the caller's)."""
    import torch
    import sparselp
    g = torch.Generator().manual_seed(0)
    s = torch.rand(batch, generator=g)
    scores, labels = torch.stack([s, -s], 1), torch.arange(batch) % 2
    loss = sparselp.MultiClassAUCLoss(2, memory_budget=budget)
    from benchmarks.peakmem import _peak_now, _reset_peak, current_rss
    _reset_peak()
    before = current_rss()
    try:
        loss(scores, labels)
    except sparselp.MemoryBudgetError as exc:
        return {"refused": True, "error": str(exc), "allocated": _peak_now() - before}
    return {"refused": False, "error": "", "allocated": _peak_now() - before}


def _predict(cfg: dict) -> int:
    import torch
    from sparselp.planner import chunk_peak_bytes, plan
    dt = getattr(torch, cfg.get("dtype", "float32"))
    batch, frac = cfg["batch"], cfg.get("pos_frac", 0.5)
    if cfg.get("block_size"):
        n_pos = max(1, round(batch * frac))
        return chunk_peak_bytes([batch - n_pos, n_pos], cfg["block_size"], dt, "cpu")
    loss = make_loss(cfg["loss"], cfg.get("num_classes", 10))
    if cfg["loss"] == "multiclass-auc":
        K = cfg.get("num_classes", 10)
        counts = [(batch - k + K - 1) // K for k in range(K)]  # labels arange(batch) % K
        return plan(loss, batch, memory_budget=1e15, dtype=dt, world_sizes=(),
                    class_counts=counts).options[0].peak_bytes
    return plan(loss, batch, frac, memory_budget=1e15, dtype=dt,
                world_sizes=()).options[0].peak_bytes


def _measure(part: str, cfgs, timeout: float, progress: bool) -> list[dict]:
    from benchmarks.peakmem import run_isolated
    rows = []
    for cfg in cfgs:
        r = run_isolated("benchmarks.scale:loss_step", cfg, timeout=timeout, threads=1,
                         preload=_PRELOAD)
        n_pos = max(1, round(cfg["batch"] * cfg.get("pos_frac", 0.5)))
        pred = _predict(cfg) / 2**20
        row = {"part": part, "loss": cfg["loss"], "dtype": cfg.get("dtype", "float32"),
               "batch": cfg["batch"], "pairs": n_pos * (cfg["batch"] - n_pos)
               if cfg["loss"].startswith("auc") else None,
               "block_size": cfg.get("block_size"), "status": r["status"],
               "predicted_mb": pred, "note": r["error"]}
        if r["net_rss"] is not None and r["status"] == "ok":
            row["measured_mb"] = r["net_rss"] / 2**20
            row["ratio"] = pred / row["measured_mb"]
        if r["result"]:
            row.update(total_s=r["result"]["total_s"], loss_value=r["result"]["loss_value"])
        rows.append(row)
        if progress:
            print(f"  {part} {cfg}: {row['status']} predicted {pred:.0f} MiB, measured "
                  f"{row.get('measured_mb', float('nan')):.0f} MiB", flush=True)
    return rows


#: the memory benchmark's grid for AUCLoss (benchmarks/memory_lp.py, "ours"), and the
#: other losses from 1,024 to 65,536 samples
PLANNER_GRID = (
    [{"loss": "auc", "batch": b} for b in (16, 64, 200, 1000, 2000, 4000, 6325)]
    + [{"loss": "auc", "batch": b, "pos_frac": 0.1} for b in (200, 2000, 6325)]
    + [{"loss": "auc", "batch": b, "dtype": "float64"} for b in (632, 2000, 4000)]
    + [{"loss": "auc-hinge", "batch": 2000}]
    + [{"loss": "multiclass-auc", "batch": b} for b in (1000, 3000)]
    + [{"loss": "fscore", "batch": b} for b in (1024, 4096, 16384, 65536)]
    + [{"loss": "precision-at-recall", "batch": b} for b in (1024, 4096, 65536)]
    + [{"loss": "fscore", "batch": 16384, "dtype": "float64"},
       {"loss": "precision-at-recall", "batch": 65536, "dtype": "float64"}]
    + [{"loss": "auc", "batch": 6325, "block_size": k} for k in (50_000, 250_000, 1_000_000)])
QUICK_GRID = ({"loss": "auc", "batch": 64}, {"loss": "auc", "batch": 632},
              {"loss": "auc", "batch": 632, "block_size": 20_000},
              {"loss": "fscore", "batch": 128})


def run_planner(grid=PLANNER_GRID, timeout: float = 600.0, progress: bool = False):
    """Predicted against measured peak for each configuration of ``grid``."""
    return _measure("planner", grid, timeout, progress)


def run_chunked(batches=(6325, 20000), budget: str = "512MB", timeout: float = 600.0,
                progress: bool = False, floor_max_batch: int = 6325) -> list[dict]:
    """AUCLoss with ``memory_budget`` (so the planner picks the block size) at each batch
    (6,325: 1e7 pairs; 20,000: 1e8), and the closed-form floor where it fits."""
    import torch
    from sparselp.planner import plan
    cfgs = []
    for b in batches:
        block = plan("auc", b, memory_budget=budget, dtype=torch.float32).chosen
        cfgs.append({"loss": "auc", "batch": b, "block_size":
                     (block.settings.get("block_size") if block else None)})
    rows = _measure("chunked", cfgs, timeout, progress)
    for r in rows:
        r["note"] = r["note"] or f"budget {budget}"
    from benchmarks.memory_lp import step  # noqa: F401  (the floor's child function)
    from benchmarks.peakmem import run_isolated
    for b in batches:
        if b > floor_max_batch:
            continue
        f = run_isolated("benchmarks.memory_lp:step", {"version": "floor", "batch": b},
                         timeout=timeout, threads=1, preload=_PRELOAD)
        rows.append({"part": "chunked", "loss": "floor", "dtype": "float32", "batch": b,
                     "pairs": (b // 2) * (b - b // 2), "status": f["status"],
                     "measured_mb": f["net_rss"] / 2**20 if f["net_rss"] else None,
                     "total_s": f["result"]["total_s"] if f["result"] else None,
                     "note": "closed form z = relu(eps - gap)"})
    return rows


def run_refusal(batch: int = 10**6, budget: str = "1GB") -> list[dict]:
    """The memory an over-budget request takes before it is refused."""
    from benchmarks.peakmem import run_isolated
    r = run_isolated("benchmarks.scale:refuse_step", {"batch": batch, "budget": budget},
                     timeout=300, threads=1, preload=_PRELOAD)
    ok = bool(r["result"] and r["result"]["refused"])
    return [{"part": "refusal", "loss": "multiclass-auc", "dtype": "float32", "batch": batch,
             "pairs": (batch // 2) ** 2, "status": "refused" if ok else "NOT refused",
             "measured_mb": r["result"]["allocated"] / 2**20 if r["result"] else None,
             "note": (r["result"] or {}).get("error") or r["error"]}]


def run_distributed(quick: bool = False, progress: bool = False) -> list[dict]:
    """Strong and weak scaling of the distributed AUCLoss (:mod:`benchmarks.dist_scaling`),
    and strong scaling of the row-sharded FScoreLoss, with the planner's per-rank
    prediction beside the measured peak. The ranks measure after a warm-up, so the
    prediction is taken without the one-off C0."""
    from benchmarks import dist_scaling
    from sparselp.memory_model import C0, LPSize, closed_form_peak_bytes, lp_peak_bytes
    worlds = (1, 2) if quick else (1, 2, 4)
    batch, per_rank = (632, 50_000) if quick else (6325, 2_500_000)
    coupled_batch = 100_000 if quick else 500_000
    runs = [("auc", mode, dist_scaling.run(worlds, mode, per_rank, batch, progress=progress))
            for mode in ("strong", "weak")]
    runs.append(("fscore", "strong", dist_scaling.run(
        worlds, "strong", global_batch=coupled_batch, progress=progress, loss="fscore")))
    rows = []
    for loss, mode, results in runs:
        for r in results:
            pred = (lp_peak_bytes(LPSize.pairs(r.get("rank_pairs") or 0, 4)) if loss == "auc"
                    else closed_form_peak_bytes(loss, r["global_batch"], r["world"],
                                                gathered=True)) - C0
            pred /= 2**20
            row = {"part": f"{mode} x{r['world']}", "loss": loss, "dtype": "float32",
                   "batch": r["global_batch"], "pairs": r.get("pairs"),
                   "block_size": r.get("rank_pairs"), "status": r["status"],
                   "predicted_mb": pred, "measured_mb": r.get("peak_mb"),
                   "total_s": r.get("seconds"), "loss_value": r.get("loss"),
                   "note": r.get("error") or (f"mem/ideal {r['mem_vs_ideal']:.2f}, cpu "
                                               f"{r['cpu_seconds']:.2f} s"
                                               if r.get("mem_vs_ideal") else "")}
            if row["measured_mb"]:
                row["ratio"] = pred / row["measured_mb"]
            rows.append(row)
    return rows


#: the report's grid: the memory benchmark's sizes of section (a), the other losses once
#: each, one chunked block size (the full grid is ``sparselp bench scale``)
REPORT_GRID = (
    [{"loss": "auc", "batch": b} for b in (16, 64, 160, 1000, 2000, 6325)]
    + [{"loss": "auc", "batch": b, "pos_frac": 0.1} for b in (160, 2000, 6325)]
    + [{"loss": "multiclass-auc", "batch": 1000}, {"loss": "fscore", "batch": 16384},
       {"loss": "precision-at-recall", "batch": 65536},
       {"loss": "auc", "batch": 6325, "block_size": 250_000}])


def run(quick: bool = False, parts=("planner", "chunked", "refusal", "distributed"),
        budget: str = "512MB", progress: bool = False) -> list[dict]:
    """All parts, as the report calls them (``quick``: a few small configurations)."""
    rows = []
    if "planner" in parts:
        rows += run_planner(QUICK_GRID if quick else REPORT_GRID, progress=progress)
    if "chunked" in parts:
        rows += run_chunked((632,) if quick else (6325, 20000), budget, progress=progress)
    if "refusal" in parts:
        rows += run_refusal(10**5 if quick else 10**6)
    if "distributed" in parts:
        rows += run_distributed(quick, progress=progress)
    return rows


def main(argv=None) -> list[dict]:
    """Command line: print the table and write the CSV."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale",
                                description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few small configurations (< 1 min)")
    p.add_argument("--parts", default="planner,chunked,refusal,distributed",
                   help="comma-separated subset of planner,chunked,refusal,distributed")
    p.add_argument("--budget", default="512MB", help="the chunked part's memory budget")
    p.add_argument("--out", default=os.path.join("results", "scale.csv"))
    a = p.parse_args(argv)
    parts = a.parts.split(",")
    unknown = set(parts) - {"planner", "chunked", "refusal", "distributed"}
    if unknown:
        p.error(f"--parts: unknown {sorted(unknown)}")
    from benchmarks.tables import emit
    rows = []
    if "planner" in parts:  # the full grid here; the report runs REPORT_GRID
        rows += run_planner(QUICK_GRID if a.quick else PLANNER_GRID, progress=not a.quick)
    rows += run(a.quick, [x for x in parts if x != "planner"], a.budget, not a.quick)
    return emit(rows, a.out, COLUMNS)


if __name__ == "__main__":
    main()
