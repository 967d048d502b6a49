r"""Read an LP from a file: free-format MPS, or an ``.npz`` in the Netlib layout.

Both readers return an :class:`LPData` in ``scipy.optimize.linprog``'s form

.. math::

    \min_x \; c^T x + \text{offset} \quad \text{s.t.} \quad A_{ub} x \le b_{ub},
    \quad A_{eq} x = b_{eq}, \quad lb \le x \le ub .

MPS support (free format, whitespace separated, names without spaces): the sections NAME,
OBJSENSE (MIN/MAX), ROWS (N, L, G, E), COLUMNS (integer MARKER lines are accepted and the
integrality dropped: the LP relaxation is read), RHS (an entry on the objective row is the
negated constant offset), RANGES and BOUNDS (UP, LO, FX, FR, MI, PL, BV, LI, UI), ENDATA.
Only the first N row is the objective; further N rows are ignored, as in most readers.
Every error is a :class:`LPFileError` that names the file, the line and what was expected.

References
----------
IBM ILOG CPLEX, "MPS file format: industry standard"; Netlib LP test set,
https://netlib.org/lp/data (the RANGES and BOUNDS conventions followed here).
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmarks.netlib_data import SPARSE_MARK, sparse_arrays

__all__ = ["LPData", "LPFileError", "read_lp", "read_mps", "read_npz"]


class LPFileError(ValueError):
    """A missing, unreadable or malformed LP file."""


@dataclass
class LPData:
    """An LP in linprog form; matrices are ``scipy.sparse.csr_array`` of shape (m, n)."""

    name: str
    c: np.ndarray
    A_ub: sp.csr_array
    b_ub: np.ndarray
    A_eq: sp.csr_array
    b_eq: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    offset: float = 0.0
    col_names: list = field(default_factory=list)
    sense: float = 1.0  # -1 for an MPS OBJSENSE MAX: c and offset are then negated

    def objective(self, fun: float) -> float:
        """The objective in the file's own sense, from ``fun`` = min of c^T x."""
        return self.sense * (fun + self.offset)

    @property
    def n(self) -> int:
        return self.c.size

    @property
    def bounds(self) -> list:
        """scipy-style bounds: a list of ``(lb, ub)`` with ``None`` for an infinite side."""
        return [(None if math.isinf(lo) else float(lo), None if math.isinf(hi) else float(hi))
                for lo, hi in zip(self.lb, self.ub)]

    def linprog_args(self) -> dict:
        """Keyword arguments for a scipy-style ``linprog`` (empty blocks become None)."""
        return {"c": self.c,
                "A_ub": self.A_ub if self.A_ub.shape[0] else None,
                "b_ub": self.b_ub if self.b_ub.size else None,
                "A_eq": self.A_eq if self.A_eq.shape[0] else None,
                "b_eq": self.b_eq if self.b_eq.size else None,
                "bounds": self.bounds}


def read_lp(path: str | os.PathLike) -> LPData:
    """Read ``path`` by its extension: ``.npz`` (Netlib layout), or ``.mps`` (free MPS)."""
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


def read_npz(path: str | os.PathLike) -> LPData:
    """Read an ``.npz`` in the Netlib layout (keys c, A_ub, b_ub, A_eq, b_eq, bounds).

    The object-dtype ``bounds`` arrays of that layout need ``allow_pickle=True``; only open
    files from a trusted source.
    """
    path = os.fspath(path)
    try:
        d = np.load(path, allow_pickle=True)
    except Exception as exc:
        raise LPFileError(f"{path}: not a readable .npz file ({exc})") from exc
    if SPARSE_MARK in d.files:  # the sparse layout of the in-repo copy (benchmarks/data/netlib)
        return LPData(Path(path).stem, **sparse_arrays(d, LPFileError))
    missing = [k for k in ("c", "A_ub", "b_ub", "A_eq", "b_eq") if k not in d.files]
    if missing:
        raise LPFileError(f"{path}: missing key(s) {missing}; expected the Netlib layout "
                          "c, A_ub, b_ub, A_eq, b_eq[, bounds]")
    c = np.asarray(d["c"], dtype=float).ravel()
    n = c.size
    if n == 0:
        raise LPFileError(f"{path}: c is empty")

    def block(key_A, key_b):
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

    A_ub, b_ub = block("A_ub", "b_ub")
    A_eq, b_eq = block("A_eq", "b_eq")
    lb, ub = np.zeros(n), np.full(n, np.inf)
    if "bounds" in d.files and d["bounds"].size:
        bnd = d["bounds"].reshape(-1, 2)
        if bnd.shape[0] != n:
            raise LPFileError(f"{path}: bounds has {bnd.shape[0]} rows, expected n = {n}")
        lb = np.array([-np.inf if v is None else float(v) for v in bnd[:, 0]])
        ub = np.array([np.inf if v is None else float(v) for v in bnd[:, 1]])
    name = os.path.splitext(os.path.basename(path))[0]
    return LPData(name, c, A_ub, b_ub, A_eq, b_eq, lb, ub)


_ROW_TYPES = {"N", "L", "G", "E"}
_BOUND_TYPES = {"UP", "LO", "FX", "FR", "MI", "PL", "BV", "LI", "UI", "SC"}


def _number(text: str, path: str, lineno: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LPFileError(f"{path}:{lineno}: expected a number, got {text!r}") from None
    if math.isnan(value):
        raise LPFileError(f"{path}:{lineno}: NaN is not a valid coefficient")
    return value


def read_mps(path: str | os.PathLike) -> LPData:
    """Read a free-format MPS file (see the module docstring for the supported subset)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="ascii", errors="strict") as fh:
            lines = fh.readlines()
    except UnicodeDecodeError as exc:
        raise LPFileError(f"{path}: not a text MPS file ({exc})") from exc
    name, section, sense = "", None, 1.0
    obj_row, row_type, row_order = None, {}, []
    cols: dict[str, int] = {}
    entries: list[tuple[str, int, float]] = []
    rhs: dict[str, float] = {}
    ranges: dict[str, float] = {}
    bounds: dict[int, list] = {}
    seen_end = False
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("*"):
            continue
        tok = line.split()
        if not line[0].isspace():  # a section header starts in column 1
            section = tok[0].upper()
            if section == "NAME":
                name = tok[1] if len(tok) > 1 else ""
            elif section == "OBJSENSE" and len(tok) > 1:
                sense = -1.0 if tok[1].upper() in ("MAX", "MAXIMIZE") else 1.0
            elif section == "ENDATA":
                seen_end = True
                break
            elif section not in ("ROWS", "COLUMNS", "RHS", "RANGES", "BOUNDS", "OBJSENSE"):
                raise LPFileError(f"{path}:{lineno}: unknown section {tok[0]!r}")
            continue
        if section is None:
            raise LPFileError(f"{path}:{lineno}: data before the first section header")
        if section == "OBJSENSE":
            sense = -1.0 if tok[0].upper() in ("MAX", "MAXIMIZE") else 1.0
        elif section == "ROWS":
            if len(tok) != 2 or tok[0].upper() not in _ROW_TYPES:
                raise LPFileError(f"{path}:{lineno}: ROWS entries are 'TYPE NAME' with TYPE in "
                                  f"N, L, G, E; got {line.strip()!r}")
            kind, rname = tok[0].upper(), tok[1]
            if rname in row_type:
                raise LPFileError(f"{path}:{lineno}: row {rname!r} defined twice")
            row_type[rname] = kind
            if kind == "N":
                obj_row = obj_row or rname
            else:
                row_order.append(rname)
        elif section == "COLUMNS":
            if len(tok) >= 3 and tok[1].upper().strip("'") == "MARKER":
                continue  # integrality markers: the LP relaxation is read
            if len(tok) not in (3, 5):
                raise LPFileError(f"{path}:{lineno}: COLUMNS entries are 'COLUMN ROW VALUE "
                                  f"[ROW VALUE]'; got {line.strip()!r}")
            j = cols.setdefault(tok[0], len(cols))
            for rname, val in zip(tok[1::2], tok[2::2]):
                if rname not in row_type:
                    raise LPFileError(f"{path}:{lineno}: column {tok[0]!r} refers to unknown "
                                      f"row {rname!r}")
                entries.append((rname, j, _number(val, path, lineno)))
        elif section in ("RHS", "RANGES"):
            # The set name is optional in free MPS: an odd token count means it is present.
            body = tok[1:] if len(tok) % 2 == 1 else tok
            if len(body) not in (2, 4):
                raise LPFileError(f"{path}:{lineno}: {section} entries are '[SET] ROW VALUE "
                                  f"[ROW VALUE]'; got {line.strip()!r}")
            target = rhs if section == "RHS" else ranges
            for rname, val in zip(body[0::2], body[1::2]):
                if rname not in row_type:
                    raise LPFileError(f"{path}:{lineno}: {section} refers to unknown row "
                                      f"{rname!r}")
                target[rname] = _number(val, path, lineno)
        elif section == "BOUNDS":
            kind = tok[0].upper()
            if kind not in _BOUND_TYPES:
                raise LPFileError(f"{path}:{lineno}: unknown bound type {tok[0]!r}")
            needs_value = kind not in ("FR", "MI", "PL", "BV")
            # Tokens: TYPE [SET] COLUMN [VALUE]; the set name is optional.
            rest = tok[1:]
            want = 2 if needs_value else 1
            if len(rest) == want + 1:
                rest = rest[1:]
            if len(rest) != want:
                raise LPFileError(f"{path}:{lineno}: BOUNDS entry {line.strip()!r} has the wrong "
                                  "number of fields")
            if rest[0] not in cols:
                raise LPFileError(f"{path}:{lineno}: bound on unknown column {rest[0]!r}")
            value = _number(rest[1], path, lineno) if needs_value else 0.0
            bounds.setdefault(cols[rest[0]], []).append((kind, value, lineno))
    if not seen_end:
        raise LPFileError(f"{path}: no ENDATA line; the file is truncated or not MPS")
    if obj_row is None:
        raise LPFileError(f"{path}: no objective row (a ROWS entry of type N)")
    if not cols:
        raise LPFileError(f"{path}: no COLUMNS entries")
    return _assemble(path, name, sense, obj_row, row_type, row_order, cols, entries, rhs,
                     ranges, bounds)


def _assemble(path, name, sense, obj_row, row_type, row_order, cols, entries, rhs, ranges,
              bounds) -> LPData:
    n = len(cols)
    c = np.zeros(n)
    row_index = {r: i for i, r in enumerate(row_order)}
    rr, cc, vv = [], [], []
    for rname, j, val in entries:
        if rname == obj_row:
            c[j] += val
        elif row_type[rname] != "N":
            rr.append(row_index[rname]), cc.append(j), vv.append(val)
    A = sp.coo_array((vv, (rr, cc)), shape=(len(row_order), n)).tocsr()
    # Each constraint row becomes lo <= a^T x <= hi, then is split into <= and == rows.
    lo, hi = np.full(len(row_order), -np.inf), np.full(len(row_order), np.inf)
    for i, rname in enumerate(row_order):
        kind, r = row_type[rname], rhs.get(rname, 0.0)
        if kind == "L":
            hi[i] = r
        elif kind == "G":
            lo[i] = r
        else:
            lo[i] = hi[i] = r
        if rname in ranges:
            R = ranges[rname]
            if kind == "L":
                lo[i] = r - abs(R)
            elif kind == "G":
                hi[i] = r + abs(R)
            elif R > 0:
                hi[i] = r + R
            elif R < 0:
                lo[i] = r + R
    eq = lo == hi
    ub_rows, lb_rows = np.flatnonzero(~eq & np.isfinite(hi)), np.flatnonzero(~eq & np.isfinite(lo))
    A_ub = sp.vstack([A[ub_rows], -A[lb_rows]]).tocsr() if ub_rows.size + lb_rows.size else \
        sp.csr_array((0, n))
    b_ub = np.concatenate([hi[ub_rows], -lo[lb_rows]])
    A_eq, b_eq = A[np.flatnonzero(eq)].tocsr(), lo[eq]
    lb, ub = np.zeros(n), np.full(n, np.inf)
    for j, items in bounds.items():
        for kind, value, lineno in items:
            if kind in ("UP", "UI"):
                ub[j] = value
                if value < 0 and lb[j] == 0:
                    # Old MPS convention (followed by CPLEX and HiGHS): a negative upper bound
                    # on a variable with the default lower bound 0 makes it unbounded below.
                    warnings.warn(f"{path}:{lineno}: negative UP bound with lower bound 0; "
                                  "setting the lower bound to -inf (MPS convention)")
                    lb[j] = -np.inf
            elif kind in ("LO", "LI"):
                lb[j] = value
            elif kind == "FX":
                lb[j] = ub[j] = value
            elif kind == "FR":
                lb[j], ub[j] = -np.inf, np.inf
            elif kind == "MI":
                lb[j] = -np.inf
            elif kind == "PL":
                ub[j] = np.inf
            elif kind == "BV":
                lb[j], ub[j] = 0.0, 1.0
            elif kind == "SC":
                raise LPFileError(f"{path}:{lineno}: semi-continuous bounds (SC) are not LP")
    if np.any(lb > ub):
        j = int(np.flatnonzero(lb > ub)[0])
        raise LPFileError(f"{path}: column {list(cols)[j]!r} has lower bound {lb[j]} above its "
                          f"upper bound {ub[j]}")
    # An RHS on the objective row is minus the objective's constant term.
    offset = -rhs.get(obj_row, 0.0)
    return LPData(name or os.path.basename(path), sense * c, A_ub, b_ub, A_eq, b_eq, lb, ub,
                  offset=sense * offset, col_names=list(cols), sense=sense)
