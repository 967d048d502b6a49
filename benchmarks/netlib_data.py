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
import scipy.sparse as sp

__all__ = ["DATA", "SPARSE_MARK", "netlib_root", "load_index", "load_problem", "read_arrays",
           "sparse_arrays", "write_sparse"]

DATA = Path(__file__).resolve().parent / "data" / "netlib"
SPARSE_MARK = "A_ub_indptr"  # a key only the sparse layout has
_CSR = ("data", "indices", "indptr", "shape")


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
    with np.load(path) as d:
        if SPARSE_MARK in d.files:
            out = sparse_arrays(d)
        else:  # the dense layout: its object-dtype bounds need pickle; trusted copies only
            with np.load(path, allow_pickle=True) as dp:
                out = _dense_arrays(dp)
        out["obj"] = float(d["obj"]) if "obj" in d.files else float("nan")
    return out


def sparse_arrays(d, error: type[Exception] = ValueError) -> dict:
    """c, A_ub, b_ub, A_eq, b_eq, lb, ub from an open ``.npz`` in the sparse layout.

    Raises ``error`` (a ``ValueError`` subclass such as the file readers' own) naming the
    key when a key is missing or the sizes disagree.
    """
    where = getattr(getattr(d, "fid", None), "name", "npz file")
    vectors = ("c", "b_ub", "b_eq", "lb", "ub")
    keys = list(vectors) + [f"{a}_{k}" for a in ("A_ub", "A_eq") for k in _CSR]
    missing = [k for k in keys if k not in d.files]
    if missing:
        raise error(f"{where}: missing key(s) {missing} of the sparse Netlib layout")
    out = {k: np.asarray(d[k], dtype=np.float64).reshape(-1) for k in vectors}
    n = out["c"].size
    for k in ("lb", "ub"):
        if out[k].size != n:
            raise error(f"{where}: {k} has {out[k].size} entries, expected n = {n} (the size "
                        "of c)")
    for name, rhs in (("A_ub", "b_ub"), ("A_eq", "b_eq")):
        shape = tuple(int(s) for s in d[f"{name}_shape"])
        if shape != (out[rhs].size, n):
            raise error(f"{where}: {name}_shape is {shape}, expected ({out[rhs].size}, {n}) "
                        f"from the sizes of {rhs} and c")
        try:
            out[name] = sp.csr_array((d[f"{name}_data"].astype(np.float64),
                                      d[f"{name}_indices"], d[f"{name}_indptr"]), shape=shape)
            out[name].check_format()
        except ValueError as exc:
            raise error(f"{where}: {name} is not a valid CSR matrix ({exc})") from exc
    return out


def _dense_arrays(d) -> dict:
    """The same arrays from SciPy's dense layout (dense matrices, object-dtype bounds)."""
    c = np.asarray(d["c"], dtype=np.float64).reshape(-1)
    n = c.size
    out = {"c": c}
    for name, rhs in (("A_ub", "b_ub"), ("A_eq", "b_eq")):
        out[name] = sp.csr_array(np.asarray(d[name], dtype=np.float64).reshape(-1, n))
        out[rhs] = np.asarray(d[rhs], dtype=np.float64).reshape(-1)
    out["lb"], out["ub"] = np.zeros(n), np.full(n, np.inf)
    bnd = d["bounds"] if "bounds" in d.files else np.zeros(0)
    if bnd.size:
        bnd = bnd.reshape(-1, 2)
        out["lb"] = np.array([-np.inf if v is None else float(v) for v in bnd[:, 0]])
        out["ub"] = np.array([np.inf if v is None else float(v) for v in bnd[:, 1]])
    return out


def write_sparse(path, arrays: dict) -> None:
    """Write ``arrays`` (as returned by :func:`read_arrays`) in the sparse layout."""
    out = {k: np.asarray(arrays[k], dtype=np.float64) for k in ("c", "b_ub", "b_eq", "lb", "ub")}
    out["obj"] = np.float64(arrays["obj"])
    for name in ("A_ub", "A_eq"):
        A = sp.csr_array(arrays[name])
        A.sort_indices()
        # int32 indices: the largest problem has 1.3e5 nonzeros, and the files stay small.
        out.update({f"{name}_data": A.data.astype(np.float64),
                    f"{name}_indices": A.indices.astype(np.int32),
                    f"{name}_indptr": A.indptr.astype(np.int32),
                    f"{name}_shape": np.array(A.shape, dtype=np.int64)})
    np.savez_compressed(path, **out)


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
