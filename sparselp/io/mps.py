r"""Read and write free-format MPS files.

Reading returns an :class:`~sparselp.io.LPData` in ``scipy.optimize.linprog``'s form
(:math:`\min c^T x + \text{offset}` s.t. :math:`A_{ub} x \le b_{ub}`, :math:`A_{eq} x = b_{eq}`,
:math:`lb \le x \le ub`). Supported (free format, whitespace separated, names without
spaces): the sections NAME, OBJSENSE (MIN/MAX), ROWS (N, L, G, E), COLUMNS (integer MARKER
lines are accepted and the integrality dropped: the LP relaxation is read), RHS (an entry on
the objective row is the negated constant offset), RANGES and BOUNDS (UP, LO, FX, FR, MI,
PL, BV, LI, UI), ENDATA. Only the first N row is the objective; further N rows are ignored,
as in most readers. Every error is an :class:`~sparselp.io.LPFileError` that names the file,
the line, the section and what was expected.

:func:`write_mps` writes the inverse: inequality rows as L rows, equality rows as E rows,
so that reading the file back gives the same arrays, bit for bit.

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

import numpy as np
import scipy.sparse as sp

from .lpdata import LPData, LPFileError

__all__ = ["read_mps", "write_mps"]

_SECTIONS = ("NAME", "OBJSENSE", "ROWS", "COLUMNS", "RHS", "RANGES", "BOUNDS", "ENDATA")
_ROW_TYPES = {"N", "L", "G", "E"}
_BOUND_TYPES = {"UP", "LO", "FX", "FR", "MI", "PL", "BV", "LI", "UI", "SC"}


@dataclass
class _Parsed:
    """What the sections of one MPS file said, before it becomes matrices."""

    path: str
    name: str = ""
    sense: float = 1.0
    obj_row: str | None = None
    row_type: dict = field(default_factory=dict)   # row name -> N, L, G or E
    row_order: list = field(default_factory=list)  # constraint rows, in file order
    cols: dict = field(default_factory=dict)       # column name -> index
    entries: list = field(default_factory=list)    # (row name, column index, value)
    rhs: dict = field(default_factory=dict)
    ranges: dict = field(default_factory=dict)
    bounds: dict = field(default_factory=dict)     # column index -> [(type, value, line)]

    def error(self, lineno: int, section: str, message: str) -> LPFileError:
        return LPFileError(f"{self.path}:{lineno}: {section}: {message}")

    def number(self, text: str, lineno: int, section: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise self.error(lineno, section, f"expected a number, got {text!r}") from None
        if math.isnan(value):
            raise self.error(lineno, section, "NaN is not a valid coefficient")
        return value

    def row(self, tok: list, line: str, lineno: int) -> None:
        if len(tok) != 2 or tok[0].upper() not in _ROW_TYPES:
            raise self.error(lineno, "ROWS", "ROWS entries are 'TYPE NAME' with TYPE in "
                             f"N, L, G, E; got {line.strip()!r}")
        kind, rname = tok[0].upper(), tok[1]
        if rname in self.row_type:
            raise self.error(lineno, "ROWS", f"row {rname!r} defined twice")
        self.row_type[rname] = kind
        if kind == "N":
            self.obj_row = self.obj_row or rname
        else:
            self.row_order.append(rname)

    def column(self, tok: list, line: str, lineno: int) -> None:
        if len(tok) >= 3 and tok[1].upper().strip("'") == "MARKER":
            return  # integrality markers: the LP relaxation is read
        if len(tok) not in (3, 5):
            raise self.error(lineno, "COLUMNS", "COLUMNS entries are 'COLUMN ROW VALUE "
                             f"[ROW VALUE]'; got {line.strip()!r}")
        j = self.cols.setdefault(tok[0], len(self.cols))
        for rname, val in zip(tok[1::2], tok[2::2]):
            if rname not in self.row_type:
                raise self.error(lineno, "COLUMNS", f"column {tok[0]!r} refers to unknown "
                                 f"row {rname!r}")
            self.entries.append((rname, j, self.number(val, lineno, "COLUMNS")))

    def right_hand_side(self, section: str, tok: list, line: str, lineno: int) -> None:
        # The set name is optional in free MPS: an odd token count means it is present.
        body = tok[1:] if len(tok) % 2 == 1 else tok
        if len(body) not in (2, 4):
            raise self.error(lineno, section, f"{section} entries are '[SET] ROW VALUE "
                             f"[ROW VALUE]'; got {line.strip()!r}")
        target = self.rhs if section == "RHS" else self.ranges
        for rname, val in zip(body[0::2], body[1::2]):
            if rname not in self.row_type:
                raise self.error(lineno, section, f"{section} refers to unknown row {rname!r}")
            target[rname] = self.number(val, lineno, section)

    def bound(self, tok: list, line: str, lineno: int) -> None:
        kind = tok[0].upper()
        if kind not in _BOUND_TYPES:
            raise self.error(lineno, "BOUNDS", f"unknown bound type {tok[0]!r}")
        needs_value = kind not in ("FR", "MI", "PL", "BV")
        # Tokens: TYPE [SET] COLUMN [VALUE]; the set name is optional.
        rest, want = tok[1:], 2 if needs_value else 1
        if len(rest) == want + 1:
            rest = rest[1:]
        if len(rest) != want:
            raise self.error(lineno, "BOUNDS", f"BOUNDS entry {line.strip()!r} has the wrong "
                             "number of fields")
        if rest[0] not in self.cols:
            raise self.error(lineno, "BOUNDS", f"bound on unknown column {rest[0]!r}")
        value = self.number(rest[1], lineno, "BOUNDS") if needs_value else 0.0
        self.bounds.setdefault(self.cols[rest[0]], []).append((kind, value, lineno))


def _is_max(word: str) -> bool:
    return word.upper() in ("MAX", "MAXIMIZE")


def read_mps(path: str | os.PathLike) -> LPData:
    """Read a free-format MPS file (see the module docstring for the supported subset).

    Raises
    ------
    LPFileError
        The file is not ASCII text, or a line breaks the format; the message names the
        file, the line and the section.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="ascii", errors="strict") as fh:
            lines = fh.readlines()
    except UnicodeDecodeError as exc:
        raise LPFileError(f"{path}: not a text MPS file ({exc})") from exc
    p, section, seen_end = _Parsed(path), None, False
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("*"):
            continue
        tok = line.split()
        if not line[0].isspace():  # a section header starts in column 1
            section = tok[0].upper()
            if section not in _SECTIONS:
                raise LPFileError(f"{path}:{lineno}: unknown section {tok[0]!r}")
            if section == "NAME":
                p.name = tok[1] if len(tok) > 1 else ""
            elif section == "OBJSENSE" and len(tok) > 1:
                p.sense = -1.0 if _is_max(tok[1]) else 1.0
            elif section == "ENDATA":
                seen_end = True
                break
        elif section is None:
            raise LPFileError(f"{path}:{lineno}: data before the first section header")
        elif section == "OBJSENSE":
            p.sense = -1.0 if _is_max(tok[0]) else 1.0
        elif section == "ROWS":
            p.row(tok, line, lineno)
        elif section == "COLUMNS":
            p.column(tok, line, lineno)
        elif section in ("RHS", "RANGES"):
            p.right_hand_side(section, tok, line, lineno)
        elif section == "BOUNDS":
            p.bound(tok, line, lineno)
    if not seen_end:
        raise LPFileError(f"{path}: no ENDATA line; the file is truncated or not MPS")
    if p.obj_row is None:
        raise LPFileError(f"{path}: ROWS: no objective row (a ROWS entry of type N)")
    if not p.cols:
        raise LPFileError(f"{path}: COLUMNS: no COLUMNS entries")
    return _assemble(p)


def _row_limits(p: _Parsed) -> tuple[np.ndarray, np.ndarray]:
    """Each constraint row as ``lo <= a^T x <= hi``, from its type, RHS and RANGES."""
    lo, hi = np.full(len(p.row_order), -np.inf), np.full(len(p.row_order), np.inf)
    for i, rname in enumerate(p.row_order):
        kind, r = p.row_type[rname], p.rhs.get(rname, 0.0)
        if kind == "L":
            hi[i] = r
        elif kind == "G":
            lo[i] = r
        else:
            lo[i] = hi[i] = r
        if rname in p.ranges:
            R = p.ranges[rname]
            if kind == "L":
                lo[i] = r - abs(R)
            elif kind == "G":
                hi[i] = r + abs(R)
            elif R > 0:
                hi[i] = r + R
            elif R < 0:
                lo[i] = r + R
    return lo, hi


def _column_bounds(p: _Parsed) -> tuple[np.ndarray, np.ndarray]:
    """``(lb, ub)`` of every column: 0 and +inf unless BOUNDS says otherwise."""
    n = len(p.cols)
    lb, ub = np.zeros(n), np.full(n, np.inf)
    for j, items in p.bounds.items():
        for kind, value, lineno in items:
            if kind in ("UP", "UI"):
                ub[j] = value
                if value < 0 and lb[j] == 0:
                    # Old MPS convention (followed by CPLEX and HiGHS): a negative upper bound
                    # on a variable with the default lower bound 0 makes it unbounded below.
                    warnings.warn(f"{p.path}:{lineno}: negative UP bound with lower bound 0; "
                                  "setting the lower bound to -inf (MPS convention)")
                    lb[j] = -np.inf
            elif kind in ("LO", "LI"):
                lb[j] = value
            elif kind == "FX":
                lb[j] = ub[j] = value
            elif kind in ("FR", "MI", "PL", "BV"):
                lb[j], ub[j] = {"FR": (-np.inf, np.inf), "MI": (-np.inf, ub[j]),
                                "PL": (lb[j], np.inf), "BV": (0.0, 1.0)}[kind]
            elif kind == "SC":
                raise p.error(lineno, "BOUNDS", "semi-continuous bounds (SC) are not LP")
    if np.any(lb > ub):
        j = int(np.flatnonzero(lb > ub)[0])
        raise LPFileError(f"{p.path}: BOUNDS: column {list(p.cols)[j]!r} has lower bound "
                          f"{lb[j]} above its upper bound {ub[j]}")
    return lb, ub


def _assemble(p: _Parsed) -> LPData:
    n = len(p.cols)
    c = np.zeros(n)
    row_index = {r: i for i, r in enumerate(p.row_order)}
    rr, cc, vv = [], [], []
    for rname, j, val in p.entries:
        if rname == p.obj_row:
            c[j] += val
        elif p.row_type[rname] != "N":
            rr.append(row_index[rname]), cc.append(j), vv.append(val)
    A = sp.coo_array((vv, (rr, cc)), shape=(len(p.row_order), n)).tocsr()
    # Each row lo <= a^T x <= hi is split into <= rows (finite hi, then finite lo negated)
    # and == rows.
    lo, hi = _row_limits(p)
    eq = lo == hi
    ub_rows, lb_rows = np.flatnonzero(~eq & np.isfinite(hi)), np.flatnonzero(~eq & np.isfinite(lo))
    A_ub = sp.vstack([A[ub_rows], -A[lb_rows]]).tocsr() if ub_rows.size + lb_rows.size else \
        sp.csr_array((0, n))
    b_ub = np.concatenate([hi[ub_rows], -lo[lb_rows]])
    A_eq, b_eq = A[np.flatnonzero(eq)].tocsr(), lo[eq]
    lb, ub = _column_bounds(p)
    # An RHS on the objective row is minus the objective's constant term.
    offset = -p.rhs.get(p.obj_row, 0.0)
    return LPData(p.name or os.path.basename(p.path), p.sense * c, A_ub, b_ub, A_eq, b_eq,
                  lb, ub, offset=p.sense * offset, col_names=list(p.cols), sense=p.sense)


# --------------------------------------------------------------------------------- writer
def _column_names(lp: LPData) -> list[str]:
    """The LP's own column names where they can stand in MPS (unique, no spaces)."""
    names = [str(s) for s in lp.col_names]
    if len(names) == lp.n and len(set(names)) == lp.n and all(
            s and not any(ch.isspace() for ch in s) for s in names):
        return names
    return [f"x{j}" for j in range(lp.n)]


def _bound_lines(name: str, lo: float, hi: float) -> list[str]:
    """BOUNDS lines that make :func:`read_mps` give exactly ``lo <= x <= hi``."""
    if math.isnan(lo) or math.isnan(hi) or lo == np.inf or hi == -np.inf or lo > hi:
        raise ValueError(f"column {name!r}: bounds ({lo}, {hi}) do not define an interval")
    if lo == hi:
        return [f" FX BND {name} {float(lo)!r}"]
    if math.isinf(lo) and math.isinf(hi):
        return [f" FR BND {name}"]
    lines = [f" MI BND {name}"] if math.isinf(lo) else \
        [f" LO BND {name} {float(lo)!r}"] if lo != 0 else []
    # UP after the lower bound: a negative UP on a default lower bound 0 would otherwise
    # trigger the reader's old-MPS convention (lower bound -inf).
    if not math.isinf(hi):
        lines.append(f" UP BND {name} {float(hi)!r}")
    return lines


def write_mps(lp: LPData, path: str | os.PathLike) -> None:
    """Write ``lp`` as a free-format MPS file that :func:`read_mps` reads back exactly.

    Inequality rows become L rows ``u0, u1, ...``, equality rows E rows ``e0, e1, ...``;
    every column is listed on the objective row (a zero cost included) so that none is
    lost; numbers are written with ``repr``, which round-trips every double.

    Parameters
    ----------
    lp : LPData
        The LP; ``sense = -1`` is written as ``OBJSENSE MAX`` with the file's own costs.
    path : str or os.PathLike
        Where to write.

    Raises
    ------
    ValueError
        A NaN coefficient, or bounds with ``lb > ub`` (no MPS file reads back to them).
    """
    A_ub, A_eq = sp.csc_array(lp.A_ub), sp.csc_array(lp.A_eq)
    if any(np.isnan(v).any() for v in (lp.c, lp.b_ub, lp.b_eq, A_ub.data, A_eq.data)):
        raise ValueError("write_mps: NaN in c, b_ub, b_eq, A_ub or A_eq")
    names = _column_names(lp)
    lines = [f"NAME {lp.name or 'LP'}"]
    if lp.sense < 0:
        lines += ["OBJSENSE", "    MAX"]
    lines += ["ROWS", " N obj"] + [f" L u{i}" for i in range(A_ub.shape[0])] \
        + [f" E e{i}" for i in range(A_eq.shape[0])]
    lines.append("COLUMNS")
    for j, name in enumerate(names):
        lines.append(f" {name} obj {float(lp.sense * lp.c[j])!r}")
        for prefix, M in (("u", A_ub), ("e", A_eq)):
            start, stop = M.indptr[j], M.indptr[j + 1]
            lines += [f" {name} {prefix}{i} {float(v)!r}"
                      for i, v in zip(M.indices[start:stop], M.data[start:stop])]
    lines.append("RHS")
    if lp.offset:
        lines.append(f" RHS obj {float(-lp.sense * lp.offset)!r}")
    for prefix, b in (("u", lp.b_ub), ("e", lp.b_eq)):
        lines += [f" RHS {prefix}{i} {float(v)!r}" for i, v in enumerate(b) if v != 0]
    lines.append("BOUNDS")
    for name, lo, hi in zip(names, lp.lb, lp.ub):
        lines += _bound_lines(name, float(lo), float(hi))
    lines.append("ENDATA")
    with open(path, "w", encoding="ascii") as fh:
        fh.write("\n".join(lines) + "\n")
