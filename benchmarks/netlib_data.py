r"""The Netlib LP set: where it lives, its index, and its two ``.npz`` layouts.

Every problem is scipy's ``linprog`` form

.. math::

    \min_x \; c^T x \quad \text{s.t.} \quad A_{ub} x \le b_{ub}, \quad A_{eq} x = b_{eq},
    \quad lb \le x \le ub .

The copy shipped with the package (``benchmarks/data/netlib``, see its README.md) uses the
*sparse layout*: the matrices as CSR arrays (``A_ub_data``, ``A_ub_indices``,
``A_ub_indptr``, ``A_ub_shape`` and the same for ``A_eq``), ``c``, ``b_ub``, ``b_eq``,
``lb``, ``ub`` as float64 with infinite bounds as ``+-inf``, and ``obj``; no object
arrays, so it loads without pickle. ``$SPARSELP_NETLIB`` may point at another copy, in
that layout or in the *dense layout* of SciPy's benchmark files (dense ``A_ub``, ``A_eq``
and an object-dtype ``bounds`` with ``None`` for an infinite bound).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

# The file layouts belong to the library's readers; re-exported for the data scripts.
from sparselp.io.npz import SPARSE_MARK, read_npz, sparse_arrays, write_sparse

__all__ = ["DATA", "SPARSE_MARK", "netlib_root", "load_index", "load_problem", "read_arrays",
           "sparse_arrays", "write_sparse"]

DATA = Path(__file__).resolve().parent / "data" / "netlib"


def netlib_root() -> Path:
    """The Netlib folder: ``$SPARSELP_NETLIB`` if set, else the copy in this package.

    Raises
    ------
    FileNotFoundError
        The folder has no ``index.csv``.
    """
    env = os.environ.get("SPARSELP_NETLIB")
    root = Path(env) if env else DATA
    if not (root / "index.csv").is_file():
        where = f"$SPARSELP_NETLIB = {env}" if env else str(root)
        raise FileNotFoundError(f"Netlib data not found ({where} has no index.csv): point "
                                "SPARSELP_NETLIB at a folder holding index.csv, feasible/ "
                                "and infeasible/")
    return root


def load_index(root: Path | None = None) -> list[dict]:
    """The rows of ``index.csv`` (sizes, reference and HiGHS objectives) as string dicts."""
    root = root or netlib_root()
    with open(root / "index.csv", newline="") as f:
        return list(csv.DictReader(f))


def read_arrays(path) -> dict:
    """One problem file, either layout, as c, A_ub, b_ub, A_eq, b_eq, lb, ub and obj.

    Matrices are ``scipy.sparse.csr_array`` of shape (m, n), with m = 0 for an absent
    block; ``obj`` is the stored reference objective (NaN when the file has none).
    """
    lp = read_npz(path)
    out = {k: getattr(lp, k) for k in ("c", "A_ub", "b_ub", "A_eq", "b_eq", "lb", "ub")}
    with np.load(path) as d:  # obj is a plain float64: no pickle needed to read it alone
        out["obj"] = float(d["obj"]) if "obj" in d.files else float("nan")
    return out


def load_problem(path) -> dict:
    """One problem file as ``linprog`` keyword arguments, plus its reference ``obj``.

    Empty constraint blocks are left out; ``bounds`` is ``(0, None)`` when every variable
    has the default bounds, else a list of ``(lb, ub)`` with ``None`` for an infinite side.
    """
    a = read_arrays(path)
    out = {"c": a["c"], "bounds": (0, None)}
    for name, rhs in (("A_ub", "b_ub"), ("A_eq", "b_eq")):
        if a[name].shape[0]:
            out[name], out[rhs] = a[name], a[rhs]
    lb, ub = a["lb"], a["ub"]
    if np.any(lb != 0) or np.any(ub != np.inf):
        out["bounds"] = [(None if np.isinf(lo) else float(lo), None if np.isinf(hi) else float(hi))
                         for lo, hi in zip(lb, ub)]
    out["obj"] = a["obj"]
    return out
