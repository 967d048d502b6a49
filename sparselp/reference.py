r"""The HiGHS reference solve: ``scipy.optimize.linprog(method="highs")`` on a problem.

One place turns a :class:`~sparselp.problem.LinearProgram` into scipy's arguments, calls
HiGHS once per batch element (on CPU) and brings the answer back as tensors with
sparselp's sign conventions and :class:`~sparselp.solution.Status`. The LP layer's
``backend="highs"`` and :func:`sdr.solve_lp` use it.

scipy reports ``marginals`` = :math:`\partial f^* / \partial b` (``<= 0`` for
``A x <= b``); sparselp's multipliers are their negatives, :math:`v \ge 0`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .problem import LinearProgram
from .solution import Status

__all__ = ["ReferenceResult", "highs_solve"]


@dataclass
class ReferenceResult:
    """HiGHS's answer for every batch element of a problem.

    Attributes
    ----------
    x : tensor of shape (B, n)
        Primal point; NaN where HiGHS returned none.
    fun : list of float
        ``c^T x`` as HiGHS computed it (float64); NaN where HiGHS returned none.
    v : tensor of shape (B, m)
        Multipliers of ``A x <= b`` (``>= 0``, ``d fun / d b = -v``); zero where the
        element is not OPTIMAL.
    v_eq : tensor of shape (B, m_eq)
        Multipliers of ``A_eq x = b_eq``; zero where the element is not OPTIMAL.
    status : list of Status
    message : list of str
    """

    x: Tensor
    fun: list
    v: Tensor
    v_eq: Tensor
    status: list
    message: list


def _to_scipy(op, b: int):
    """Batch element ``b`` of an operator as a scipy CSR matrix (sparse) or numpy array."""
    if op.is_sparse:
        return op.to_scipy(b)
    return op.data[0 if op.shared else b].detach().cpu().numpy()


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _scipy_bounds(lb: Tensor, ub: Tensor) -> list:
    """``(lo, hi)`` pairs with ``None`` for an infinite bound, as scipy expects them."""
    return [(None if math.isinf(lo) else lo, None if math.isinf(hi) else hi)
            for lo, hi in zip(_numpy(lb).tolist(), _numpy(ub).tolist())]


def highs_solve(problem: LinearProgram) -> ReferenceResult:
    """Solve every batch element of ``problem`` with ``scipy.optimize.linprog(method="highs")``.

    Parameters
    ----------
    problem : LinearProgram
        Single or batched; the answer always has the batch dimension.

    Returns
    -------
    ReferenceResult
        On the problem's dtype and device; ``status`` is ``Status(res.status)``, scipy's
        codes being :class:`Status`'s values.
    """
    from scipy.optimize import linprog  # scipy's LP front end: only the reference needs it
    p = problem
    xs, funs, vs, veqs, status, message = [], [], [], [], [], []
    for i in range(p.batch_size):
        kw = {}
        has_ub = p.A is not None and p.m > 0
        has_eq = p.A_eq is not None and p.m_eq > 0
        if has_ub:
            kw.update(A_ub=_to_scipy(p.A, i), b_ub=_numpy(p.b[i]))
        if has_eq:
            kw.update(A_eq=_to_scipy(p.A_eq, i), b_eq=_numpy(p.b_eq[i]))
        res = linprog(_numpy(p.c[i]), bounds=_scipy_bounds(p.lb[i], p.ub[i]),
                      method="highs", **kw)
        st = Status(res.status)
        status.append(st)
        message.append(res.message)
        xs.append(res.x if res.x is not None else np.full(p.n, np.nan))
        funs.append(float(res.fun) if res.fun is not None else math.nan)
        ok = st == Status.OPTIMAL
        vs.append(-res.ineqlin.marginals if ok and has_ub else np.zeros(p.m))
        veqs.append(-res.eqlin.marginals if ok and has_eq else np.zeros(p.m_eq))

    def t(a):
        return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=p.dtype, device=p.device)
    return ReferenceResult(t(np.stack(xs)), funs, t(np.stack(vs)), t(np.stack(veqs)),
                           status, message)
