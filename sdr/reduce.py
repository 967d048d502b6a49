r"""Reduce a linear program by a row projection: ``(A, b) -> (S A, S b)``.

.. math::

    \min_x \; c^T x \quad \text{s.t.} \quad S A x \le S b, \quad A_{eq} x = b_{eq},
    \quad lb \le x \le ub

with :math:`S \in \mathbb{R}^{k \times m}`. Only the inequality rows are projected; ``c``,
the equalities and the variable bounds are kept as they are.

What the reduced LP means depends on ``S``:

- **Nonnegative S** (group averages, row sampling): every reduced row is a nonnegative
  combination of original rows, hence implied by them. The reduced feasible set contains
  the original one, so the reduced LP is a *relaxation*: its optimal value is a lower bound
  of the full one. It can still be unbounded when too few rows are left; keeping the
  variable bounds unreduced is what keeps it bounded when they exist.
- **Signed S** (Gaussian, SRHT, CountSketch, sparse sign): a reduced row is a signed
  combination, implied by nothing. The reduced LP is neither a relaxation nor a
  restriction and is often unbounded; report the solver's status, do not hide it.

The reduced dual :math:`v' \ge 0` lifts to original rows as :math:`u = S^T v'` (see
:func:`lift`): the reduced Lagrangian :math:`c^T x + v'^T (S A x - S b)` equals
:math:`c^T x + u^T (A x - b)`, so ``u`` is what the reduced LP says about
:math:`\partial f^* / \partial b = -v`.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from sparselp.operators import Operator, scipy_to_torch
from sparselp.problem import LinearProgram

__all__ = ["reduce", "lift", "operator_matrix", "KeepRows"]


def operator_matrix(op: Operator, b: int = 0) -> Tensor:
    """Batch element ``b`` of an operator as a torch matrix of shape (m, n).

    Dense operators give a strided tensor, sparse ones a CSR tensor (never densified).
    """
    ones = torch.ones(op.m, dtype=op.dtype, device=op.device)
    return op.weighted_rows(ones, b)


def _check_projection(projection, m: int):
    shape = getattr(projection, "shape", None)
    if shape is None:
        raise TypeError("projection must be a torch matrix of shape (k, m) or a sketch with a "
                        f"`shape` attribute and `S @ X` semantics, got {type(projection).__name__}")
    if len(shape) != 2 or shape[1] != m:
        raise ValueError(f"projection must have shape (k, m) with m = {m} (the number of "
                         f"inequality rows of problem), got shape {tuple(shape)}")
    if shape[0] < 1:
        raise ValueError("projection must have at least one row")


def _as_torch(S):
    """numpy arrays and scipy.sparse matrices as torch (dense / COO); others unchanged."""
    if isinstance(S, np.ndarray):
        return torch.from_numpy(S)
    if sp.issparse(S):
        return scipy_to_torch(S).coalesce()
    return S


def _apply(S, M: Tensor) -> Tensor:
    """``S @ M`` for a torch (dense or sparse) or sketch ``S`` and a dense or sparse ``M``."""
    if not isinstance(S, Tensor):
        return S @ M
    S = S.to(M.dtype)
    if S.layout == torch.strided and M.layout != torch.strided:
        # torch has no dense @ sparse; (M^T S^T)^T is sparse @ dense.
        Mt = M.to_sparse_coo().t().coalesce()
        return torch.sparse.mm(Mt, S.T.contiguous()).T
    if S.layout != torch.strided and M.layout != torch.strided:
        return torch.sparse.mm(S.to_sparse_coo(), M.to_sparse_coo()).coalesce()
    return S @ M


def reduce(problem: LinearProgram, projection) -> LinearProgram:
    """The reduced linear program ``(c, S A, S b)`` with equalities and bounds unchanged.

    Parameters
    ----------
    problem : LinearProgram
        With inequality rows ``A`` of shape (m, n) (shared or batched) and ``b`` of shape
        (B, m); entries of ``b`` must be finite (a ``+inf`` row is switched off and has no
        place in a combination: drop it first).
    projection : tensor of shape (k, m) or sketch
        A dense or sparse (COO/CSR) torch matrix (numpy arrays and scipy.sparse matrices
        are converted), or any object with a ``shape`` of (k, m)
        applied as ``projection @ X`` to a dense or sparse torch matrix (the sketches of
        :mod:`sketching`, whose randomness is fixed at construction, so that the same ``S``
        multiplies ``A`` and ``b``).

    Returns
    -------
    LinearProgram
        ``min c^T x s.t. (S A) x <= S b, A_eq x = b_eq, lb <= x <= ub``; batched like
        ``problem``. ``S A`` is sparse when both ``S`` and ``A`` are sparse torch matrices.

    Raises
    ------
    ValueError
        If ``problem`` has no inequality rows, if the projection's shape does not match, or
        if ``b`` has infinite entries.
    """
    if not isinstance(problem, LinearProgram):
        raise TypeError(f"problem must be a LinearProgram, got {type(problem).__name__}")
    projection = _as_torch(projection)
    if problem.A is None or problem.m == 0:
        raise ValueError("problem has no inequality rows A x <= b to reduce")
    _check_projection(projection, problem.m)
    if not torch.isfinite(problem.b).all():
        raise ValueError("problem.b has +inf entries (switched-off rows); remove those rows "
                         "before reducing: a combination with an infinite row is meaningless")
    if isinstance(projection, Tensor):
        projection = projection.to(device=problem.device, dtype=problem.dtype)
    B = problem.batch_size
    shared = getattr(problem.A, "shared", B == 1)
    blocks = [_apply(projection, operator_matrix(problem.A, i)) for i in range(1 if shared else B)]
    SA = blocks[0] if shared else _stack(blocks)
    Sb = _apply(projection, problem.b.T.contiguous()).T.to(problem.dtype)  # (B, k)
    if SA.layout == torch.strided:
        SA = SA.to(problem.dtype)
    A_eq = None
    if problem.A_eq is not None and problem.m_eq > 0:
        eq_shared = getattr(problem.A_eq, "shared", B == 1)
        eqs = [operator_matrix(problem.A_eq, i) for i in range(1 if eq_shared else B)]
        A_eq = eqs[0] if eq_shared else _stack(eqs)
    c = problem.c if problem.batched else problem.c[0]
    squeeze = (lambda t: t) if problem.batched else (lambda t: t[0])
    return LinearProgram(c, SA, squeeze(Sb),
                         A_eq=A_eq, b_eq=squeeze(problem.b_eq) if A_eq is not None else None,
                         lb=squeeze(problem.lb), ub=squeeze(problem.ub))


def _stack(mats: list[Tensor]) -> Tensor:
    if all(t.layout == torch.strided for t in mats):
        return torch.stack(mats)
    return torch.stack([t.to_sparse_coo() if t.layout != torch.strided else t.to_sparse()
                        for t in mats]).coalesce()


class KeepRows:
    r"""The projection ``S`` on some rows, the identity on the others (``keep``).

    .. math::

        P X = \begin{bmatrix} S X_{\bar K} \\ X_K \end{bmatrix}

    A row with a single nonzero is a variable bound written as a row; keeping such rows
    (``keep = single-nonzero rows``) while sketching the coupling rows keeps a sketched LP
    bounded where the bounds alone made it so.

    Parameters
    ----------
    projection : tensor of shape (k, m - |K|) or sketch
        Acts on the rows not kept, in their order.
    keep : bool tensor of shape (m,)
    """

    def __init__(self, projection, keep: Tensor):
        keep = torch.as_tensor(keep, dtype=torch.bool).reshape(-1)
        self.projection, self.keep = projection, keep
        self.kept = torch.nonzero(keep).reshape(-1)
        self.mixed = torch.nonzero(~keep).reshape(-1)
        shape = getattr(projection, "shape", None)
        if shape is None or len(shape) != 2 or shape[1] != self.mixed.numel():
            raise ValueError(f"projection must have shape (k, {self.mixed.numel()}) to act on "
                             f"the rows not kept, got {None if shape is None else tuple(shape)}")
        self.shape = (shape[0] + self.kept.numel(), keep.numel())

    def __matmul__(self, X: Tensor) -> Tensor:
        dev = X.device
        if X.layout != torch.strided:
            X = X.to_sparse_coo()
        top = _apply(self.projection, X.index_select(0, self.mixed.to(dev)))
        bottom = X.index_select(0, self.kept.to(dev))
        if top.layout == torch.strided or bottom.layout == torch.strided:
            top = top.to_dense() if top.layout != torch.strided else top
            bottom = bottom.to_dense() if bottom.layout != torch.strided else bottom
            return torch.cat([top, bottom.to(top.dtype)], dim=0)
        return torch.cat([top.to_sparse_coo(), bottom.to_sparse_coo()], dim=0).coalesce()

    def rmatvec(self, v: Tensor) -> Tensor:
        """``P^T v`` for ``v`` of shape (k + |K|,)."""
        k = self.shape[0] - self.kept.numel()
        u = torch.zeros(self.shape[1], dtype=v.dtype, device=v.device)
        u[self.mixed.to(v.device)] = lift(self.projection, v[:k])
        u[self.kept.to(v.device)] = v[k:]
        return u


def lift(projection, v_reduced: Tensor) -> Tensor:
    r"""Lift a reduced dual to the original rows: :math:`u = S^T v'`.

    Parameters
    ----------
    projection : tensor of shape (k, m) or sketch
    v_reduced : tensor of shape (k,)

    Returns
    -------
    tensor of shape (m,)
    """
    projection = _as_torch(projection)
    if hasattr(projection, "rmatvec"):
        return projection.rmatvec(v_reduced.reshape(-1))
    v = v_reduced.reshape(-1, 1)
    if isinstance(projection, Tensor):
        S = projection.to(device=v.device, dtype=v.dtype)
        if S.layout != torch.strided:
            return torch.sparse.mm(S.to_sparse_coo().t().coalesce(), v).reshape(-1)
        return (S.T @ v).reshape(-1)
    # A sketch exposes S @ X only. S^T v = (S @ I)^T v; for small m that is the simplest
    # exact route, and a sketch's to_dense() refuses sizes that would not fit.
    if hasattr(projection, "to_dense"):
        S = projection.to_dense(dtype=v.dtype, device=v.device)
    else:
        S = projection @ torch.eye(projection.shape[1], dtype=v.dtype, device=v.device)
    return (S.T @ v).reshape(-1)
