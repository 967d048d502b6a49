"""The solver's starting sigma and tau, swept (``sparselp bench start-sweep``).

Solves the F-score and precision-at-recall LPs (20% positives; seed 0: uniform scores,
seed 1: normal) at each batch size, dtype and start ``sigma0 = tau0``, warm (a first solve
of the same LP before the timed one), one torch thread, and reports Newton steps, outer
steps, whether the answer was polished, and time; the last table sums them per start
(time divided by sqrt(n), so that every size counts). It chose
:data:`sparselp.schedule.STRUCTURED_START`.

``--diagonal`` sweeps the exact diagonal solves instead (the binary AUC LP, 20% positives,
and AUC_mu of 4 classes, eps 1), whose start is ``f / tol``: ``--starts`` are the factors
``f``. It chose :data:`sparselp.schedule.DIAG_START_FLOAT64`.

``python -m benchmarks.start_sweep [--quick] [--diagonal] [--batches 256,1024,...]
[--starts 1,100,300] [--out results/start_sweep.csv]``
"""
from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

__all__ = ["run", "summarize", "main"]

COLUMNS = ("loss", "dtype", "batch", "seed", "start", "status", "nit", "outer", "polished",
           "time_s")
FULL_BATCHES = (256, 1024, 4096, 16384, 65536)
STARTS = (1.0, 100.0, 300.0, 1000.0, 3000.0)
#: the diagonal sweep: batches (4,096 scores at 20% positives: 2.7e6 pairs) and factors
#: of 1 / tol
DIAG_BATCHES = (64, 256, 1024, 4096)
DIAG_FACTORS = (1.0, 3.0, 10.0, 30.0, 100.0)
DIAGONAL = ("auc", "multiclass-auc")


def _lp(loss: str, n: int, dtype, seed: int):
    import torch
    from sparselp.formulations import binary_auc, fscore, multiclass_auc, precision_at_recall
    g = torch.Generator().manual_seed(seed)
    draw = torch.randn if seed % 2 else torch.rand
    if loss == "multiclass-auc":
        return multiclass_auc(draw(n, 4, generator=g, dtype=dtype), torch.arange(n) % 4)
    s = draw(n, generator=g, dtype=dtype)
    y = torch.zeros(n, dtype=torch.long)
    y[:round(0.2 * n)] = 1
    build = {"fscore": fscore, "precision-at-recall": precision_at_recall, "auc": binary_auc}
    return build[loss](s, y)


def run(batches=FULL_BATCHES, starts=STARTS, seeds=(0, 1), dtypes=("float64", "float32"),
        losses=("fscore", "precision-at-recall")) -> list[dict]:
    import torch
    import sparselp
    from sparselp.options import SolverOptions
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
                        # the diagonal LPs' starts are factors of 1 / tol
                        unit = 1.0 if loss not in DIAGONAL else \
                            1 / SolverOptions().tol_for(getattr(torch, dt))
                        for start in starts:
                            t = time.perf_counter()
                            sol = sparselp.solve(lp, sigma0=start * unit, tau0=start * unit)
                            rows.append(dict(loss=loss, dtype=dt, batch=n, seed=seed,
                                             start=start, status=sol.status.name,
                                             nit=sol.nit, outer=sol.outer_iterations,
                                             polished=int(bool(sol.polished.all())),
                                             time_s=time.perf_counter() - t))
    finally:
        torch.set_num_threads(threads)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Per start: Newton steps, outer steps, polished answers, time / sqrt(n) summed;
    uncertified solves."""
    acc = defaultdict(lambda: dict(nit=0, outer=0, polished=0, scaled_time=0.0,
                                   not_optimal=0))
    for r in rows:
        a = acc[r["start"]]
        a["nit"] += r["nit"]
        a["outer"] += r["outer"]
        a["polished"] += r["polished"]
        a["scaled_time"] += r["time_s"] / r["batch"] ** 0.5
        a["not_optimal"] += r["status"] != "OPTIMAL"
    return [dict(start=s, **a) for s, a in sorted(acc.items())]


def main(argv=None) -> list[dict]:
    from benchmarks.tables import emit, print_table
    p = argparse.ArgumentParser(prog="sparselp bench start-sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="batch 256, two starts (1 and 300; diagonal: 1 and 10), seed 0")
    p.add_argument("--diagonal", action="store_true",
                   help="the exact diagonal solves (binary AUC, AUC_mu); starts are factors "
                        "of 1 / tol")
    floats = lambda s: tuple(float(v) for v in s.split(","))  # noqa: E731
    p.add_argument("--batches", type=lambda s: tuple(int(v) for v in s.split(",")))
    p.add_argument("--starts", type=floats)
    p.add_argument("--out", default=os.path.join("results", "start_sweep.csv"))
    a = p.parse_args(argv)
    losses = DIAGONAL if a.diagonal else ("fscore", "precision-at-recall")
    if a.quick:
        rows = run(batches=(256,), starts=(1.0, 10.0) if a.diagonal else (1.0, 300.0),
                   seeds=(0,), losses=losses)
    else:
        rows = run(batches=a.batches or (DIAG_BATCHES if a.diagonal else FULL_BATCHES),
                   starts=a.starts or (DIAG_FACTORS if a.diagonal else STARTS),
                   losses=losses)
    emit(rows, a.out, COLUMNS)
    print_table(summarize(rows), ("start", "nit", "outer", "polished", "scaled_time",
                                  "not_optimal"))
    return rows


if __name__ == "__main__":
    main()
