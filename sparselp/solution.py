"""The result of a solve: one status enum, the primal-dual pair and its own certificate."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["Status", "Solution"]


class Status(enum.IntEnum):
    """Outcome of a solve; the integer values are ``scipy.optimize.linprog``'s codes.

    OPTIMAL (0)
        Primal residual, dual residual and duality gap all within the tolerance (checked
        after the solve on the original, unscaled problem).
    ITERATION_LIMIT (1)
        ``max_iter``, ``max_outer`` or ``time_limit`` was reached first.
    INFEASIBLE (2)
        A certificate of primal infeasibility was found: ``y`` with ``A^T y = 0`` (to the
        tolerance), ``y >= 0`` on inequality rows and ``b^T y < 0``.
    UNBOUNDED (3)
        A certificate of dual infeasibility was found: a direction ``d`` with ``c^T d < 0``
        and ``A d <= 0``, ``A_eq d = 0`` and bounds respected (to the tolerance).
    NUMERICAL_ERROR (4)
        Non-finite numbers appeared, or the iterations stalled.
    """

    OPTIMAL = 0
    ITERATION_LIMIT = 1
    INFEASIBLE = 2
    UNBOUNDED = 3
    NUMERICAL_ERROR = 4


@dataclass
class Solution:
    """Solution of a linear program or of a batch of them.

    For a batched problem every tensor field has a leading batch dimension ``B``, and
    ``status`` and ``message`` are lists; ``solution[i]`` is the solution of element ``i``.

    Attributes
    ----------
    x : tensor of shape (n,) or (B, n)
        Primal point.
    v : tensor of shape (m,) or (B, m)
        Dual of the inequality rows ``A x <= b`` (``v >= 0``); the least-2-norm dual of
        Mangasarian's method. ``d fun / d b = -v``.
    v_eq : tensor of shape (m_eq,) or (B, m_eq)
        Dual of the equality rows (free sign).
    v_lb, v_ub : tensor of shape (n,) or (B, n)
        Duals of the bounds (``>= 0``). Stationarity: ``c + A^T v + A_eq^T v_eq - v_lb +
        v_ub = 0``.
    fun : tensor of shape () or (B,)
        ``c^T x``.
    status : Status or list of Status
    message : str or list of str
    nit : int
        Newton steps taken.
    primal_residual : tensor of shape () or (B,)
        ``max violation / (1 + max |rhs|)`` over inequality, equality and bound rows.
    dual_residual : tensor of shape () or (B,)
        ``||c + A^T v + A_eq^T v_eq - v_lb + v_ub||_inf / (1 + ||c||_inf)``.
    gap : tensor of shape () or (B,)
        ``|c^T x + b^T v + b_eq^T v_eq - lb^T v_lb + ub^T v_ub| / (1 + |primal| + |dual|)``.
    active : bool tensor of shape (m,) or (B, m)
        Rows ``J`` with ``v_j > 0`` (the active set).
    outer_iterations : int
    linear_solver : str
    polished : bool tensor of shape () or (B,)
        True where the answer was re-solved on its active set (exact up to round-off
        once that set is right), rather than taken from the last ALM iterate.
    """

    x: Tensor
    v: Tensor
    v_eq: Tensor
    v_lb: Tensor
    v_ub: Tensor
    fun: Tensor
    status: object
    message: object
    nit: int
    primal_residual: Tensor
    dual_residual: Tensor
    gap: Tensor
    active: Tensor
    outer_iterations: int = 0
    linear_solver: str = ""
    polished: Tensor | None = None
    batched: bool = field(default=False, repr=False)

    @property
    def success(self):
        """True where ``status`` is OPTIMAL (a bool tensor of shape (B,) when batched)."""
        if self.batched:
            return torch.tensor([s == Status.OPTIMAL for s in self.status])
        return self.status == Status.OPTIMAL

    def __len__(self):
        if not self.batched:
            raise TypeError("an unbatched Solution has no len()")
        return len(self.status)

    def __getitem__(self, i: int) -> "Solution":
        if not self.batched:
            raise TypeError("an unbatched Solution cannot be indexed")
        t = {k: getattr(self, k)[i] for k in ("x", "v", "v_eq", "v_lb", "v_ub", "fun",
                                               "primal_residual", "dual_residual", "gap",
                                               "active")}
        return Solution(status=self.status[i], message=self.message[i], nit=self.nit,
                        outer_iterations=self.outer_iterations,
                        linear_solver=self.linear_solver,
                        polished=None if self.polished is None else self.polished[i],
                        batched=False, **t)

    def __iter__(self):
        return (self[i] for i in range(len(self)))
