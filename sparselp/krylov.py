"""Batched preconditioned conjugate gradients: the solve behind the matrix-free ``"cg"``
strategy of :mod:`sparselp.linsolve` (re-exported there and as ``sparselp.cg``)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["cg"]


def cg(matvec: Callable[[Tensor], Tensor], rhs: Tensor, precond: Tensor | None = None,
       tol: float = 1e-10, maxiter: int | None = None, x0: Tensor | None = None):
    """Batched preconditioned conjugate gradients for symmetric positive definite systems.

    Parameters
    ----------
    matvec : callable
        ``v -> H v`` for ``v`` of shape (B, n).
    rhs : tensor of shape (B, n)
    precond : tensor of shape (B, n), optional
        Inverse of a diagonal preconditioner (Jacobi: ``1 / diag(H)``).
    tol : float
        Stop when ``||r_b|| <= tol * ||rhs_b||`` for every batch element ``b``.
    maxiter : int, optional
        Default ``max(50, 2 n)``.

    Returns
    -------
    x : tensor of shape (B, n)
    info : dict with ``iterations`` and the final relative residual ``residual`` (B,).
    """
    maxiter = maxiter or max(50, 2 * rhs.shape[-1])
    x = torch.zeros_like(rhs) if x0 is None else x0.clone()
    r = rhs - matvec(x) if x0 is not None else rhs.clone()
    z = r * precond if precond is not None else r
    p = z.clone()
    rz = (r * z).sum(-1, keepdim=True)
    bnorm = rhs.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(rhs.dtype).tiny)
    it = 0
    for it in range(1, maxiter + 1):
        if bool((r.norm(dim=-1, keepdim=True) <= tol * bnorm).all()):
            it -= 1
            break
        Hp = matvec(p)
        pHp = (p * Hp).sum(-1, keepdim=True)
        alpha = torch.where(pHp > 0, rz / pHp.clamp_min(torch.finfo(rhs.dtype).tiny),
                            torch.zeros_like(rz))
        x = x + alpha * p
        r = r - alpha * Hp
        z = r * precond if precond is not None else r
        rz_new = (r * z).sum(-1, keepdim=True)
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(torch.finfo(rhs.dtype).tiny),
                           torch.zeros_like(rz))
        p = z + beta * p
        rz = rz_new
    res = (r.norm(dim=-1, keepdim=True) / bnorm).squeeze(-1)
    return x, {"iterations": it, "residual": res}
