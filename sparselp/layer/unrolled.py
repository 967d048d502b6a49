r"""Unrolled differentiation through Newton steps: the paper's approach, kept as a comparison.

The forward runs ``steps`` generalized Newton steps on Mangasarian's exterior penalty

.. math::

    g(y) = \varepsilon\, c^T y + \tfrac12 \|(K y - k)_+\|^2,
    \qquad y \leftarrow y - t\,(K^T D K + \rho I)^{-1} \nabla g(y),

with ``K = [A; A_eq; -A_eq; -I_L; I_U]`` formed dense, and autograd records every step
(the step length ``t`` from Armijo backtracking is treated as a constant). The output is
``x = y`` (infeasible by :math:`O(\varepsilon)`), ``v = (A y - b)_+/\varepsilon`` and
``c^T y``. Memory grows with ``steps`` times the dense ``n x n`` Hessian: this is what
the implicit mode avoids; use it on small problems only.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ._inputs import Matrix

__all__ = ["unrolled_solve"]


def _dense(M: Matrix, B: int) -> Tensor:
    if M.kind == "dense":
        return M.values.expand(B, M.m, M.n)
    batch_idx, row_idx, col_idx = M._coords()
    out = torch.zeros(M.Bk, M.m, M.n, dtype=M.values.dtype, device=M.values.device)
    batch_idx = torch.zeros_like(row_idx) if batch_idx is None else batch_idx
    out = out.index_put((batch_idx, row_idx, col_idx), M.values, accumulate=True)
    return out.expand(B, M.m, M.n)


def unrolled_solve(c: Tensor, A: Matrix | None, b, A_eq: Matrix | None, b_eq, lb, ub,
                   steps: int = 20, eps: float = 1e-3, rho: float = 1e-8):
    """Batched unrolled Newton solve; returns ``(x, v, v_eq, fun)`` with autograd graphs."""
    B, n = c.shape
    rows, rhs = [], []
    if A is not None:
        rows.append(_dense(A, B))
        rhs.append(b)
    if A_eq is not None:
        E = _dense(A_eq, B)
        rows += [E, -E]
        rhs += [b_eq, -b_eq]
    eye = torch.eye(n, dtype=c.dtype, device=c.device).expand(B, n, n)
    for bound, sign in ((lb, -1.0), (ub, 1.0)):
        if bound is not None:
            fin = torch.isfinite(bound)
            rows.append(sign * eye)
            rhs.append(torch.where(fin, sign * bound, torch.full_like(bound, float("inf"))))
    K = torch.cat(rows, 1)
    k = torch.cat(rhs, 1)

    def penalty(y):
        return eps * (c * y).sum(-1) + 0.5 * ((K @ y.unsqueeze(-1)).squeeze(-1) - k
                                              ).clamp_min(0).pow(2).sum(-1)

    y = torch.zeros_like(c)
    for _ in range(steps):
        r = (K @ y.unsqueeze(-1)).squeeze(-1) - k
        p = r.clamp_min(0)
        D = (r > 0).to(c.dtype)
        g = eps * c + (K.transpose(1, 2) @ p.unsqueeze(-1)).squeeze(-1)
        H = K.transpose(1, 2) @ (D.unsqueeze(-1) * K) + rho * eye
        d = torch.linalg.solve(H, g)
        with torch.no_grad():
            f0, slope = penalty(y), -(g * d).sum(-1)
            t = torch.ones_like(f0)
            for _ls in range(30):
                ok = penalty(y - t.unsqueeze(-1) * d) <= f0 + 1e-4 * t * slope
                if bool(ok.all()):
                    break
                t = torch.where(ok, t, 0.5 * t)
        y = y - t.unsqueeze(-1) * d
    x = y
    m = 0 if A is None else A.m
    r = (K @ y.unsqueeze(-1)).squeeze(-1) - k
    v = r[:, :m].clamp_min(0) / eps
    if A_eq is not None:
        me = A_eq.m
        v_eq = (r[:, m:m + me].clamp_min(0) - r[:, m + me:m + 2 * me].clamp_min(0)) / eps
    else:
        v_eq = c.new_zeros(B, 0)
    return x, v, v_eq, (c * x).sum(-1)
