r"""A dense Newton factor kept across the Newton steps of one outer step, corrected by
low rank in between.

Within one outer step of the solver (``σ`` and ``τ`` fixed) the generalized Hessian
``H = K^T diag(w) K + diag(shift)`` changes from one Newton step to the next only where a
row enters or leaves the active set, often one or two rows of about ``n``. The Cholesky
factor ``U^T U = H_0`` taken at the last refactorization serves the following steps
through the Sherman-Morrison-Woodbury identity on the ``r`` rows ``C`` whose weight
changed, by ``δ``, since then:

.. math::

    H = H_0 + C^T \Delta C, \qquad
    H^{-1} g = U^{-1} \big(y - V \Delta (I + V^T V \Delta)^{-1} V^T y\big), \qquad
    y = U^{-T} g, \quad V = U^{-T} C^T,

at ``O(n^2 r)`` a step instead of a new factor's ``n^3 / 3``. Every step corrects the same
``H_0`` by the net change (a row that left and came back drops out), so round-off never
accumulates from step to step. Once ``r`` exceeds half of ``n`` (:data:`MAX_RANK_SHARE`)
the factor is taken anew, on the Gram updated by the changed rows
(:class:`sparselp.batching.GramCache`).
The ``r x r`` matrix ``I + V^T V Δ`` is not symmetric (``δ`` has either sign); padding
rows, for the elements with fewer changes than the batch's largest, have ``δ = 0`` and a
unit column there.

The Newton steps are the same with or without the corrections (165 batched steps on the
128 box LPs of ``benchmarks.batched_lp``; times at :data:`MAX_RANK_SHARE`).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .batching import GramCache
from .linsolve import NewtonSystem, cholesky_solve
from .operators import marked_rows

__all__ = ["FactorCache", "MAX_RANK_SHARE"]

#: The largest count of changed rows, as a share of ``n``, corrected by Woodbury before
#: the factor is taken anew. In flops a correction of ``r`` rows (``n^2 r`` for ``V``,
#: ``n r^2`` for ``V^T V``) undercuts the Gram update and factor (``2 n^2 r + n^3 / 3``)
#: up to ``r ~ 0.8 n``. Measured on the 128 box LPs of ``benchmarks.batched_lp`` (n = 100,
#: float64, one thread, median of 5 interleaved solves): shares 0 / 0.1 / 0.25 / 0.5 / 1
#: took 2.41 / 2.25 / 2.18 / 2.07 / 2.11 s.
MAX_RANK_SHARE = 0.5


class FactorCache:
    """The Cholesky factor of the last refactorization, for one call of the Newton loop.

    ``shift`` must stay the same between calls of :meth:`solver` (it does within one
    outer step); only ``w`` may change.
    """

    def __init__(self, strategy):
        self.strategy = strategy  # a CholeskyHessian: its `upper` takes the factor
        self.grams = GramCache()
        self.U = self.w = None

    def solver(self, system: NewtonSystem):
        """``rhs -> H^{-1} rhs`` for the Hessian of ``system``."""
        w = system.w
        if self.U is not None:
            changed = w != self.w
            r = int(changed.sum(-1).max())
            if r == 0:
                U = self.U
                return lambda rhs: cholesky_solve(U, rhs)
            if r <= max(1, int(MAX_RANK_SHARE * system.op.n)):
                solve = self._woodbury(system.op, w, marked_rows(changed))
                if solve is not None:
                    return solve
        self.U = self.strategy.upper(system, self.grams.gram(system.op, w))
        self.w = self.grams.w  # the weights the Gram (and the factor) were taken at
        U = self.U
        return lambda rhs: cholesky_solve(U, rhs)

    def _woodbury(self, K, w: Tensor, rows: Tensor):
        C = K.row_block(rows)
        if C is None:
            return None
        U, delta = self.U, (w - self.w).gather(1, rows)
        V = torch.linalg.solve_triangular(U.mT, C.mT, upper=False)   # (B, n, r)
        M = torch.bmm(V.mT, V).mul_(delta.unsqueeze(1))
        M.diagonal(dim1=-2, dim2=-1).add_(1.0)
        LU, pivots, info = torch.linalg.lu_factor_ex(M)
        if bool((info != 0).any()):
            return None  # a singular correction: take the factor anew

        def solve(rhs):
            y = torch.linalg.solve_triangular(U.mT, rhs.unsqueeze(-1), upper=False)
            s = torch.linalg.lu_solve(LU, pivots, torch.bmm(V.mT, y))
            y = torch.baddbmm(y, V, s.mul_(delta.unsqueeze(-1)), alpha=-1)
            return torch.linalg.solve_triangular(U, y, upper=True).squeeze(-1)
        return solve

    def take(self, idx: Tensor) -> None:
        """Keep the batch elements ``idx`` (the working set shrank)."""
        self.grams.take(idx)
        if self.U is not None:
            self.U, self.w = self.U.index_select(0, idx), self.w.index_select(0, idx)
