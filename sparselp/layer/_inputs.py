"""Argument handling of the LP layer: batch shapes and differentiable matrix values."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..problem import LinearProgram, batch_size, clean_problem

__all__ = ["Matrix", "as_matrix", "LayerInputs", "batch_inputs"]


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
            crow = t.crow_indices()
            rows = torch.repeat_interleave(torch.arange(self.m, device=crow.device),
                                           crow[1:] - crow[:-1])
            return None, rows, t.col_indices()
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
            g = sum(left.unsqueeze(-1) * right.unsqueeze(-2) for left, right in terms)
            return g.sum(0, keepdim=True) if self.Bk == 1 else g
        batch_idx, row_idx, col_idx = self._coords()
        if batch_idx is None:  # shared by the batch: sum the batch's gradients
            return sum((left[:, row_idx] * right[:, col_idx]).sum(0) for left, right in terms)
        return sum(left[batch_idx, row_idx] * right[batch_idx, col_idx] for left, right in terms)


def as_matrix(A: Tensor) -> Matrix:
    """Split a dense or sparse (COO/CSR/CSC) torch matrix, 2-D or 3-D, into a Matrix.

    ``A`` has passed the problem's cleaner (:func:`sparselp.problem.clean_problem`).
    """
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
    det = torch.sparse_coo_tensor(coo.indices(), vals.detach(), coo.shape,
                                  is_coalesced=True)
    Bk = 1 if A.dim() == 2 else A.shape[0]
    return Matrix("sparse", vals, det, Bk, A.shape[-2], A.shape[-1])


@dataclass
class LayerInputs:
    """The layer's arguments, cleaned once.

    ``problem`` is the detached :class:`~sparselp.problem.LinearProgram` the forward pass
    solves. ``c, b, b_eq, lb, ub`` are (B, .) views of the caller's tensors that keep their
    autograd graph (the problem's own detached tensors where the caller passed no
    floating tensor), ``A, A_eq`` the matrices split into differentiable values.
    """

    problem: LinearProgram
    c: Tensor
    A: Matrix | None
    b: Tensor | None
    A_eq: Matrix | None
    b_eq: Tensor | None
    lb: Tensor | None
    ub: Tensor | None
    batched: bool


def _torch_matrix(M, name: str):
    """The layer differentiates torch matrices only; COO is coalesced once, here."""
    if M is None:
        return None
    if not isinstance(M, Tensor):
        raise TypeError(f"{name} must be a torch tensor (dense, COO or CSR), got "
                        f"{type(M).__name__}; wrap scipy/numpy input with torch first")
    return M.coalesce() if M.layout == torch.sparse_coo else M


def batch_inputs(c, A, b, A_eq, b_eq, lb, ub) -> LayerInputs:
    """Clean the layer's arguments through the problem's cleaner and batch them.

    Any argument may carry the batch dimension (``c`` (B, n), ``A`` (B, m, n), ``b``
    (B, m), ...); the others are shared by the batch.
    """
    if not isinstance(c, Tensor):
        raise TypeError(f"c must be a torch tensor, got {type(c).__name__}")
    A, A_eq = _torch_matrix(A, "A"), _torch_matrix(A_eq, "A_eq")
    # Bounds (scalars, lists or tensors) follow c's dtype and device, as they always have.
    lb, ub = (None if t is None else torch.as_tensor(t, dtype=c.dtype, device=c.device)
              for t in (lb, ub))
    if A is None and A_eq is None and b is None and b_eq is None:
        raise ValueError("at least one of (A, b) and (A_eq, b_eq) must be given")
    B = batch_size([("c", c, 2), ("A", A, 3), ("b", b, 2), ("A_eq", A_eq, 3),
                    ("b_eq", b_eq, 2), ("lb", lb, 2), ("ub", ub, 2)])
    # The layer always works on (B, .) tensors, also for one problem (B = 1); the cleaner
    # takes the batch from c or A only, so a batch carried by b, lb, ... goes to c first.
    c_batched = c.expand(B or 1, c.shape[0]) if c.dim() == 1 else c

    def detach(t):
        return t.detach() if isinstance(t, Tensor) else t
    problem = clean_problem(c_batched.detach(), detach(A), detach(b), detach(A_eq),
                            detach(b_eq), detach(lb), detach(ub))
    n_batch, n = problem.c.shape

    def graph(t, fallback, size):
        """(B, size) view of the caller's tensor, or the problem's where it has no graph."""
        if t is None:
            return None
        if isinstance(t, Tensor) and t.is_floating_point():
            return t.expand(n_batch, size)
        return fallback

    return LayerInputs(problem, graph(c, problem.c, n),
                       None if A is None else as_matrix(A), graph(b, problem.b, problem.m),
                       None if A_eq is None else as_matrix(A_eq),
                       graph(b_eq, problem.b_eq, problem.m_eq), graph(lb, problem.lb, n),
                       graph(ub, problem.ub, n), B is not None)
