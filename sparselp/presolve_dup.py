r"""Duplicate (parallel) rows for :mod:`sparselp.presolve`.

Rows that are scalar multiples of each other on the columns still in the problem,
``a_i = alpha_i p`` (``p`` normalised so that its first entry is 1), each say something
about the one quantity ``p^T x``: an inequality with ``alpha > 0`` an upper limit
``b_i / alpha_i``, with ``alpha < 0`` a lower one, an equality its value. Per group:

- inequalities only: the tightest upper and the tightest lower row are kept, the others
  removed; limits that cross prove infeasibility;
- with an equality: one equality is kept; another equality with a different value, or an
  inequality that its value violates, proves infeasibility; the rest are removed.

A removed row gets the multiplier 0 in the postsolve: the kept row carries the whole
multiplier of the group, and ``A^T v`` is unchanged, so the restored pair stays dual
feasible. Parallel rows are found by hashing each row's normalised (pattern, values) in
numpy, O(nnz log nnz): no pair of rows is compared unless their hashes agree, and then
exactly.

References
----------
E. D. Andersen and K. D. Andersen, "Presolving in linear programming", Math. Programming
71 (1995), section 3.4 (duplicate rows).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["parallel_groups", "remove_duplicate_rows"]

# Normalised entries are hashed on their mantissa to this many bits (about 1e-12
# relative); rows that hash alike are then compared exactly to that precision.
_BITS = 40
_EXACT = 1e-12


def _mix(h: np.ndarray) -> np.ndarray:
    """A 64-bit finaliser (splitmix64): spreads every input bit over the hash."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def parallel_groups(M: sp.csr_matrix) -> list[tuple[np.ndarray, np.ndarray]]:
    """Groups of two or more rows of ``M`` (CSR) that are multiples of one another.

    Returns a list of ``(rows, alpha)``: row indices and their factors, ``M[i] = alpha_i
    p`` with the first entry of ``p`` equal to 1. Empty and singleton rows are left out
    (the presolve treats them on their own).
    """
    M = sp.csr_matrix(M)
    M.sum_duplicates()
    M.sort_indices()
    M.eliminate_zeros()
    counts = np.diff(M.indptr)
    if not np.any(counts >= 2):
        return []
    row_of = np.repeat(np.arange(M.shape[0]), counts)
    first = M.data[M.indptr[:-1][row_of]]
    norm = M.data / first
    mant, expo = np.frexp(norm)
    with np.errstate(over="ignore"):
        key = (M.indices.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
               + np.round(mant * 2.0 ** _BITS).astype(np.int64).view(np.uint64)
               + (expo.astype(np.int64) + 4096).astype(np.uint64) * np.uint64(0x632BE59BD9B4E019))
        # Order-free sum of mixed entry keys per row, then the entry count mixed in.
        h = np.add.reduceat(_mix(key), M.indptr[:-1][counts > 0]) if M.nnz else key
    full = np.zeros(M.shape[0], np.uint64)
    full[counts > 0] = h
    full = _mix(full ^ counts.astype(np.uint64))
    cand = np.flatnonzero(counts >= 2)
    order = cand[np.argsort(full[cand], kind="stable")]
    hs = full[order]
    cuts = np.flatnonzero(np.diff(hs)) + 1
    groups = []
    for block in np.split(order, cuts):
        if block.size < 2:
            continue
        groups.extend(_exact_groups(M, norm, first_of=first, block=block))
    return groups


def _exact_groups(M, norm, first_of, block):
    """Split rows with equal hashes into groups that are parallel to ``_EXACT``."""
    out, left = [], list(block)
    while len(left) > 1:
        i = left[0]
        si = slice(M.indptr[i], M.indptr[i + 1])
        same, rest = [i], []
        for j in left[1:]:
            sj = slice(M.indptr[j], M.indptr[j + 1])
            if (sj.stop - sj.start == si.stop - si.start
                    and np.array_equal(M.indices[si], M.indices[sj])
                    and np.allclose(norm[si], norm[sj], rtol=_EXACT, atol=0)):
                same.append(j)
            else:
                rest.append(j)
        if len(same) > 1:
            rows = np.array(same)
            out.append((rows, first_of[M.indptr[rows]]))
        left = rest
    return out


class _DropRow:
    """A duplicate row removed by the presolve: its multiplier is 0 (the kept parallel
    row carries the group's)."""

    def __init__(self, key, i):
        self.key, self.i = key, i

    def undo(self, a, x, d):
        d[self.key][self.i] = 0.0


def remove_duplicate_rows(state, feas: float) -> str:
    """Remove the duplicate rows among the live rows and columns of the presolve
    ``state`` (:class:`sparselp.presolve._State`); returns why the problem is infeasible,
    or ""."""
    cols = state.col_on
    blocks = [(state.a["A"], state.b, state.row_on, False),
              (state.a["A_eq"], state.beq, state.eq_on, True)]
    mats, rhs, kinds, index = [], [], [], []
    for M, b, on, eq in blocks:
        rows = np.flatnonzero(on)
        if not rows.size or not M.shape[0]:
            continue
        mats.append(M[rows][:, cols])
        rhs.append(b[rows])
        kinds.append(np.full(rows.size, eq))
        index.append(rows)
    if not mats:
        return ""
    M = sp.vstack(mats, format="csr")
    rhs, eq, index = np.concatenate(rhs), np.concatenate(kinds), np.concatenate(index)
    for rows, alpha in parallel_groups(M):
        why = _reduce_group(state, rows, alpha, rhs, eq, index, feas)
        if why:
            return why
    return ""


def _reduce_group(state, rows, alpha, rhs, eq, index, feas) -> str:
    """Keep what binds in one group of parallel rows; record the rows removed."""
    t = rhs[rows] / alpha            # the limit or value of p^T x each row states
    scale = feas * (1.0 + np.abs(t).max())
    is_eq = eq[rows]
    upper, lower = ~is_eq & (alpha > 0), ~is_eq & (alpha < 0)
    keep = set()
    name = {False: "A", True: "A_eq"}
    if is_eq.any():
        e = np.flatnonzero(is_eq)
        value = t[e[0]]
        keep.add(e[0])
        bad = np.flatnonzero((is_eq & (np.abs(t - value) > scale))
                             | (upper & (t < value - scale)) | (lower & (t > value + scale)))
        if bad.size:
            k = bad[0]
            return (f"row {index[rows[k]]} of {name[bool(is_eq[k])]} is parallel to row "
                    f"{index[rows[e[0]]]} of A_eq and contradicts it")
    else:
        hi = np.flatnonzero(upper)
        lo = np.flatnonzero(lower)
        if hi.size:
            keep.add(hi[np.argmin(t[hi])])
        if lo.size:
            keep.add(lo[np.argmax(t[lo])])
        if hi.size and lo.size and t[lo].max() > t[hi].min() + scale:
            return (f"rows {index[rows[lo[np.argmax(t[lo])]]]} and "
                    f"{index[rows[hi[np.argmin(t[hi])]]]} of A are parallel and leave "
                    f"no value between them")
    for k in range(rows.size):
        if k in keep:
            continue
        i, key = int(index[rows[k]]), ("v_eq" if is_eq[k] else "v")
        (state.eq_on if is_eq[k] else state.row_on)[i] = False
        state.ops.append(_DropRow(key, i))
    return ""
