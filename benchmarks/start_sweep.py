"""The structured strategy's starting sigma and tau, swept (``sparselp bench start-sweep``).

Solves the F-score and precision-at-recall LPs (20% positives; seed 0: uniform scores,
seed 1: normal) at each batch size, dtype and start ``sigma0 = tau0``, warm (a first solve
of the same LP before the timed one), one torch thread, and reports Newton steps, outer
steps and time; the last table sums them per start (time divided by sqrt(n), so that every
size counts). It chose :data:`sparselp.schedule.STRUCTURED_START`.

``python -m benchmarks.start_sweep [--quick] [--batches 256,1024,...] [--starts 1,100,300]
[--out results/start_sweep.csv]``
"""
from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

__all__ = ["run", "summarize", "main"]

COLUMNS = ("loss", "dtype", "batch", "seed", "start", "status", "nit", "outer", "time_s")
FULL_BATCHES = (256, 1024, 4096, 16384, 65536)
STARTS = (1.0, 100.0, 300.0, 1000.0, 3000.0)


def _lp(loss: str, n: int, dtype, seed: int):
    import torch
    from sparselp.formulations import fscore, precision_at_recall
    g = torch.Generator().manual_seed(seed)
    s = (torch.randn if seed % 2 else torch.rand)(n, generator=g, dtype=dtype)
    y = torch.zeros(n, dtype=torch.long)
    y[:round(0.2 * n)] = 1
    return (fscore if loss == "fscore" else precision_at_recall)(s, y)


def run(batches=FULL_BATCHES, starts=STARTS, seeds=(0, 1), dtypes=("float64", "float32"),
        losses=("fscore", "precision-at-recall")) -> list[dict]:
    import torch
    import sparselp
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for n in batches:
            for loss in losses:
                for dt in dtypes:
                    for seed in seeds:
                        lp = _lp(loss, n, getattr(torch, dt), seed)
                        sparselp.solve(lp)  # warm: lazy imports, allocator
                        for start in starts:
                            t = time.perf_counter()
                            sol = sparselp.solve(lp, sigma0=start, tau0=start)
                            rows.append(dict(loss=loss, dtype=dt, batch=n, seed=seed,
                                             start=start, status=sol.status.name,
                                             nit=sol.nit, outer=sol.outer_iterations,
                                             time_s=time.perf_counter() - t))
    finally:
        torch.set_num_threads(threads)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Per start: Newton steps, outer steps, time / sqrt(n) summed; uncertified solves."""
    acc = defaultdict(lambda: dict(nit=0, outer=0, scaled_time=0.0, not_optimal=0))
    for r in rows:
        a = acc[r["start"]]
        a["nit"] += r["nit"]
        a["outer"] += r["outer"]
        a["scaled_time"] += r["time_s"] / r["batch"] ** 0.5
        a["not_optimal"] += r["status"] != "OPTIMAL"
    return [dict(start=s, **a) for s, a in sorted(acc.items())]


def main(argv=None) -> list[dict]:
    from benchmarks.tables import emit, print_table
    p = argparse.ArgumentParser(prog="sparselp bench start-sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="batch 256, starts 1 and 300, seed 0")
    p.add_argument("--batches", type=lambda s: tuple(int(v) for v in s.split(",")),
                   default=FULL_BATCHES)
    p.add_argument("--starts", type=lambda s: tuple(float(v) for v in s.split(",")),
                   default=STARTS)
    p.add_argument("--out", default=os.path.join("results", "start_sweep.csv"))
    a = p.parse_args(argv)
    if a.quick:
        rows = run(batches=(256,), starts=(1.0, 300.0), seeds=(0,))
    else:
        rows = run(batches=a.batches, starts=a.starts)
    emit(rows, a.out, COLUMNS)
    print_table(summarize(rows), ("start", "nit", "outer", "scaled_time", "not_optimal"))
    return rows


if __name__ == "__main__":
    main()
