"""Argument handling of the LP layer: batch shapes and differentiable matrix values."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..operators import coo_tensor, crow_to_rows

__all__ = ["Matrix", "as_matrix", "batch_inputs"]


@dataclass
class Matrix:
    """A constraint matrix split into differentiable ``values`` and a fixed structure.

    ``kind == "dense"``: ``values`` has shape (Bk, m, n). ``kind == "sparse"``: ``values``
    has shape (nnz,); ``tensor`` is the (detached) torch sparse matrix they belong to,
    2-D when shared by the batch (Bk = 1) or 3-D. Gradients reach only the stored values,
    i.e. the sparsity pattern.
    """

    kind: str
    values: Tensor
    tensor: Tensor | None
    Bk: int
    m: int
    n: int

    def detached(self) -> Tensor:
        """The matrix for :class:`~sparselp.problem.LinearProgram` (no autograd graph)."""
        if self.kind == "dense":
            v = self.values.detach()
            return v[0] if self.Bk == 1 else v
        return self.tensor

    def _coords(self):
        """(batch, row, col) of every stored value, in the order of ``values``."""
        t = self.tensor
        if t.layout == torch.sparse_csr:  # 2-D CSR: rows from crow by index arithmetic
            return None, crow_to_rows(t.crow_indices(), torch.long), t.col_indices()
        idx = t.indices()
        if idx.shape[0] == 2:
            return None, idx[0], idx[1]
        return idx[0], idx[1], idx[2]

    def outer_grad(self, terms) -> Tensor:
        """Gradient of the values for ``dL/dA = sum_k left_k right_k^T`` (per batch element).

        ``terms`` is a list of pairs ``(left (B, m), right (B, n))``. A matrix shared by the
        batch gets the sum over the batch; a sparse one only its stored entries.
        """
        if self.kind == "dense":
            g = sum(l.unsqueeze(-1) * r.unsqueeze(-2) for l, r in terms)
            return g.sum(0, keepdim=True) if self.Bk == 1 else g
        bi, ri, ci = self._coords()
        if bi is None:
            return sum((l[:, ri] * r[:, ci]).sum(0) for l, r in terms)
        return sum(l[bi, ri] * r[bi, ci] for l, r in terms)


def as_matrix(A, name: str) -> Matrix:
    """Split a dense or sparse (COO/CSR/CSC) torch matrix, 2-D or 3-D, into a Matrix."""
    if not isinstance(A, Tensor):
        raise TypeError(f"{name} must be a torch tensor (dense, COO or CSR), got "
                        f"{type(A).__name__}; wrap scipy/numpy input with torch first")
    if A.dim() not in (2, 3):
        raise ValueError(f"{name} must have shape (m, n) or (B, m, n), got shape "
                         f"{tuple(A.shape)}")
    if A.layout == torch.strided:
        vals = A.unsqueeze(0) if A.dim() == 2 else A
        return Matrix("dense", vals, None, vals.shape[0], vals.shape[1], vals.shape[2])
    if A.layout == torch.sparse_csr and A.dim() == 2:
        # Kept as CSR: its values are differentiable (Tensor.values) and no COO copy of
        # the indices is made in the forward pass.
        return Matrix("sparse", A.values(), A.detach(), 1, A.shape[0], A.shape[1])
    coo = A if A.layout == torch.sparse_coo else A.to_sparse_coo()
    coo = coo.coalesce()
    vals = coo.values()
    if vals.dim() != 1:
        raise ValueError(f"{name} must be fully sparse (no dense dimensions)")
    det = coo_tensor(coo.indices(), vals.detach(), coo.shape, is_coalesced=True)
    Bk = 1 if A.dim() == 2 else A.shape[0]
    return Matrix("sparse", vals, det, Bk, A.shape[-2], A.shape[-1])


def batch_inputs(c, A, b, A_eq, b_eq, lb, ub):
    """Bring every argument to batched shape; return them, ``B`` and whether input was batched."""
    if not isinstance(c, Tensor):
        raise TypeError(f"c must be a torch tensor, got {type(c).__name__}")
    if c.dim() not in (1, 2):
        raise ValueError(f"c must have shape (n,) or (B, n), got shape {tuple(c.shape)}")
    if c.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"c must be float32 or float64, got {c.dtype}")
    n = c.shape[-1]
    sizes = {c.shape[0]} if c.dim() == 2 else set()
    for name, t, d in (("A", A, 3), ("b", b, 2), ("A_eq", A_eq, 3), ("b_eq", b_eq, 2),
                       ("lb", lb, 2), ("ub", ub, 2)):
        if isinstance(t, Tensor) and t.dim() == d:
            sizes.add(t.shape[0])
    if len(sizes) > 1:
        raise ValueError(f"the batch sizes of c, A, b, A_eq, b_eq, lb, ub disagree: "
                         f"{sorted(sizes)}")
    batched = bool(sizes)
    B = sizes.pop() if sizes else 1
    mats = {}
    for name, M, v, vname in (("A", A, b, "b"), ("A_eq", A_eq, b_eq, "b_eq")):
        if (M is None) != (v is None):
            raise ValueError(f"{name} and {vname} must be given together")
        if M is None:
            mats[name], mats[vname] = None, None
            continue
        mat = as_matrix(M, name)
        if mat.n != n:
            raise ValueError(f"{name} must have {n} columns to match c, got shape "
                             f"{tuple(M.shape)}")
        if not isinstance(v, Tensor):
            raise TypeError(f"{vname} must be a torch tensor, got {type(v).__name__}")
        if v.shape[-1] != mat.m or v.dim() not in (1, 2):
            raise ValueError(f"{vname} must have shape ({mat.m},) or (B, {mat.m}) to match "
                             f"{name}, got shape {tuple(v.shape)}")
        mats[name], mats[vname] = mat, v.expand(B, mat.m) if v.dim() == 1 else v
    for name, M in (("A", mats["A"]), ("A_eq", mats["A_eq"])):
        if M is not None and M.values.dtype != c.dtype:
            raise TypeError(f"{name} has dtype {M.values.dtype}, but c has dtype {c.dtype}")
    if mats["A"] is None and mats["A_eq"] is None:
        raise ValueError("at least one of (A, b) and (A_eq, b_eq) must be given")

    def bound(t, name):
        if t is None:
            return None
        t = torch.as_tensor(t, dtype=c.dtype, device=c.device)
        if t.dim() == 0:
            t = t.expand(n)
        if t.shape[-1] != n or t.dim() not in (1, 2):
            raise ValueError(f"{name} must be a scalar or have shape ({n},) or (B, {n}), "
                             f"got shape {tuple(t.shape)}")
        return t.expand(B, n) if t.dim() == 1 else t

    c = c.expand(B, n) if c.dim() == 1 else c
    return (c, mats["A"], mats["b"], mats["A_eq"], mats["b_eq"], bound(lb, "lb"),
            bound(ub, "ub"), B, batched)
