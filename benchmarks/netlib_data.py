"""Loading the Netlib LP set (../shared/data/netlib): sparse matrices, HiGHS references."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["netlib_root", "load_index", "load_problem"]


def netlib_root() -> Path:
    """The Netlib folder: $SPARSELP_NETLIB, else ../shared/data/netlib beside the repo."""
    env = os.environ.get("SPARSELP_NETLIB")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    for cand in (here.parent / "shared" / "data" / "netlib", here / "shared" / "data" / "netlib"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("Netlib data not found: set SPARSELP_NETLIB to the folder holding "
                            "index.csv, feasible/ and infeasible/")


def load_index(root: Path | None = None) -> list[dict]:
    root = root or netlib_root()
    with open(root / "index.csv") as f:
        return list(csv.DictReader(f))


def load_problem(path) -> dict:
    """Load one ``.npz`` in the Netlib layout as linprog arguments with sparse matrices."""
    d = np.load(path, allow_pickle=True)
    c = np.asarray(d["c"], dtype=np.float64).reshape(-1)
    n = c.size
    out = {"c": c, "bounds": (0, None)}
    for key in ("A_ub", "A_eq"):
        A = d[key]
        if A.size:
            out[key] = sp.csr_array(np.asarray(A, dtype=np.float64).reshape(-1, n))
            out["b_" + key[2:]] = np.asarray(d["b_" + key[2:]], dtype=np.float64).reshape(-1)
    bnd = d["bounds"]
    if bnd.size:
        out["bounds"] = [tuple(r) for r in bnd.reshape(-1, 2).tolist()]
    out["obj"] = float(d["obj"]) if "obj" in d else float("nan")
    return out
