r"""The canonical problem container and the one function that cleans its inputs.

.. math::

    \min_x \; c^T x \quad \text{s.t.} \quad A x \le b, \quad A_{eq} x = b_{eq},
    \quad lb \le x \le ub

for a single problem or a batch of ``B`` problems of the same shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from .operators import (DenseOperator, Operator, SparseOperator, all_finite, coo_tensor,
                        is_expanded_scalar, scipy_to_torch)

__all__ = ["LinearProgram", "as_operator", "clean_problem", "batch_size"]


def _is_torch_sparse_tensor(A) -> bool:
    """True for a ``torch_sparse.SparseTensor`` (optional dependency, duck-typed)."""
    return type(A).__name__ == "SparseTensor" and hasattr(A, "coo") and hasattr(A, "sparse_sizes")


# Over 60 lines through its docstring and one branch per input kind (about 57 of code).
def as_operator(A, name: str, n: int | None, batch_size: int | None, dtype, device) -> Operator:
    """Wrap a matrix argument as an :class:`Operator`, never densifying sparse input.

    Accepts a torch tensor (strided, COO or CSR; 2-D, or 3-D for a batch), a scipy.sparse
    matrix or array, a numpy array, or a ``torch_sparse.SparseTensor``.
    """
    if _is_torch_sparse_tensor(A):
        row, col, val = A.coo()
        m_, n_ = A.sparse_sizes()
        if val is None:
            val = torch.ones(row.numel(), dtype=dtype or torch.get_default_dtype(), device=row.device)
        A = coo_tensor(torch.stack([row, col]), val, (m_, n_))
    if sp.issparse(A):
        A = scipy_to_torch(A)
    elif isinstance(A, np.ndarray):
        if A.dtype == object:
            raise TypeError(f"{name} must be numeric, got a numpy array of dtype object")
        A = torch.from_numpy(A)
    elif not isinstance(A, Tensor):
        raise TypeError(f"{name} must be a torch tensor, numpy array, scipy.sparse matrix or "
                        f"torch_sparse.SparseTensor, got {type(A).__name__}")
    if A.dim() not in (2, 3):
        raise ValueError(f"{name} must have two dimensions (m, n) or three (B, m, n), "
                         f"got shape {tuple(A.shape)}")
    if n is not None and A.shape[-1] != n:
        raise ValueError(f"{name} must have as many columns as c has entries: expected "
                         f"{n} columns, got shape {tuple(A.shape)}")
    if A.dim() == 3 and batch_size is not None and A.shape[0] != batch_size:
        raise ValueError(f"{name} has batch size {A.shape[0]}, but the problem has batch size "
                         f"{batch_size}")
    if not (A.dtype.is_floating_point or A.dtype in (torch.int32, torch.int64, torch.bool)):
        raise TypeError(f"{name} must have a real floating dtype, got {A.dtype}")
    if device is not None and A.device != device:
        raise ValueError(f"{name} is on device {A.device}, but c is on {device}; "
                         "move all inputs to one device")
    if dtype is not None and A.dtype.is_floating_point and A.dtype != dtype:
        raise TypeError(f"{name} has dtype {A.dtype}, but c has dtype {dtype}; "
                        "pass all inputs in one floating dtype")
    A = A.to(dtype) if dtype is not None else A
    if A.layout == torch.strided:
        if not all_finite(A):
            raise ValueError(f"{name} contains NaN or Inf entries")
        return DenseOperator(A, batch_size)
    if A.layout == torch.sparse_csr and A.dim() == 2:
        # Straight from CSR (row-sorted, as torch keeps it): no int64 COO copy of the indices.
        crow, vals = A.crow_indices(), A.values()
        if not all_finite(vals):
            raise ValueError(f"{name} contains NaN or Inf entries")
        return SparseOperator.from_csr(crow, A.col_indices(), vals, A.shape[0], A.shape[1],
                                       batch_size or 1)
    if A.layout in (torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc):
        A = A.to_sparse_coo()
    if A.layout != torch.sparse_coo:
        raise TypeError(f"{name} has unsupported layout {A.layout}")
    A = A.coalesce()
    vals = A.values()
    if vals.dim() != 1:
        raise ValueError(f"{name} must be fully sparse (no dense dimensions); got a hybrid "
                         f"COO tensor with values of shape {tuple(vals.shape)}")
    if not all_finite(vals):
        raise ValueError(f"{name} contains NaN or Inf entries")
    return SparseOperator.from_coo(A.indices(), vals, tuple(A.shape), batch_size)


def _vector(v, name: str, dtype, device) -> Tensor:
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            raise TypeError(f"{name} must be numeric, got a numpy array of dtype object")
        v = torch.from_numpy(v)
    elif not isinstance(v, Tensor):
        # Python scalars and lists take the problem's dtype and device.
        v = torch.as_tensor(v, dtype=dtype, device=device)
    if v.layout != torch.strided:
        v = v.to_dense()  # vectors are O(m); a sparse vector argument is densified by design
    if device is not None and v.device != device:
        raise ValueError(f"{name} is on device {v.device}, but c is on {device}; "
                         "move all inputs to one device")
    if dtype is not None and v.dtype.is_floating_point and v.dtype != dtype:
        raise TypeError(f"{name} has dtype {v.dtype}, but c has dtype {dtype}; "
                        "pass all inputs in one floating dtype")
    return v.to(dtype) if dtype is not None else v


@dataclass(init=False)
class LinearProgram:
    r"""A linear program, or a batch of ``B`` linear programs of one shape.

    .. math::

        \min_x \; c^T x \quad \text{s.t.} \quad A x \le b, \quad A_{eq} x = b_{eq},
        \quad lb \le x \le ub

    Parameters
    ----------
    c : tensor of shape (n,) or (B, n)
        Objective. Its dtype (float32 or float64) and device are those of the problem.
    A : tensor of shape (m, n) or (B, m, n), optional
        Inequality matrix: a torch dense, COO or CSR tensor, a scipy.sparse matrix, a numpy
        array, or a ``torch_sparse.SparseTensor``. A 2-D matrix is shared by the batch.
        Sparse input stays sparse.
    b : tensor of shape (m,) or (B, m), optional
        Inequality right-hand side. Entries equal to ``+inf`` switch their row off.
    A_eq, b_eq : optional
        Equality rows, same conventions.
    lb, ub : tensor of shape (n,) or (B, n), or scalar, optional
        Variable bounds; ``-inf``/``+inf`` (the defaults) mean no bound. ``x`` is free by
        default (unlike :func:`sparselp.linprog`, whose default is ``x >= 0``).

    Attributes
    ----------
    c : tensor of shape (B, n)
    A, A_eq : :class:`~sparselp.operators.Operator` or None
    b, b_eq, lb, ub : tensors of shape (B, m), (B, m_eq), (B, n), (B, n)
    batched : bool
        Whether the inputs had a batch dimension (results are then batched too).
    """

    c: Tensor
    A: Operator | None
    b: Tensor
    A_eq: Operator | None
    b_eq: Tensor
    lb: Tensor
    ub: Tensor
    batched: bool

    def __init__(self, c, A=None, b=None, A_eq=None, b_eq=None, lb=None, ub=None):
        _clean(self, c, A, b, A_eq, b_eq, lb, ub, {})

    @property
    def batch_size(self) -> int:
        return self.c.shape[0]

    @property
    def n(self) -> int:
        return self.c.shape[1]

    @property
    def m(self) -> int:
        return self.b.shape[1]

    @property
    def m_eq(self) -> int:
        return self.b_eq.shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.c.dtype

    @property
    def device(self) -> torch.device:
        return self.c.device

    def nbytes(self) -> int:
        """Bytes of (A, b, c) as stored (CSR for sparse: values, column and row indices)."""
        isz = self.c.element_size()
        total = (self.c.numel() + self.b.numel() + self.b_eq.numel()) * isz
        for op in (self.A, self.A_eq):
            if op is None:
                continue
            if op.is_sparse:
                total += op.nnz * (isz + 8) + (op.m * (1 if op.shared else op.batch_size) + 1) * 8
            else:
                total += op.nnz * isz
        return total


def _distinct(t: Tensor) -> Tensor:
    """The entries ``t`` really holds: one number for a stride-0 (expanded) view."""
    if is_expanded_scalar(t):
        return t.reshape(-1)[:1]
    return t


def batch_size(args) -> int | None:
    """The batch size ``B`` on which the arguments given with a batch dimension agree.

    Parameters
    ----------
    args : iterable of (name, value, batched_ndim)
        An argument counts as batched when its ``shape`` has ``batched_ndim`` dimensions
        (``c``: 2, a matrix: 3); None and shapeless values (scalars) are skipped.

    Returns
    -------
    int or None
        None when no argument is batched.
    """
    B = first = None
    for name, value, ndim in args:
        shape = getattr(value, "shape", None)
        if shape is None or len(shape) != ndim:
            continue
        if B is None:
            B, first = shape[0], name
        elif shape[0] != B:
            raise ValueError(f"the batch sizes of the arguments disagree: {name} has batch "
                             f"size {shape[0]}, but {first} has batch size {B}")
    return B


def _clean_objective(c) -> Tensor:
    """``c`` as a float32/float64 tensor of shape (n,) or (B, n), finite and not empty."""
    if c is None:
        raise ValueError("c must be given: the objective vector of shape (n,) or (B, n)")
    if isinstance(c, np.ndarray) and c.dtype == object:
        raise TypeError("c must be numeric, got a numpy array of dtype object")
    c = torch.as_tensor(c) if not isinstance(c, Tensor) else c
    if not c.dtype.is_floating_point:
        c = c.to(torch.get_default_dtype())
    if c.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"c must be float32 or float64, got {c.dtype}; cast half-precision "
                        "inputs to float32 first")
    if c.dim() not in (1, 2):
        raise ValueError(f"c must have shape (n,) or (B, n), got shape {tuple(c.shape)}")
    if c.shape[-1] == 0:
        raise ValueError("c must have at least one entry: the problem has no variables")
    if c.dim() == 2 and c.shape[0] == 0:
        raise ValueError("c has a batch dimension of size 0: the batch is empty")
    if not all_finite(c):
        raise ValueError("c contains NaN or Inf entries")
    return c


def _clean_rows(M, v, mname: str, vname: str, n: int, B: int, dtype, device):
    """One block of rows ``M x <= v`` (or ``= v``): its operator and a (B, m) right-hand side."""
    if (M is None) != (v is None):
        raise ValueError(f"{mname} and {vname} must be given together")
    if M is None:
        return None, torch.zeros(B, 0, dtype=dtype, device=device)
    op = as_operator(M, mname, n, B, dtype, device)
    vv = _vector(v, vname, dtype, device)
    if vv.dim() not in (1, 2) or vv.shape[-1] != op.m or (vv.dim() == 2 and vv.shape[0] not in (1, B)):
        raise ValueError(f"{vname} must have shape ({op.m},) or ({B}, {op.m}) to match "
                         f"{mname} with {op.m} rows, got shape {tuple(vv.shape)}")
    vv = vv.reshape(-1, op.m).expand(B, op.m).contiguous()
    # The smallest entry is NaN (amin propagates it) or -inf exactly when some entry is.
    low = vv.amin() if vv.numel() else None
    if low is not None and bool(torch.isnan(low) | (low == -math.inf)):
        raise ValueError(f"{vname} contains NaN or -Inf entries")
    if vname == "b_eq" and not all_finite(vv):
        raise ValueError(f"{vname} contains Inf entries")
    return op, vv


def _clean_bound(v, name: str, default: float, n: int, B: int, dtype, device) -> Tensor:
    """A bound as a (B, n) tensor; None gives a stride-0 view of ``default``."""
    if v is None:  # a stride-0 view: free variables cost no memory
        return torch.full((1, 1), default, dtype=dtype, device=device).expand(B, n)
    t = _vector(v, name, dtype, device)
    if t.dim() == 0:
        t = t.expand(n)
    if t.dim() not in (1, 2) or t.shape[-1] != n or (t.dim() == 2 and t.shape[0] not in (1, B)):
        raise ValueError(f"{name} must be a scalar or have shape ({n},) or ({B}, {n}), "
                         f"got shape {tuple(t.shape)}")
    if t.numel() and bool(torch.isnan(t.amin())):
        raise ValueError(f"{name} contains NaN entries")
    return t.reshape(-1, n).expand(B, n).contiguous()


def _check_bounds_order(lb: Tensor, ub: Tensor, n: int) -> None:
    """Reject ``lb = +inf``, ``ub = -inf`` and crossed bounds ``lb_j > ub_j``."""
    # Defaults are stride-0 views of one number: check that number, not n copies of it.
    lb_c, ub_c = _distinct(lb), _distinct(ub)
    if (lb_c == math.inf).any():
        raise ValueError("lb contains +Inf entries")
    if (ub_c == -math.inf).any():
        raise ValueError("ub contains -Inf entries")
    bad = (lb_c > ub_c).reshape(1, 1) if lb_c.numel() == ub_c.numel() == 1 else lb > ub
    if bad.any():
        j = int(torch.nonzero(bad)[0, -1])
        raise ValueError(f"lower bound above upper bound: lb[{j}] = {float(lb.reshape(-1, n)[0, j]):g}"
                         f" > ub[{j}] = {float(ub.reshape(-1, n)[0, j]):g} (lb must be <= ub)")


def clean_problem(c, A=None, b=None, A_eq=None, b_eq=None, lb=None, ub=None, *,
                  names: dict | None = None) -> LinearProgram:
    """The one input cleaner: check and convert every argument into a :class:`LinearProgram`.

    Messages name the argument and give expected versus actual shape, dtype or device.
    ``names`` renames the matrix arguments in those messages for front ends with other
    argument names (:func:`sparselp.linprog` passes ``{"A": "A_ub", "b": "b_ub"}``).
    """
    lp = LinearProgram.__new__(LinearProgram)
    _clean(lp, c, A, b, A_eq, b_eq, lb, ub, names or {})
    return lp


def _clean(lp: LinearProgram, c, A, b, A_eq, b_eq, lb, ub, names: dict) -> None:
    """Fill ``lp`` from the arguments (see :func:`clean_problem`)."""
    name = {k: names.get(k, k) for k in ("A", "b", "A_eq", "b_eq")}
    c = _clean_objective(c)
    dtype, device, n = c.dtype, c.device, c.shape[-1]
    # A batched A (3-D) makes the problem batched even if c is 1-D.
    B = batch_size([("c", c, 2), (name["A"], A, 3), (name["A_eq"], A_eq, 3)])
    batched = B is not None
    B = B or 1
    c = c.reshape(-1, n).expand(B, n) if c.dim() == 1 or c.shape[0] == 1 else c
    A_op, b_t = _clean_rows(A, b, name["A"], name["b"], n, B, dtype, device)
    Aeq_op, beq_t = _clean_rows(A_eq, b_eq, name["A_eq"], name["b_eq"], n, B, dtype, device)
    lb_t = _clean_bound(lb, "lb", -math.inf, n, B, dtype, device)
    ub_t = _clean_bound(ub, "ub", math.inf, n, B, dtype, device)
    _check_bounds_order(lb_t, ub_t, n)
    lp.c, lp.A, lp.b, lp.A_eq, lp.b_eq, lp.lb, lp.ub = c, A_op, b_t, Aeq_op, beq_t, lb_t, ub_t
    lp.batched = batched
