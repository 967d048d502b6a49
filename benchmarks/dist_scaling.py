"""Per-rank peak memory and time of the distributed losses (``process_group=``; AUCLoss by
default, ``--loss fscore|precision`` for the row-sharded coupled LPs) against the number
of ranks: strong scaling (fixed global batch) and weak scaling (fixed pairs
per rank).

Each world size runs in fresh processes (CPU, gloo, one torch thread each, started by
``torch.multiprocessing.spawn``). Every rank builds the same global batch (uniform scores,
half positives, shuffled), takes its contiguous slice as its local batch, runs one small
warm-up loss (so that lazy imports and the first collectives are not counted), resets its
peak-RSS mark and records its resident size (the baseline), then runs forward + backward
of ``AUCLoss(eps, process_group=WORLD)``. Memory per rank is its peak RSS minus that
baseline, as :mod:`benchmarks.peakmem` measures it (with glibc's mmap threshold fixed at
1 MiB so that the peak tracks live memory); a row reports the MAX over ranks of memory and
of time. ``mem_vs_ideal``: the peak over the ideal, ``peak(1 rank) / world`` (strong) or
``peak(1 rank)`` (weak); 1.0 is perfect scaling.

Ranks share the machine's cores: with more ranks than free cores the wall times
(``seconds``) include waiting for a core and, at the collectives, for the slowest rank;
``cpu_seconds`` (the rank's own CPU time, max over ranks) does not.

Run ``python -m benchmarks.dist_scaling [--quick] [--mode strong|weak|both]``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import tempfile
import time

__all__ = ["run", "main", "COLUMNS", "LOSSES"]

LOSSES = ("auc", "fscore", "precision")

COLUMNS = ("mode", "world", "global_batch", "pairs", "rank_pairs", "status", "peak_mb",
           "mem_vs_ideal", "seconds", "cpu_seconds", "loss", "peak_mb_ranks", "error",
           "loss_name", "sharded")


def _worker(rank: int, world: int, init_file: str, out_dir: str, cfg: dict) -> None:
    import torch
    import torch.distributed as dist

    from benchmarks.peakmem import _peak_now, _reset_peak, current_rss

    torch.set_num_threads(cfg["threads"])
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=600))
    dt, n = getattr(torch, cfg["dtype"]), cfg["global_batch"]
    loss = _make_loss(cfg, dist.group.WORLD)
    warm = torch.rand(8, dtype=dt, requires_grad=True)
    loss(warm, torch.arange(8) % 2).backward()
    g = torch.Generator().manual_seed(cfg["seed"])
    scores = torch.rand(n, generator=g, dtype=dt)
    labels = (torch.randperm(n, generator=g) < n // 2).long()
    lo, hi = rank * n // world, (rank + 1) * n // world  # the local batch: a contiguous slice
    local, y = scores[lo:hi].clone().requires_grad_(True), labels[lo:hi].clone()
    n_pos = int(labels.sum())
    if cfg["loss"] == "auc":
        rank_pairs, pairs = len(range(rank, n_pos, world)) * (n - n_pos), n_pos * (n - n_pos)
    else:  # the coupled LPs: two rows a sample (and the global rows)
        rank_pairs, pairs = 2 * (hi - lo), 2 * n + 1
    del scores, labels
    dist.barrier()
    _reset_peak()
    baseline = current_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    value = loss(local, y)
    value.backward()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_now()
    # the coupled losses: certified row-sharded or not (AUC: None, always sharded)
    sharded = None if cfg["loss"] == "auc" else loss.last_path == "closed-form"
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump({"net_rss": peak - baseline, "seconds": seconds, "cpu_seconds": cpu,
                   "loss": value.item(), "rank_pairs": rank_pairs, "pairs": pairs,
                   "sharded": sharded}, fh)
    dist.barrier()
    dist.destroy_process_group()


def _make_loss(cfg: dict, group):
    """The loss of ``cfg["loss"]`` on ``group``."""
    from sparselp.losses import AUCLoss, FScoreLoss, PrecisionAtRecallLoss
    if cfg["loss"] == "auc":
        return AUCLoss(eps=cfg["eps"], surrogate=cfg["surrogate"],
                       block_size=cfg["block_size"], process_group=group)
    if cfg["loss"] == "fscore":
        return FScoreLoss(eps=1.0, process_group=group)
    return PrecisionAtRecallLoss(recall=0.8, eps=1.0, process_group=group)


def _spawn(world: int, cfg: dict, timeout: float) -> dict:
    """Run one world size; the row's measured fields (max over ranks) and its status."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="dist-scaling-") as tmp:
        # Read by each child's glibc at start-up (benchmarks.peakmem explains why).
        old = os.environ.get("MALLOC_MMAP_THRESHOLD_")
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(1 << 20)
        try:
            ctx = mp.spawn(_worker, args=(world, os.path.join(tmp, "init"), tmp, cfg),
                           nprocs=world, join=False)
        finally:
            if old is None:
                del os.environ["MALLOC_MMAP_THRESHOLD_"]
            else:
                os.environ["MALLOC_MMAP_THRESHOLD_"] = old
        start = time.perf_counter()
        try:
            while not ctx.join(timeout=1.0):
                if time.perf_counter() - start > timeout:
                    for p in ctx.processes:
                        p.kill()
                    return {"status": "timeout", "error": f"killed after {timeout:g} s"}
        except Exception as exc:  # a rank raised or died (e.g. out of memory)
            return {"status": "error", "error": str(exc).strip().splitlines()[-1][:300]}
        ranks = []
        for r in range(world):
            with open(os.path.join(tmp, f"rank{r}.json")) as fh:
                ranks.append(json.load(fh))
    mb = [x["net_rss"] / 2**20 for x in ranks]
    return {"status": "ok", "error": "", "peak_mb": max(mb),
            "peak_mb_ranks": "/".join(f"{v:.0f}" for v in mb),
            "seconds": max(x["seconds"] for x in ranks),
            "cpu_seconds": max(x["cpu_seconds"] for x in ranks), "loss": ranks[0]["loss"],
            "pairs": ranks[0]["pairs"], "rank_pairs": max(x["rank_pairs"] for x in ranks),
            "sharded": ranks[0]["sharded"]}


def run(world_sizes=(1, 2, 4), mode: str = "strong", pairs_per_rank: int = 2_500_000,
        global_batch: int = 6325, dtype: str = "float32", eps: float = 0.01,
        surrogate: str = "paper", block_size: int | None = None, threads: int = 1,
        seed: int = 0, timeout: float = 600.0, progress: bool = False,
        loss: str = "auc", samples_per_rank: int = 250_000) -> list[dict]:
    """One row per world size of ``mode``: ``"strong"`` (the global batch is
    ``global_batch`` for every world size) or ``"weak"`` (about ``pairs_per_rank`` pairs on
    each rank: a balanced global batch of ``2 sqrt(world * pairs_per_rank)``; for the
    coupled losses ``samples_per_rank`` samples on each rank).

    ``loss``: ``"auc"`` (``AUCLoss(eps, surrogate)``: each rank solves its share of the
    pairs), ``"fscore"`` (``FScoreLoss(eps=1)``) or ``"precision"``
    (``PrecisionAtRecallLoss(recall=0.8, eps=1)``): each rank holds the rows of its own
    samples (:mod:`sparselp.sharded`; ``sharded`` says whether the last call was certified
    so, rather than solved whole on every rank). For these, ``pairs`` and ``rank_pairs``
    count LP rows (the whole LP's, the most a rank holds).

    Rows: ``mode, world, global_batch, pairs`` (global), ``rank_pairs`` (the most pairs a
    rank solves), ``status, peak_mb`` (max over ranks of peak RSS minus the RSS after
    imports and warm-up, MiB), ``mem_vs_ideal`` (when world 1 is measured), ``seconds``
    (forward + backward wall time, max over ranks), ``cpu_seconds`` (its CPU time, max
    over ranks), ``loss`` (the global loss), ``peak_mb_ranks`` (every rank's peak).
    """
    if mode not in ("strong", "weak"):
        raise ValueError(f"mode must be 'strong' or 'weak', got {mode!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    rows = []
    for world in world_sizes:
        n = global_batch if mode == "strong" else (
            round(2 * math.sqrt(world * pairs_per_rank)) if loss == "auc"
            else world * samples_per_rank)
        cfg = {"global_batch": n, "dtype": dtype, "eps": eps, "surrogate": surrogate,
               "block_size": block_size, "threads": threads, "seed": seed, "loss": loss}
        row = {"mode": mode, "world": world, "global_batch": n, "loss_name": loss}
        row.update(_spawn(world, cfg, timeout))
        rows.append(row)
        if progress:
            print(f"  {mode} world {world}: {row['status']} {row.get('peak_mb', 0):.0f} MiB "
                  f"{row.get('seconds', 0):.2f} s", flush=True)
    one = next((r for r in rows if r["world"] == 1 and r["status"] == "ok"), None)
    for r in rows:
        if one is not None and r["status"] == "ok":
            ideal = one["peak_mb"] / (r["world"] if mode == "strong" else 1)
            r["mem_vs_ideal"] = r["peak_mb"] / ideal
    return rows


def main(argv=None) -> list[dict]:
    """Command line: print the table and write the CSV."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.dist_scaling",
                                description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("strong", "weak", "both"), default="both")
    p.add_argument("--worlds", type=lambda s: tuple(int(v) for v in s.split(",")),
                   default=None, help="comma-separated world sizes (default 1,2,4; "
                                      "1,2 with --quick)")
    p.add_argument("--global-batch", type=int, default=6325,
                   help="strong scaling's global batch (default 6325: 1e7 pairs)")
    p.add_argument("--pairs-per-rank", type=int, default=2_500_000,
                   help="weak scaling's pairs per rank (default 2.5e6)")
    p.add_argument("--loss", choices=LOSSES, default="auc",
                   help="auc (pairs sharded) or the coupled fscore / precision (rows "
                        "sharded); default auc")
    p.add_argument("--samples-per-rank", type=int, default=250_000,
                   help="weak scaling's samples per rank for the coupled losses")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per world size")
    p.add_argument("--quick", action="store_true",
                   help="world sizes 1 and 2, 1e5 pairs (about half a minute)")
    p.add_argument("--out", default=os.path.join("results", "dist_scaling.csv"))
    a = p.parse_args(argv)
    from benchmarks.tables import emit
    worlds, batch, per_rank = a.worlds or (1, 2, 4), a.global_batch, a.pairs_per_rank
    if a.quick:
        worlds, batch, per_rank = a.worlds or (1, 2), 632, 50_000
    rows = []
    for mode in (("strong", "weak") if a.mode == "both" else (a.mode,)):
        rows += run(worlds, mode, per_rank, batch, a.dtype, threads=a.threads,
                    timeout=a.timeout, progress=not a.quick, loss=a.loss,
                    samples_per_rank=a.samples_per_rank)
    return emit(rows, a.out, COLUMNS)


if __name__ == "__main__":
    main()
