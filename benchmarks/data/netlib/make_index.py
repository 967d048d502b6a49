"""Build index.csv for a folder of Netlib LP problems stored as .npz files.

Run from the repository root::

    python -m benchmarks.data.netlib.make_index [ROOT] [--time-limit 120] [--max-nnz N]
                                                [--out FILE]

ROOT defaults to this folder. The script reads every ROOT/feasible/*.npz and
ROOT/infeasible/*.npz (either layout, see ``benchmarks.netlib_data``), solves each problem
with ``scipy.optimize.linprog(method="highs")`` and writes ROOT/index.csv (or FILE).
``--max-nnz N`` skips the solve (status ``skipped``) for problems with more than N
nonzeros in A_ub and A_eq together; their sizes are still recorded. Adapted from the
script that built the index of the dense copy (same columns, same status words).
"""
from __future__ import annotations

import argparse
import csv
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import linprog

from benchmarks.netlib_data import read_arrays

HERE = Path(__file__).resolve().parent
COLUMNS = ["name", "kind", "n_vars", "n_ineq", "n_eq", "nnz", "has_bounds",
           "reference_objective", "highs_status", "highs_objective", "highs_seconds"]
# scipy.optimize.linprog result codes, written as words in the index.
STATUS_WORDS = {0: "optimal", 1: "limit_reached", 2: "infeasible", 3: "unbounded",
                4: "numerical_error"}


def solve(prob: dict, time_limit: float):
    """HiGHS (scipy's default simplex) on ``prob``: the result and its wall-clock seconds."""
    kwargs = {"c": prob["c"], "bounds": np.column_stack([prob["lb"], prob["ub"]]),
              "method": "highs", "options": {"time_limit": float(time_limit)}}
    for name, rhs in (("A_ub", "b_ub"), ("A_eq", "b_eq")):
        if prob[name].shape[0]:
            kwargs[name], kwargs[rhs] = prob[name], prob[rhs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        res = linprog(**kwargs)
    return res, time.perf_counter() - start


def index_row(path: Path, kind: str, time_limit: float, max_nnz: int | None) -> dict:
    """The index row of one problem file: its sizes, reference value and HiGHS result."""
    prob = read_arrays(path)
    nnz = prob["A_ub"].nnz + prob["A_eq"].nnz
    row = {"name": path.stem, "kind": kind, "n_vars": prob["c"].size,
           "n_ineq": prob["A_ub"].shape[0], "n_eq": prob["A_eq"].shape[0], "nnz": nnz,
           "has_bounds": int(bool(np.any(prob["lb"] != 0) or np.any(prob["ub"] != np.inf))),
           # Infeasible problems carry obj = 0.0 as a placeholder, not an optimal value.
           "reference_objective": repr(prob["obj"]) if kind == "feasible" else "",
           "highs_status": "skipped", "highs_objective": "", "highs_seconds": ""}
    if max_nnz is None or nnz <= max_nnz:
        try:
            res, seconds = solve(prob, time_limit)
            row["highs_status"] = STATUS_WORDS.get(res.status, str(res.status))
            row["highs_objective"] = repr(float(res.fun)) if res.status == 0 else ""
            row["highs_seconds"] = f"{seconds:.3f}"
        except Exception as exc:  # record and go on
            row["highs_status"] = f"error: {type(exc).__name__}"
    return row


def index_folder(root: Path, time_limit: float, max_nnz: int | None) -> list[dict]:
    """The index rows of every problem under ``root``, feasible ones first, by name."""
    rows = []
    for kind in ("feasible", "infeasible"):
        for path in sorted((root / kind).glob("*.npz")):
            row = index_row(path, kind, time_limit, max_nnz)
            rows.append(row)
            print(f"{kind:10s} {row['name']:10s} nnz={row['nnz']:<7d} {row['highs_status']:15s} "
                  f"{row['highs_objective']} {row['highs_seconds']}", flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", type=Path, default=HERE)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--max-nnz", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="default: ROOT/index.csv")
    args = ap.parse_args(argv)
    rows = index_folder(args.root, args.time_limit, args.max_nnz)
    out = args.out or args.root / "index.csv"
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out} ({len(rows)} problems)")


if __name__ == "__main__":
    main()
