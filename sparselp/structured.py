r"""Newton systems of "separable plus a few dense lines" LPs, in O(nnz).

The F-score and precision-at-recall LPs have one nonzero per row among most columns, plus
a few *dense* columns (the Charnes–Cooper scale ``t``, the threshold ``θ``) and dense rows
(the normalisation / recall row). Their generalized Hessian

.. math::

    H = K^T \operatorname{diag}(w) K + \operatorname{diag}(\text{shift})

is then a diagonal plus a rank-``k`` part. :func:`analyse` finds that structure from the
matrix's index pattern alone, per batch element:

1. *dense rows* ``R``: rows with more than ``max(32, √n)`` entries;
2. *dense columns* ``C``: columns with more than ``max(32, √m)`` entries among the other
   rows;
3. every remaining row with two or more entries among the remaining (*sparse*) columns is
   made a dense row as well (a general sparse row is a rank-one term).

Per-sample lines have O(1) entries and the coupling lines Θ(m), so any threshold in
between separates them; ``max(32, √·)`` grows with the problem (a line of a few hundred
entries in a million-row LP is still cheap to keep dense) and never calls a line of a
small LP dense unless it is denser than 32 entries. The structure qualifies when
``k = |C| + |R| <= cap`` (64) and ``k <= n / 4`` (a real reduction; small general LPs
stay with the sparse or dense direct solvers).

With the columns split into sparse ``S`` and dense ``C`` and the rows into separable
``P`` and dense ``R``, ``H = H_0 + M^T M`` with ``M = diag(√w_R) K_R`` (``k_r`` rows) and
the arrow matrix

.. math::

    H_0 = \begin{pmatrix} D & E \\ E^T & F \end{pmatrix}, \quad
    D = \operatorname{diag}(K_{PS}^T W_P K_{PS}) + \text{shift}_S,\;
    E = K_{PS}^T W_P K_{PC},\; F = K_{PC}^T W_P K_{PC} + \text{shift}_C.

``H_0`` is solved by eliminating the diagonal block first (the Schur complement
``S = F - E^T D^{-1} E``, a ``k_c x k_c`` Cholesky): the pivots of ``D`` are diagonal
pivots of an SPD matrix, so tiny entries (columns whose rows are all inactive keep only
the shift) cost no stability. The dense rows enter by Woodbury,
``H^{-1} = H_0^{-1} - Z (I + M Z)^{-1} Z^T`` with ``Z = H_0^{-1} M^T``; the capacitance
``I + M Z`` is SPD with eigenvalues >= 1. Woodbury is not backward stable when ``D`` has
tiny entries on columns the dense rows touch (an active-set system with the shift
``1e-12``): its error is about ``eps cond(I + M Z)`` relative. So when
``eps trace(I + M Z)`` (a bound on that error) exceeds a tenth of the output's precision
(and 1e3 eps of float64), up to ``refine`` (3) steps of iterative refinement on the exact ``H`` (one product with
``K`` and ``K^T`` each) follow, until the correction is below that precision: each step
multiplies the error by about ``eps cond``, 3e-5 in the worst system of the tests.
Everything is computed in float64 (O(n k) numbers; float32 problems get float64
directions). Work O(nnz + n k² + k³) per factorization, O(nnz + n k) per solve, batched
over the ``B`` LPs of an operator, on any device (pure torch).
"""
from __future__ import annotations

import math
import weakref

import torch
from torch import Tensor

from .operators import Operator, SelectionOperator, SparseOperator, StackedOperator

__all__ = ["Layout", "analyse", "share_layout", "DENSE_CAP"]

#: at most this many dense lines (columns + rows) per batch element
DENSE_CAP = 64
_MIN_DENSE = 32

_CACHE: "weakref.WeakKeyDictionary[Operator, Layout | None]" = weakref.WeakKeyDictionary()


def _threshold(size: int) -> int:
    return max(_MIN_DENSE, math.isqrt(max(size, 0)))


def _parts(op: Operator):
    parts = op.parts if isinstance(op, StackedOperator) else [op]
    if all(isinstance(p, (SparseOperator, SelectionOperator)) for p in parts):
        return parts
    return None


def _part_entries(p, B: int, M: int, off: int, n: int):
    """Flat (row in ``B*M``, column in ``B*n``) of each stored entry of part ``p``, in the
    order of :func:`_values`."""
    dev = p.device
    if isinstance(p, SelectionOperator):
        rows, cols, shared = torch.arange(p.m, device=dev), p.idx.long(), True
    else:
        rows, cols, shared = p.rows.long(), p.cols.long(), p.shared
    if shared:
        b = torch.arange(B, device=dev).repeat_interleave(rows.numel())
        return b * M + off + rows.repeat(B), b * n + cols.repeat(B)
    b = torch.div(rows, p.m, rounding_mode="floor")
    return b * M + off + (rows - b * p.m), cols


def _values(parts, B: int, dtype) -> Tensor:
    """The stored values of every part, flat, in the order of :func:`_part_entries`."""
    out = []
    for p in parts:
        if isinstance(p, SelectionOperator):
            out.append(p.scale.detach().to(dtype).expand(B, p.m).reshape(-1))
        else:
            v = p.vals.detach().to(dtype)
            out.append(v.repeat(B) if p.shared and B > 1 else v)
    return torch.cat(out) if len(out) > 1 else out[0]


def _slots(mask: Tensor, B: int, size: int):
    """Per batch element, the rank of each marked line among the marked ones (-1 off),
    and the largest count over the batch."""
    m2 = mask.view(B, size)
    rank = m2.to(torch.int64).cumsum(1) - 1
    k = int(m2.sum(1).max()) if m2.numel() else 0
    return torch.where(m2, rank, torch.full_like(rank, -1)).reshape(-1), k


def _pairs_by_row(rows: Tensor, ent: Tensor):
    """All ordered pairs ``(e1, e2)`` of entries ``ent`` that share a row (``rows`` their
    rows), each row's ``d`` entries giving ``d²`` pairs."""
    if ent.numel() == 0:
        return ent, ent
    order = torch.sort(rows, stable=True)[1]
    r, e = rows[order], ent[order]
    _, counts = torch.unique_consecutive(r, return_counts=True)
    start = torch.cumsum(counts, 0) - counts
    d = counts.repeat_interleave(counts)            # group size of each entry
    s = start.repeat_interleave(counts)             # group start of each entry
    first = torch.arange(e.numel(), device=e.device).repeat_interleave(d)
    offs = torch.cumsum(d, 0) - d
    within = torch.arange(int(d.sum()), device=e.device) - offs.repeat_interleave(d)
    second = s.repeat_interleave(d) + within
    return e[first], e[second]


class Layout:
    """The dense lines of a batch of sparse matrices and the index maps of the solve.

    Built once per operator by :func:`analyse` from the index pattern; :meth:`factor`
    takes the current values, ``w`` and ``shift``.
    """

    # Over 60 lines: the classification (dense rows, dense columns, forced rows) and the
    # index maps it defines read best in one place; each step is a few vectorised lines.
    def __init__(self, parts, B: int, M: int, n: int, sizes, cap: int):
        # No reference to the operator or its parts: the cache is keyed by the operator.
        self.B, self.M, self.n = B, M, n
        dev = parts[0].device
        offs = [0]
        for s in sizes[:-1]:
            offs.append(offs[-1] + s)
        ent = [_part_entries(p, B, M, o, n) for p, o in zip(parts, offs)]
        erow = torch.cat([e[0] for e in ent])
        ecol = torch.cat([e[1] for e in ent])
        self.erow, self.ecol = erow, ecol
        # 1. dense rows; 2. dense columns among the other rows; 3. forced rows.
        rcount = torch.bincount(erow, minlength=B * M)
        drow = rcount > _threshold(n)
        in_sparse_row = ~drow[erow]
        ccount = torch.bincount(ecol[in_sparse_row], minlength=B * n)
        dcol = ccount > _threshold(M)
        ps = in_sparse_row & ~dcol[ecol]
        drow |= torch.bincount(erow[ps], minlength=B * M) >= 2
        self.row_slot, self.k_r = _slots(drow, B, M)
        self.col_slot, self.k_c = _slots(dcol, B, n)
        self.k = self.k_c + self.k_r
        self.ok = self.k <= cap and self.k <= max(1, n // 4)
        if not self.ok:
            return
        row_dense, col_dense = drow[erow], dcol[ecol]
        idx = torch.arange(erow.numel(), device=dev)
        self.ps = idx[~row_dense & ~col_dense]       # diagonal entries
        pc = idx[~row_dense & col_dense]             # separable rows x dense columns
        self.rd = idx[row_dense]                     # dense rows
        # E: each pc entry meets the (at most one) sparse entry of its row.
        ps_of_row = torch.full((B * M,), -1, dtype=torch.long, device=dev)
        ps_of_row[erow[self.ps]] = self.ps
        partner = ps_of_row[erow[pc]]
        keep = partner >= 0
        self.e_s, self.e_c = partner[keep], pc[keep]
        self.e_at = ecol[self.e_s] * self.k_c + self.col_slot[ecol[self.e_c]]
        # F: pairs of pc entries in one row.
        self.f1, self.f2 = _pairs_by_row(erow[pc], pc)
        fb = torch.div(ecol[self.f1], n, rounding_mode="floor")
        self.f_at = (fb * self.k_c + self.col_slot[ecol[self.f1]]) * self.k_c \
            + self.col_slot[ecol[self.f2]]
        # M: dense rows as a (B, k_r, n) matrix.
        rb = torch.div(erow[self.rd], M, rounding_mode="floor")
        self.m_at = (rb * self.k_r + self.row_slot[erow[self.rd]]) * n \
            + (ecol[self.rd] - rb * n)
        # Dense column positions (flat into B*n), and where they go among the slots.
        self.dpos = torch.nonzero(dcol).squeeze(-1)
        db = torch.div(self.dpos, n, rounding_mode="floor")
        self.dslot = db * self.k_c + self.col_slot[self.dpos]
        self.smask = (~dcol).view(B, n)
        # Composed gathers, once: advanced indexing is slow on CPU, index_select is not.
        self.ps_col, self.ps_row = ecol.index_select(0, self.ps), erow.index_select(0, self.ps)
        self.e_row = erow.index_select(0, self.e_s)
        self.f_row = erow.index_select(0, self.f1)
        self.rd_row = erow.index_select(0, self.rd)

    def factor(self, op: Operator, w: Tensor, shift: Tensor, refine: int = 3):
        """``rhs -> H^{-1} rhs`` for ``H = K^T diag(w) K + diag(shift)``, ``K`` the
        operator this layout was built from (see the module)."""
        return _Factor(self, _parts(op), w, shift, refine)


class _Factor:
    """One factorization: ``D``, ``E``, the Cholesky factors of ``S`` and of ``I + M Z``."""

    def __init__(self, lay: Layout, parts, w: Tensor, shift: Tensor, refine: int):
        B, n, kc, kr = lay.B, lay.n, lay.k_c, lay.k_r
        dev = w.device
        dt = torch.float64 if dev.type in ("cpu", "cuda") else w.dtype
        self.lay, self.dt, self.refine = lay, dt, refine
        v = _values(parts, B, dt)
        wf = w.detach().to(dt).reshape(-1)
        self.v, self.wf = v, wf
        self.shift = shift.detach().to(dt).expand(B, n)
        # D on the sparse columns (1 on the dense ones, which Dinv masks out).
        vs = v.index_select(0, lay.ps)
        D = self.shift.reshape(-1).clone()
        D.index_add_(0, lay.ps_col, wf.index_select(0, lay.ps_row).mul_(vs).mul_(vs))
        self.Dinv = lay.smask.to(dt) / D.view(B, n)
        self.L_S = None
        if kc:
            E = torch.zeros(B * n * kc, dtype=dt, device=dev)
            E.index_add_(0, lay.e_at, wf.index_select(0, lay.e_row)
                         .mul_(v.index_select(0, lay.e_s)).mul_(v.index_select(0, lay.e_c)))
            self.E = E.view(B, n, kc)
            F = torch.zeros(B * kc * kc, dtype=dt, device=dev)
            F.index_add_(0, lay.f_at, wf.index_select(0, lay.f_row)
                         .mul_(v.index_select(0, lay.f1)).mul_(v.index_select(0, lay.f2)))
            F = F.view(B, kc, kc)
            diag = torch.ones(B * kc, dtype=dt, device=dev)  # padded slots: 1
            diag.index_copy_(0, lay.dslot, self.shift.reshape(-1).index_select(0, lay.dpos))
            F.diagonal(dim1=-2, dim2=-1).add_(diag.view(B, kc))
            S = F - self.E.transpose(1, 2) @ (self.Dinv.unsqueeze(-1) * self.E)
            self.L_S = _cholesky(S)
        self.Z, self.error_bound = None, 0.0
        if kr:
            Mf = torch.zeros(B * kr * n, dtype=dt, device=dev)
            Mf.index_add_(0, lay.m_at, wf.index_select(0, lay.rd_row).clamp_min_(0).sqrt_()
                          .mul_(v.index_select(0, lay.rd)))
            self.Mt = Mf.view(B, kr, n).transpose(1, 2)        # (B, n, kr)
            self.Z = self._h0_solve(self.Mt)
            C = self.Mt.transpose(1, 2) @ self.Z
            C.diagonal(dim1=-2, dim2=-1).add_(1.0)
            self.L_C = _cholesky(C)
            # eps * trace(C) bounds the relative error of the Woodbury solve.
            self.error_bound = float(C.diagonal(dim1=-2, dim2=-1).sum(-1).max()) \
                * torch.finfo(dt).eps

    def _h0_solve(self, V: Tensor) -> Tensor:
        """``H_0^{-1} V`` for ``V`` of shape (B, n, q)."""
        lay = self.lay
        V = V.contiguous()  # (the transposed M^T is not): the flat views below write in place
        y = V * self.Dinv.unsqueeze(-1)
        if self.L_S is None:
            return y
        B, n, q = V.shape
        flat = V.reshape(B * n, q)
        vC = torch.zeros(B * lay.k_c, q, dtype=V.dtype, device=V.device)
        vC.index_copy_(0, lay.dslot, flat.index_select(0, lay.dpos))
        t = vC.view(B, lay.k_c, q) - self.E.transpose(1, 2) @ y
        bC = torch.cholesky_solve(t, self.L_S)
        out = (V - self.E @ bC) * self.Dinv.unsqueeze(-1)
        out.view(B * n, q).index_copy_(0, lay.dpos,
                                       bC.reshape(B * lay.k_c, q).index_select(0, lay.dslot))
        return out

    def _solve(self, r: Tensor) -> Tensor:
        x = self._h0_solve(r.unsqueeze(-1))
        if self.Z is not None:
            x = x - self.Z @ torch.cholesky_solve(self.Mt.transpose(1, 2) @ x, self.L_C)
        return x.squeeze(-1)

    def matvec(self, x: Tensor) -> Tensor:
        """``H x`` from the entries (in the factor's precision), for the refinement."""
        lay, B = self.lay, self.lay.B
        Kx = torch.zeros(B * lay.M, dtype=x.dtype, device=x.device)
        Kx.index_add_(0, lay.erow, x.reshape(-1).index_select(0, lay.ecol).mul_(self.v))
        Kx.mul_(self.wf)
        out = torch.zeros(B * lay.n, dtype=x.dtype, device=x.device)
        out.index_add_(0, lay.ecol, Kx.index_select(0, lay.erow).mul_(self.v))
        return out.view(B, lay.n) + self.shift * x

    def __call__(self, rhs: Tensor) -> Tensor:
        g = rhs.detach().to(self.dt)
        x = self._solve(g)
        # The accuracy worth having: a tenth of the output's precision, but no finer than
        # 1e3 eps of float64 (what a direct solve of a moderately conditioned H gives).
        target = max(0.1 * torch.finfo(rhs.dtype).eps, 1e3 * torch.finfo(self.dt).eps)
        if self.error_bound > target:  # refine until the correction is below target
            for _ in range(self.refine):
                d = self._solve(g - self.matvec(x))
                x = x + d
                if bool((d.abs().amax(-1) <= target * x.abs().amax(-1)).all()):
                    break
        return x.to(rhs.dtype)


def _cholesky(S: Tensor) -> Tensor:
    """Cholesky factor of a batch of SPD matrices; a relative jitter if round-off broke it."""
    L, info = torch.linalg.cholesky_ex(S)
    if bool((info != 0).any()):
        d = S.diagonal(dim1=-2, dim2=-1)
        S = S + torch.diag_embed(1e-13 * d.abs().amax(-1, keepdim=True).expand_as(d))
        L = torch.linalg.cholesky(S)
    return L


def share_layout(src: Operator, dst: Operator) -> None:
    """Let ``dst``, a copy of ``src`` in another dtype (the same index pattern), use the
    layouts already analysed for ``src`` (a Layout holds indices only)."""
    try:
        hit = _CACHE.get(src)
        if hit:
            _CACHE.setdefault(dst, {}).update(hit)
    except TypeError:  # not weak-referenceable
        pass


def analyse(op: Operator, cap: int = DENSE_CAP) -> Layout | None:
    """The :class:`Layout` of ``op`` when it is "separable plus at most ``cap`` dense
    lines" per batch element, else None. Cached per operator (it reads only the index
    pattern, which a solve never changes)."""
    key = (cap,)
    try:
        hit = _CACHE.get(op)
    except TypeError:  # not weak-referenceable
        hit = None
    if hit is not None and key in hit:
        return hit[key]
    parts = _parts(op)
    lay = None
    if parts is not None and op.n > 0:
        sizes = [p.m for p in parts]
        lay = Layout(parts, op.batch_size, sum(sizes), op.n, sizes, cap)
        lay = lay if lay.ok else None
    try:
        _CACHE.setdefault(op, {})[key] = lay
    except TypeError:
        pass
    return lay
