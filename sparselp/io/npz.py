"""Read and write LPs as ``.npz`` files in the two Netlib layouts.

The *sparse layout* (the copy in ``benchmarks/data/netlib``): CSR arrays ``A_ub_data``,
``A_ub_indices``, ``A_ub_indptr``, ``A_ub_shape`` (and the same for ``A_eq``), ``c``,
``b_ub``, ``b_eq``, ``lb``, ``ub`` as float64 with ``+-inf`` bounds, and ``obj``; it loads
without pickle. The *dense layout* of SciPy's benchmark files: dense ``A_ub``, ``A_eq`` and
an object-dtype ``bounds`` with ``None`` for an infinite side.
"""
from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from .lpdata import LPData, LPFileError

__all__ = ["read_npz", "sparse_arrays", "write_sparse", "SPARSE_MARK"]

SPARSE_MARK = "A_ub_indptr"  # a key only the sparse layout has
_CSR = ("data", "indices", "indptr", "shape")


def read_npz(path: str | os.PathLike) -> LPData:
    """Read an ``.npz`` in either Netlib layout (see the module docstring).

    The object-dtype ``bounds`` arrays of the dense layout need ``allow_pickle=True``; only
    open files from a trusted source.

    Raises
    ------
    LPFileError
        The file is not a readable ``.npz``, lacks a key, or its shapes disagree.
    """
    path = os.fspath(path)
    try:
        d = np.load(path, allow_pickle=True)
    except Exception as exc:
        raise LPFileError(f"{path}: not a readable .npz file ({exc})") from exc
    if SPARSE_MARK in d.files:
        name = os.path.splitext(os.path.basename(path))[0]
        return LPData(name, **sparse_arrays(d, LPFileError))
    missing = [k for k in ("c", "A_ub", "b_ub", "A_eq", "b_eq") if k not in d.files]
    if missing:
        raise LPFileError(f"{path}: missing key(s) {missing}; expected the Netlib layout "
                          "c, A_ub, b_ub, A_eq, b_eq[, bounds]")
    c = np.asarray(d["c"], dtype=float).ravel()
    n = c.size
    if n == 0:
        raise LPFileError(f"{path}: c is empty")
    A_ub, b_ub = _block(path, d, "A_ub", "b_ub", n)
    A_eq, b_eq = _block(path, d, "A_eq", "b_eq", n)
    lb, ub = np.zeros(n), np.full(n, np.inf)
    if "bounds" in d.files and d["bounds"].size:
        bnd = d["bounds"].reshape(-1, 2)
        if bnd.shape[0] != n:
            raise LPFileError(f"{path}: bounds has {bnd.shape[0]} rows, expected n = {n}")
        lb = np.array([-np.inf if v is None else float(v) for v in bnd[:, 0]])
        ub = np.array([np.inf if v is None else float(v) for v in bnd[:, 1]])
    name = os.path.splitext(os.path.basename(path))[0]
    return LPData(name, c, A_ub, b_ub, A_eq, b_eq, lb, ub)


def _block(path: str, d, key_A: str, key_b: str, n: int):
    """The constraint block ``(A, b)`` stored under ``key_A``, ``key_b``; A as CSR (m, n)."""
    A, b = np.asarray(d[key_A]), np.asarray(d[key_b], dtype=float).ravel()
    if A.size == 0:
        return sp.csr_array((0, n)), np.zeros(0)
    if A.size % n:
        raise LPFileError(f"{path}: {key_A} has {A.size} entries, not a multiple of "
                          f"n = {n} (the size of c)")
    A = sp.csr_array(A.reshape(-1, n).astype(float))
    if A.shape[0] != b.size:
        raise LPFileError(f"{path}: {key_A} has {A.shape[0]} rows but {key_b} has "
                          f"{b.size} entries")
    return A, b


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
