"""Random feasible LPs with m >> n (Mangasarian's class): our Newton solver against HiGHS.

For each size and storage (dense, sparse) the LP is built once, then solved by
``sparselp.solve`` and by ``scipy.optimize.linprog(method="highs")`` in the same run, so
that the time ratio is measured side by side. Accuracy is measured against the known
optimum ``f* = c^T x*`` of the generator. For sparse A the peak memory of our solve is
measured in a fresh subprocess and compared with the bytes of (A, b, c) stored in CSR.

Run ``python -m benchmarks.random_lp [--quick] [--out results/random_lp.csv]``.
"""
from __future__ import annotations

import argparse
import csv
import gc
import os
import time

import scipy.sparse as sp
import torch

from benchmarks.random_lps import mangasarian_lp

__all__ = ["run", "main", "solve_one"]

FULL_SIZES = [10_000, 100_000, 1_000_000]
QUICK_SIZES = [2_000, 10_000]
N = 100
SPARSE_DENSITY = 0.05


def _csr_bytes(A, b, c) -> int:
    """Bytes of (A, b, c) with A in CSR (float64 values, int64 indices)."""
    nnz = A._nnz() if A.is_sparse else int((A != 0).sum())
    m = A.shape[0]
    return nnz * (8 + 8) + (m + 1) * 8 + (b.numel() + c.numel()) * 8


def highs_one(m: int, n: int = N, density: float | None = None, seed: int = 0) -> dict:
    """Build the same instance and solve it with HiGHS; importable for a subprocess run."""
    c, A, b, x_star = mangasarian_lp(m, n, density=density, seed=seed)
    fstar = float(c @ x_star)
    r, t = _highs(c, A, b)
    return {"status": int(r.status), "time_s": t,
            "rel_err": abs(r.fun - fstar) / max(1.0, abs(fstar)) if r.status == 0 else None}


def _highs(c, A, b):
    if A.is_sparse:
        idx = A.indices().numpy()
        A_np = sp.csr_array((A.values().numpy(), (idx[0], idx[1])), shape=A.shape)
    else:
        A_np = A.numpy()
    from scipy.optimize import linprog
    t = time.perf_counter()
    r = linprog(c.numpy(), A_ub=A_np, b_ub=b.numpy(), bounds=(None, None), method="highs")
    return r, time.perf_counter() - t


def solve_one(m: int, n: int = N, density: float | None = None, seed: int = 0,
              linear_solver: str = "auto") -> dict:
    """Build and solve one instance with our solver; importable for a subprocess run."""
    import sparselp
    from benchmarks.peakmem import _peak_now, _reset_peak, current_rss
    c, A, b, x_star = mangasarian_lp(m, n, density=density, seed=seed)
    # Warm up on a tiny instance so that lazily imported modules (SuperLU, ...) and
    # one-off allocator set-up are not counted as the memory of the solve.
    cw, Aw, bw, _ = mangasarian_lp(50, 5, density=density, seed=seed + 1)
    sparselp.solve(sparselp.LinearProgram(cw, Aw, bw), linear_solver=linear_solver)
    gc.collect()
    # The generator's temporaries must not count: restart the high-water mark here.
    _reset_peak()
    rss0 = current_rss()
    t = time.perf_counter()
    sol = sparselp.solve(sparselp.LinearProgram(c, A, b), linear_solver=linear_solver)
    elapsed = time.perf_counter() - t
    peak = _peak_now() - rss0
    fstar = float(c @ x_star)
    return {"status": sol.status.name, "time_s": elapsed, "nit": sol.nit,
            "rel_err": abs(float(sol.fun) - fstar) / max(1.0, abs(fstar)),
            "primal_res": float(sol.primal_residual), "rss_before": rss0, "solve_peak": peak,
            "csr_bytes": _csr_bytes(A, b, c), "linear_solver": sol.linear_solver}


def run(quick: bool = False, sizes=None, kinds=("dense", "sparse"), measure_memory=True,
        seed: int = 0, highs_timeout: float = 1800.0) -> list[dict]:
    """Rows of the comparison table (one per size and storage).

    HiGHS runs in a fresh subprocess with a time limit (``highs_timeout`` seconds): on the
    largest dense instances it needs tens of GB and may not finish; the row then records
    ``highs_status = "timeout"`` and the time ratio is an upper bound.
    """
    from benchmarks.peakmem import run_isolated
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    rows = []
    for kind in kinds:
        density = None if kind == "dense" else SPARSE_DENSITY
        for m in sizes:
            ours = solve_one(m, N, density, seed)
            gc.collect()
            h = run_isolated("benchmarks.random_lp:highs_one",
                             {"m": m, "n": N, "density": density, "seed": seed},
                             timeout=highs_timeout, threads=1, mem_limit=int(14e9))
            if h.get("status") == "ok":
                h_status, t_h = h["result"]["status"], h["result"]["time_s"]
                h_err = h["result"]["rel_err"]
            else:  # stopped at its time limit (a lower bound on its time) or memory limit
                h_status, h_err = h.get("status", "failed"), None
                t_h = highs_timeout if h_status == "timeout" else float("nan")
            row = {"kind": kind, "m": m, "n": N, "status": ours["status"], "nit": ours["nit"],
                   "ours_s": ours["time_s"], "ours_rel_err": ours["rel_err"],
                   "ours_primal_res": ours["primal_res"],
                   "highs_status": h_status, "highs_s": t_h,
                   "highs_rel_err": float("nan") if h_err is None else h_err,
                   "time_ratio": ours["time_s"] / t_h, "csr_bytes": ours["csr_bytes"],
                   "peak_bytes": float("nan"), "mem_ratio": float("nan")}
            if measure_memory and kind == "sparse":
                iso = run_isolated("benchmarks.random_lp:solve_one",
                                   {"m": m, "n": N, "density": density, "seed": seed},
                                   timeout=1200)
                if iso.get("status") == "ok":
                    peak = iso["result"]["solve_peak"]
                    row["peak_bytes"] = peak
                    row["mem_ratio"] = peak / ours["csr_bytes"]
            rows.append(row)
            print(_fmt(row), flush=True)
    return rows


COLUMNS = ["kind", "m", "n", "status", "nit", "ours_s", "highs_status", "highs_s", "time_ratio",
           "ours_rel_err",
           "highs_rel_err", "ours_primal_res", "csr_bytes", "peak_bytes", "mem_ratio"]


def _fmt(row):
    return (f"{row['kind']:6s} m={row['m']:>8d} {row['status']:>16s} nit={row['nit']:>4d} "
            f"ours={row['ours_s']:8.2f}s highs={row['highs_s']:8.2f}s ({row['highs_status']}) "
            f"ratio={row['time_ratio']:6.3f} err={row['ours_rel_err']:.1e} "
            f"mem/csr={row['mem_ratio']:.2f}")


def write_csv(rows, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    ap.add_argument("--sizes", type=int, nargs="*", help="values of m (default 1e4 1e5 1e6)")
    ap.add_argument("--kinds", nargs="*", default=["dense", "sparse"])
    ap.add_argument("--no-memory", action="store_true", help="skip the subprocess memory runs")
    ap.add_argument("--highs-timeout", type=float, default=1800.0,
                    help="seconds before the HiGHS subprocess is stopped")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1, like HiGHS: a like-for-like comparison)")
    ap.add_argument("--out", default="results/random_lp.csv")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run(args.quick, args.sizes, tuple(args.kinds), not args.no_memory,
               highs_timeout=args.highs_timeout)
    write_csv(rows, args.out)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
