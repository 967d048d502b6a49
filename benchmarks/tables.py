"""Plain-text and CSV tables for benchmark rows (lists of dicts)."""
from __future__ import annotations

import csv
import os
import sys

__all__ = ["write_csv", "print_table", "fmt", "emit", "quartiles"]


def write_csv(rows: list[dict], path: str, columns=None) -> None:
    """Write ``rows`` to ``path`` (columns: the union of keys, ``columns`` first)."""
    keys = list(columns or ())
    for r in rows:
        keys += [k for k in r if k not in keys]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


_BYTE_WORDS = ("rss", "bytes", "peak", "mem")


def fmt(v, column: str = "") -> str:
    """Short human form of a cell: 4 significant digits; integers above 1e7 in MiB in a
    column of bytes (its name says rss, bytes, peak or mem), else as ``1.000e+08``."""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool) and v > 10_000_000:
        if any(w in column.lower() for w in _BYTE_WORDS):
            return f"{v / 2**20:.0f}M"
        return f"{v:.4g}"
    return "" if v is None else str(v)


def print_table(rows: list[dict], columns, file=None) -> None:
    """Print ``rows`` as an aligned text table (to ``sys.stdout`` as it is at call time)."""
    file = file if file is not None else sys.stdout
    cells = [[str(c) for c in columns]] + [[fmt(r.get(c), str(c)) for c in columns]
                                        for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)), file=file)


def emit(rows: list[dict], out: str, columns, shown=None) -> list[dict]:
    """What every benchmark's command line ends with: the table (of ``shown`` columns,
    default all) on stdout, the CSV of ``columns`` at ``out``, and where it went."""
    print_table(rows, columns if shown is None else shown)
    write_csv(rows, out, columns)
    print(f"wrote {out}")
    return rows


def quartiles(values) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile) of ``values``, linearly interpolated
    (numpy's default; one value gives it three times): the spread of timed repeats."""
    import numpy as np

    q25, med, q75 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return float(q25), float(med), float(q75)
