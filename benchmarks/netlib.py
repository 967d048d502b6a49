"""Every Netlib problem (benchmarks/data/netlib, or $SPARSELP_NETLIB): ours and HiGHS side by side.

Each problem (stored sparse, see :mod:`benchmarks.netlib_data`) is solved by
``sparselp.linprog`` and by ``scipy.optimize.linprog(method="highs")`` in the same run.
Reported: our status, relative objective error against HiGHS's objective of that run
(``|f - f_highs| / max(1, |f_highs|)``), the scaled primal infeasibility, the dual residual
and the gap, and both times. The summary line counts the targets of issue 2: feasible
problems up to 1e4 nonzeros solved to 1e-6 with primal infeasibility <= 1e-6; no other
problem reported optimal; no infeasible problem reported optimal.

Run ``python -m benchmarks.netlib [--max-nnz 10000] [--quick] [--out results/netlib.csv]``.
"""
from __future__ import annotations

import argparse
import csv
import os
import time

from scipy.optimize import linprog as scipy_linprog

from benchmarks.netlib_data import load_index, load_problem, netlib_root

__all__ = ["run", "main", "summarize"]

QUICK = ["AFIRO", "SC50A", "SC105", "ADLITTLE", "BLEND", "galenet", "itest6", "bgprtr"]
COLUMNS = ["name", "kind", "nnz", "status", "rel_err", "primal_res", "dual_res", "gap", "nit",
           "ours_s", "highs_status", "highs_obj", "highs_s", "solved"]


def run(quick: bool = False, max_nnz: int = 10_000, time_limit: float = 60.0,
        names=None, progress=None) -> list[dict]:
    from sparselp import linprog
    root = netlib_root()
    index = load_index(root)
    todo = [r for r in index if int(r["nnz"]) <= max_nnz]
    if quick:
        todo = [r for r in todo if r["name"] in QUICK]
    if names:
        todo = [r for r in todo if r["name"] in names]
    rows = []
    it = progress(todo) if progress else todo
    for r in it:
        p = load_problem(root / r["kind"] / f"{r['name']}.npz")
        p.pop("obj")
        t = time.perf_counter()
        h = scipy_linprog(**p, method="highs", options={"time_limit": 120.0})
        t_h = time.perf_counter() - t
        t = time.perf_counter()
        try:
            res = linprog(**p, options={"time_limit": time_limit, "max_iter": 20_000})
            status, fun = res.status, res.fun
            extra = (res.primal_residual, res.dual_residual, res.gap, res.nit)
        except Exception as e:  # a crash is a result too; record it
            status, fun, extra = 4, float("nan"), (float("nan"),) * 3 + (0,)
            print(f"{r['name']}: {type(e).__name__}: {e}")
        t_o = time.perf_counter() - t
        rel = abs(fun - h.fun) / max(1.0, abs(h.fun)) if h.status == 0 else float("nan")
        row = {"name": r["name"], "kind": r["kind"], "nnz": int(r["nnz"]), "status": status,
               "rel_err": rel, "primal_res": extra[0], "dual_res": extra[1], "gap": extra[2],
               "nit": extra[3], "ours_s": t_o, "highs_status": h.status,
               "highs_obj": h.fun if h.status == 0 else float("nan"), "highs_s": t_h}
        row["solved"] = bool(status == 0 and rel <= 1e-6 and extra[0] <= 1e-6)
        rows.append(row)
        if not progress:
            print(_fmt(row), flush=True)
    return rows


def _fmt(r):
    return (f"{r['name']:10s} {r['kind']:10s} nnz={r['nnz']:6d} status={r['status']} "
            f"err={r['rel_err']:.1e} pinf={r['primal_res']:.1e} dres={r['dual_res']:.1e} "
            f"gap={r['gap']:.1e} nit={r['nit']:5d} ours={r['ours_s']:6.1f}s "
            f"highs={r['highs_s']:.3f}s {'solved' if r['solved'] else ''}")


def summarize(rows) -> dict:
    feas = [r for r in rows if r["kind"] == "feasible"]
    infeas = [r for r in rows if r["kind"] == "infeasible"]
    solved = [r for r in feas if r["solved"]]
    wrong_optimal = [r["name"] for r in feas if r["status"] == 0 and not r["solved"]]
    return {"feasible": len(feas), "solved": len(solved),
            "solved_frac": len(solved) / max(1, len(feas)),
            "feasible_wrongly_optimal": wrong_optimal,
            "infeasible": len(infeas),
            "infeasible_reported_optimal": [r["name"] for r in infeas if r["status"] == 0],
            "infeasible_detected": sum(r["status"] == 2 for r in infeas),
            "ours_total_s": sum(r["ours_s"] for r in rows),
            "highs_total_s": sum(r["highs_s"] for r in rows)}


def write_csv(rows, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="eight small problems")
    ap.add_argument("--max-nnz", type=int, default=10_000)
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per problem")
    ap.add_argument("--names", nargs="*")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: these problems are small, and thread "
                         "start-up dominates each sparse product)")
    ap.add_argument("--out", default="results/netlib.csv")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    rows = run(args.quick, args.max_nnz, args.time_limit, args.names)
    s = summarize(rows)
    print(f"feasible solved to 1e-6: {s['solved']}/{s['feasible']} ({100 * s['solved_frac']:.0f}%); "
          f"feasible reported optimal but not solved: {s['feasible_wrongly_optimal']}; "
          f"infeasible detected {s['infeasible_detected']}/{s['infeasible']}, reported optimal: "
          f"{s['infeasible_reported_optimal']}; time ours {s['ours_total_s']:.1f}s, "
          f"HiGHS {s['highs_total_s']:.1f}s")
    write_csv(rows, args.out)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
