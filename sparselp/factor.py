r"""Sparse LDL^T of the quasi-definite KKT form, analysed once and refactored each step.

The Newton matrix of a general sparse LP, ``H = A^T diag(w) A + E`` (``E`` the diagonal
from the bound rows and the shift), changes pattern between steps: the rows with
``w > 0`` change. Its quasi-definite KKT form with the rows scaled by ``sqrt(w)``,

.. math::

    \begin{bmatrix} -I & W^{1/2} A \\ A^T W^{1/2} & E \end{bmatrix}
    \begin{bmatrix} z \\ d \end{bmatrix} = \begin{bmatrix} 0 \\ r \end{bmatrix}
    \quad\Longrightarrow\quad (A^T W A + E)\, d = r,

does not: an inactive row (``w = 0``) keeps its entries as explicit zeros and its ``-1``
pivot, so the matrix is exactly equivalent to ``H`` (its Schur complement), with no large
or tiny stand-in for ``W^{-1}``. A quasi-definite matrix (``-I`` negative definite,
``E > 0``) has an ``LDL^T`` factorization for every symmetric ordering (Vanderbei 1995),
so the fill-reducing ordering (AMD) and the elimination tree are computed once per
problem by :class:`qdldl.Solver` and every later step only refactors values
(``Solver.update``), the way OSQP uses QDLDL. Rows that touch only the diagonal (variable
bounds, :class:`~sparselp.operators.SelectionOperator`) go into ``E`` and never enter the
KKT matrix. Up to ``refine`` steps of iterative refinement on the exact ``H`` (in float64,
from the stored rows) follow each solve whose residual is above ``rtol`` (the KKT form of a
late ALM step, ``w ~ 1e12`` against ``E ~ 1e-6``, is as ill-conditioned as ``H``).

The factorization runs in float64 on CPU whatever the problem's dtype. ``qdldl`` is an
optional dependency (``pip install sparselp[fast]``; it comes with ``osqp``);
:func:`have_qdldl` tells whether it imports.
"""
from __future__ import annotations

import weakref

import numpy as np
import scipy.sparse as sp

from .operators import Operator, SelectionOperator, StackedOperator

__all__ = ["have_qdldl", "KKTPattern", "kkt_patterns"]


def have_qdldl() -> bool:
    """True when the optional ``qdldl`` package imports."""
    try:
        import qdldl  # noqa: F401
    except ImportError:
        return False
    return True


def _row_blocks(op: Operator, offset: int = 0):
    """``(kind, first K row, part)`` for the parts of ``op``: ``"diag"`` for bound rows."""
    if isinstance(op, StackedOperator):
        out = []
        for p in op.parts:
            out += _row_blocks(p, offset)
            offset += p.m
        return out
    return [("diag" if isinstance(op, SelectionOperator) else "general", offset, op)]


class KKTPattern:
    """The fixed KKT pattern of one batch element, and its numeric factor once made.

    ``g_rows``, ``g_cols``, ``g_vals``: the entries of the general rows (``g_rows`` indexes
    the rows of ``K``); ``g_pos``: their KKT row; ``row_of``: the ``K`` row of each KKT row;
    ``A``: the general rows (CSR, KKT order); ``d_rows``, ``d_cols``, ``d_sq``: the bound
    rows' column and squared value. ``at_pivot``, ``at_rows``, ``at_E``: where the KKT
    entries (the ``-I`` diagonal, ``W^{1/2} A``, the ``E`` diagonal) sit in the CSC data.
    """

    def __init__(self, op: Operator, b: int, counter: list | None = None):
        g, d, rows_of, mg = [], [], [], 0
        for kind, first, part in _row_blocks(op):
            if kind == "diag":
                sc = part._expand(part.scale, part.m)[b].detach().cpu().double().numpy()
                d.append((first + np.arange(part.m), part.idx.cpu().numpy(), sc * sc))
                continue
            coo = part.to_scipy(b).tocsr()
            coo.sum_duplicates()
            coo = coo.tocoo()
            g.append((first + coo.row, mg + coo.row, coo.col, coo.data.astype(np.float64)))
            rows_of.append(first + np.arange(part.m))
            mg += part.m
        cat = (lambda parts, i, dt: np.concatenate([p[i] for p in parts]).astype(dt)
               if parts else np.zeros(0, dt))
        self.g_rows, self.g_pos = cat(g, 0, np.int64), cat(g, 1, np.int64)
        self.g_cols, self.g_vals = cat(g, 2, np.int64), cat(g, 3, np.float64)
        self.d_rows, self.d_cols, self.d_sq = cat(d, 0, np.int64), cat(d, 1, np.int64), \
            cat(d, 2, np.float64)
        self.mg, self.m, self.n = mg, op.m, op.n
        N = mg + op.n
        rows = np.concatenate([np.arange(mg), self.g_pos, mg + np.arange(op.n)])
        cols = np.concatenate([np.arange(mg), mg + self.g_cols, mg + np.arange(op.n)])
        perm = np.lexsort((rows, cols))  # column-major, rows sorted within a column
        indptr = np.zeros(N + 1, np.int64)
        np.cumsum(np.bincount(cols, minlength=N), out=indptr[1:])
        self.indices, self.indptr, self.N = rows[perm], indptr, N
        # Where each entry lands in the CSC data: the -1 pivots, the rows, then E.
        at = np.empty_like(perm)
        at[perm] = np.arange(perm.size)
        self.at_pivot, self.at_rows, self.at_E = np.split(at, [mg, mg + self.g_vals.size])
        self.A = sp.csr_matrix((self.g_vals, (self.g_pos, self.g_cols)), shape=(mg, op.n))
        self.At = self.A.T.tocsr()  # for the refinement's products, once per pattern
        self.row_of = np.concatenate(rows_of) if rows_of else np.zeros(0, np.int64)
        self.solver, self._kkt, self.generation = None, None, 0
        self.counter = counter if counter is not None else [0]  # factorizations, shared

    def values(self, w: np.ndarray, shift: np.ndarray):
        """The KKT matrix (upper triangle, CSC, fixed pattern) for weights ``w``, and ``E``."""
        E = np.bincount(self.d_cols, self.d_sq * w[self.d_rows], self.n) + shift
        if self._kkt is None:
            data = np.empty(self.indices.size)
            data[self.at_pivot] = -1.0
            self._kkt = sp.csc_matrix((data, self.indices, self.indptr), shape=(self.N, self.N))
        # same pattern: new values in place (a new csc_matrix costs its checks)
        self._kkt.data[self.at_rows] = self.g_vals * np.sqrt(w[self.g_rows])
        self._kkt.data[self.at_E] = E
        return self._kkt, E

    def factor(self, w: np.ndarray, shift: np.ndarray, refine: int = 2, rtol: float = 1e-10):
        """``r -> H^{-1} r`` (numpy, float64) for ``H = A^T diag(w) A + E``.

        Each solve takes up to ``refine`` steps of iterative refinement on ``H`` itself
        (products with the stored general rows, in float64) while its residual exceeds
        ``rtol`` times the right-hand side (max norm). A solve is valid until the next
        :meth:`factor` of this pattern (one numeric factor is kept).
        """
        import qdldl
        kkt, E = self.values(w, shift)
        if self.solver is None:  # the one symbolic analysis (AMD ordering, etree)
            self.solver = qdldl.Solver(kkt, upper=True)
        else:
            self.solver.update(kkt, upper=True)
        self.counter[0] += 1
        self.generation += 1
        gen, solver, mg, A, At = self.generation, self.solver, self.mg, self.A, self.At
        wg, head = w[self.row_of], np.zeros(mg)

        def solve(r):
            if self.generation != gen:
                raise RuntimeError("this LDL^T solve was refactored since (one factor per "
                                   "pattern is kept)")
            d = solver.solve(np.concatenate([head, r]))[mg:]
            floor = rtol * np.abs(r).max(initial=0.0)
            for _ in range(refine):
                res = r - At @ (wg * (A @ d)) - E * d
                if np.abs(res).max(initial=0.0) <= floor:
                    break
                d += solver.solve(np.concatenate([head, res]))[mg:]
            return d
        return solve

    def flops(self) -> float:
        """Multiply-adds of one refactorization, ``sum_j nnz(L_{:,j})^2`` (analysing first,
        with unit weights, if no factor exists yet)."""
        if self.solver is None:
            self.factor(np.ones(self.m), np.ones(self.n))
        L = self.solver.factors()[0].tocsc()
        return float((np.diff(L.indptr).astype(np.float64) ** 2).sum())


class _PatternCache:
    """Per operator (held weakly), the :class:`KKTPattern` of each batch element."""

    def __init__(self):
        self._map = weakref.WeakKeyDictionary()
        self._count = [0]  # shared with the patterns made here

    def get(self, op: Operator) -> list[KKTPattern]:
        pats = self._map.get(op)
        if pats is None:
            pats = [KKTPattern(op, b, self._count) for b in range(op.batch_size)]
            self._map[op] = pats
        return pats

    @property
    def factorizations(self) -> int:
        """Numeric factorizations so far (operators since collected included)."""
        return self._count[0]


def kkt_patterns() -> _PatternCache:
    """A new, empty cache of KKT patterns (one per strategy instance)."""
    return _PatternCache()
