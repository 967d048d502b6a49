"""Read an LP from an ``.npz`` file in the Netlib layout (keys c, A_ub, b_ub, A_eq, b_eq,
bounds), the layout of the Netlib copy the benchmarks use."""
from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from .lpdata import LPData, LPFileError

__all__ = ["read_npz"]


def read_npz(path: str | os.PathLike) -> LPData:
    """Read an ``.npz`` in the Netlib layout (keys c, A_ub, b_ub, A_eq, b_eq, bounds).

    The object-dtype ``bounds`` arrays of that layout need ``allow_pickle=True``; only open
    files from a trusted source.

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
