"""LP files: read free-format MPS and Netlib-layout ``.npz``, write MPS.

``read_lp(path)`` picks the reader by extension; every reader returns an :class:`LPData`
(``scipy.optimize.linprog``'s form) and raises :class:`LPFileError` (a ``ValueError``)
naming the file, and for MPS the line and section, on a malformed input.
"""
from __future__ import annotations

import os

from .lpdata import LPData, LPFileError
from .mps import read_mps, write_mps
from .npz import read_npz

__all__ = ["LPData", "LPFileError", "read_lp", "read_mps", "read_npz", "write_mps"]


def read_lp(path: str | os.PathLike) -> LPData:
    """Read ``path`` by its extension: ``.npz`` (Netlib layout), or ``.mps`` (free MPS).

    Raises
    ------
    LPFileError
        The file is missing, a directory, of an unknown extension, or malformed.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise LPFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise LPFileError(f"{path}: is a directory, expected an .npz or .mps file")
    if path.lower().endswith(".npz"):
        return read_npz(path)
    if path.lower().endswith((".mps", ".fmps", ".freemps")):
        return read_mps(path)
    raise LPFileError(f"{path}: unknown extension, expected .npz (Netlib layout) or .mps")
