"""Residuals of an iterate measured on the original (unscaled) problem, and the Farkas
certificates of infeasibility and unboundedness, for :mod:`sparselp.solver`."""
from __future__ import annotations

import torch
from torch import Tensor

from .operators import any_true
from .scaling import RowSystem, inf_norm, unit_scale

__all__ = ["ResidualScales", "Residuals", "certificates"]

class ResidualScales:
    """What the residuals need that does not change during a solve: a few scalars, and
    row masks only where the problem has equality or switched-off rows (m-sized vectors
    are the memory of a large solve, so none is stored without need)."""

    def __init__(self, system: RowSystem, term_scaled: bool = False, tol: float = 0.0):
        self.has_inf = not system.all_finite()
        fin = torch.isfinite(system.k) if self.has_inf else None
        self.has_eq = any_true(system.eq)
        self.finf = fin.to(system.k.dtype) if self.has_inf else None
        self.eqf = system.eq.to(system.k.dtype) if self.has_eq else None
        self.kf = torch.where(fin, system.k, torch.zeros_like(system.k)) if self.has_inf \
            else system.k
        # Unscaled quantities: K0 x - k0 = (Kx - k) k_scale / r, c0 + K0^T v =
        # c_scale (c + K^T v) / s, c0^T x0 = c_scale k_scale c^T x, k0^T v0 likewise.
        self.obj_scale = system.c_scale.squeeze(-1) * system.k_scale.squeeze(-1)
        # With r = 1 the largest |k0| is the largest |k| times k_scale > 0, exactly
        # (rounding is monotone): no m-sized product.
        self.k0_norm = 1 + (inf_norm(self.kf) * system.k_scale.squeeze(-1)
                            if unit_scale(system.r) else
                            inf_norm(self.kf * (system.k_scale / system.r)))
        self.c0_norm = 1 + inf_norm(system.c * (system.c_scale / system.s))
        # Term-scaled dual residuals (float32 problems, see Residuals): |K| is built on the
        # first residual above tol, never for a solve that certifies without it.
        self.term_scaled, self.tol, self._abs_K = term_scaled, tol, None

    def abs_K(self, system: RowSystem):
        """``|K|`` of the (equilibrated) rows, or None where the operator has no
        absolute copy (the plain residuals are then reported)."""
        if self._abs_K is None:
            try:
                self._abs_K = system.K.absolute()
            except NotImplementedError:
                self._abs_K = False
        return self._abs_K or None


class Residuals:
    r"""Residuals of ``(x_hat, v_hat)`` measured on the original, unscaled problem.

    Plain (float64): the primal violation over ``1 + ||k||_inf``, the dual residual over
    ``1 + ||c||_inf``. Term-scaled dual (``ResidualScales.term_scaled``, float32
    problems): a column's dual residual is divided by the larger of that plain scale and
    ``1 +`` the size of the terms it sums, ``|c| + |K|^T |v|``. A float32 dual vector
    cannot do better: its entries carry relative errors of ``eps = 6e-8``, so a column
    whose terms reach ``T`` (the ``t`` column of the F-score LP sums ``n`` of them,
    ``T ~ n / 5``) has a dual residual near ``T eps`` even at the exact optimum rounded to
    float32 (1e-4 for 65,536 scores, against ``tol`` = 1e-5). Divided by ``T`` it is a
    backward error: the duals are exact for costs and a matrix moved by that relative
    amount. The scale is never smaller than the plain one, and it is computed only when
    the plain residual exceeds ``tol`` (a plain residual within ``tol`` bounds it, and is
    reported). The primal violation stays plain: a float32 ``x`` rounds its own entries,
    not sums of them, and the fuzz benchmark found a badly scaled LP whose term-scaled
    violation passed at a plain 2.4e-5.
    """

    def __init__(self, system: RowSystem, x: Tensor, v: Tensor, Kx: Tensor | None = None,
                 sc: ResidualScales | None = None):
        sc = ResidualScales(system) if sc is None else sc
        # A product made here is overwritten in place; one handed in is left alone.
        diff = system.K.mv(x).sub_(sc.kf) if Kx is None else Kx - sc.kf
        diff.mul_(system.k_scale)
        if not unit_scale(system.r):
            diff.div_(system.r)
        # |diff| on equality rows, its positive part on inequality rows, 0 on switched-off
        # rows; written with products, as torch.where is slow on CPU.
        viol = torch.maximum(diff, -diff * sc.eqf) if sc.has_eq else diff.clamp_min_(0)
        if sc.has_inf:
            viol = viol * sc.finf
        grad = (system.c + system.K.rmv(v)).mul_(system.c_scale).div_(system.s)
        self.primal_obj = sc.obj_scale * (system.c * x).sum(-1)
        self.dual_obj = -sc.obj_scale * (sc.kf * v).sum(-1)
        self.primal = inf_norm(viol) / sc.k0_norm
        self.dual = inf_norm(grad) / sc.c0_norm
        if sc.term_scaled:
            self._term_scaled_dual(system, sc, v, grad)
        self.gap = (self.primal_obj - self.dual_obj).abs() / (
            1 + self.primal_obj.abs() + self.dual_obj.abs())
        self.worst = torch.maximum(torch.maximum(self.primal, self.dual), self.gap)

    def _term_scaled_dual(self, system, sc, v, grad):
        over = self.dual > sc.tol
        absK = sc.abs_K(system) if bool(over.any()) else None
        if absK is None:
            return
        terms = (absK.rmv(v.abs()) + system.c.abs()).mul_(system.c_scale).div_(system.s)
        self.dual = torch.where(over, _scaled_max(grad, terms, sc.c0_norm), self.dual)

    def to(self, dtype: torch.dtype) -> "Residuals":
        """The same numbers in ``dtype`` (residuals measured in float64, reported to a
        float32 solve: the values are accurate, only their own last digits round)."""
        for name in ("primal_obj", "dual_obj", "primal", "dual", "gap", "worst"):
            setattr(self, name, getattr(self, name).to(dtype))
        return self


def _scaled_max(r: Tensor, terms: Tensor, plain: Tensor) -> Tensor:
    """``max_i |r_i| / max(plain, 1 + terms_i)`` over the last dimension (0 when empty)."""
    if not r.shape[-1]:
        return r.new_zeros(r.shape[:-1])
    return (r.abs() / torch.maximum(terms.add_(1), plain.unsqueeze(-1))).amax(-1)


#: a float32 certificate whose residual is within this (its other tests passing) is
#: re-derived in float64 (:func:`_farkas_in_float64`, :func:`_ray_in_float64`)
NEAR = 1e-4
#: entries of a normalised Farkas candidate below this are left out of its support; rows
#: with ``K d`` above minus this bind a ray
SUPPORT = 1e-6


def _farkas(system: RowSystem, y: Tensor, kf: Tensor) -> tuple[Tensor, ...]:
    """``||K^T y||``, ``k^T y`` and the largest ``-y`` of an inequality row, for ``y``
    normalised to ``||y|| = 1``."""
    return (inf_norm(system.K.rmv(y)), (kf * y).sum(-1),
            torch.where(system.eq, torch.zeros_like(y), -y).amax(-1))


def _ray(system: RowSystem, d: Tensor, fin: Tensor) -> tuple[Tensor, Tensor]:
    """``c^T d`` and the largest violation of ``K d <= 0`` (``= 0`` on equality rows), for
    ``d`` normalised to ``||d|| = 1``."""
    Kd = system.K.mv(d)
    viol = torch.where(fin, torch.where(system.eq, Kd.abs(), Kd.clamp_min(0)),
                       torch.zeros_like(Kd))
    return (system.c * d).sum(-1), inf_norm(viol)


#: float64 entries of ``K`` (batch x rows x columns) that the refinement of a float32
#: certificate may form densely; larger problems keep the float32 test alone
DENSE_ENTRIES = 1_000_000


def _in_float64(system: RowSystem) -> tuple[RowSystem, Tensor] | None:
    """The system in float64 and its ``K`` dense (B, M, n), or None above
    :data:`DENSE_ENTRIES` or for an operator without a float64 copy."""
    B, M = system.k.shape
    n = system.c.shape[-1]
    if B * M * n > DENSE_ENTRIES:
        return None
    try:
        s64 = system.astype(torch.float64)
    except NotImplementedError:
        return None
    eye = torch.eye(n, dtype=torch.float64, device=system.c.device)
    return s64, torch.stack([s64.K.mv(eye[j].expand(B, n).contiguous()) for j in range(n)], -1)


def _unit(t: Tensor) -> Tensor:
    return t / inf_norm(t).clamp_min(torch.finfo(t.dtype).tiny).unsqueeze(-1)


def _projected(rows: Tensor, v: Tensor, left: bool) -> Tensor:
    """``v`` less its projection on the span of the columns of ``rows`` (``left``; then
    ``rows^T v = 0``) or of its rows (then ``rows v = 0``): the least change that makes
    it so. An SVD, with the rank cut at 1e-12 of the largest singular value."""
    if not rows.numel():
        return v
    U, sv, Vh = torch.linalg.svd(rows, full_matrices=False)
    r = int((sv > 1e-12 * sv[:1].clamp_min(torch.finfo(sv.dtype).tiny)).sum())
    Q = U[:, :r] if left else Vh[:r].T
    return v - Q @ (Q.T @ v)


# A float32 certificate stops at float32's round-off of its terms (``K^T y`` about 3e-7
# for rows of twenty entries), above ``infeasibility_tol``. The two functions below make
# the least change that removes that residual, in float64 on the rows the certificate
# rests on, and verify the result by the float64 test on the whole system: a certificate
# of the float32 problem's own data, never a looser test.

def _farkas_in_float64(system: RowSystem, s64: RowSystem, Kd: Tensor, y: Tensor,
                       kf: Tensor, near: Tensor, tol: float) -> Tensor:
    """Farkas candidates made exact on their support ``S``: ``y_S`` projected onto the
    null space of ``K_S^T``; (B,) bool. ``s64, Kd``: :func:`_in_float64`."""
    y = y.double()
    sup = (torch.where(system.eq, y.abs(), y) > SUPPORT) & near.unsqueeze(-1)
    out = torch.zeros_like(y)
    for i in torch.nonzero(near).flatten().tolist():
        S = sup[i]
        out[i, S] = _projected(Kd[i][S], y[i, S], left=True)
    res, gap, neg = _farkas(s64, _unit(out), kf.double())
    return near & (res <= tol) & (gap < -tol) & (neg <= tol)


def _ray_in_float64(system: RowSystem, s64: RowSystem, Kd: Tensor, d: Tensor, fin: Tensor,
                    near: Tensor, tol: float) -> Tensor:
    """Rays made exact on their binding rows ``T`` (equality rows, and rows with ``K d``
    above ``-``:data:`SUPPORT`): ``d`` projected onto the null space of ``K_T``; (B,)
    bool. ``s64, Kd``: :func:`_in_float64`."""
    d = d.double()
    out = d.clone()
    bind = fin & (system.eq | ((Kd @ d.unsqueeze(-1)).squeeze(-1) > -SUPPORT))
    for i in torch.nonzero(near).flatten().tolist():
        out[i] = _projected(Kd[i][bind[i]], d[i], left=False)
    cd, viol = _ray(s64, _unit(out), fin)
    return near & (cd < -tol) & (viol <= tol)


def certificates(system: RowSystem, dv: Tensor, dx: Tensor, tol: float):
    """Primal-infeasibility and unboundedness certificates in the scaled space (in a
    float32 solve, one near passing is re-derived in float64)."""
    fin = torch.isfinite(system.k)
    kf = torch.where(fin, system.k, torch.zeros_like(system.k))
    nv = inf_norm(dv).clamp_min(torch.finfo(dv.dtype).tiny).unsqueeze(-1)
    y = torch.where(fin, dv, torch.zeros_like(dv)) / nv
    res, gap, neg = _farkas(system, y, kf)
    big = nv.squeeze(-1) > 1e-8
    infeas = (res <= tol) & (gap < -tol) & (neg <= tol) & big
    nx = inf_norm(dx).clamp_min(torch.finfo(dx.dtype).tiny).unsqueeze(-1)
    d = dx / nx
    cd, viol = _ray(system, d, fin)
    moved = nx.squeeze(-1) > 1e-8
    unbounded = (cd < -tol) & (viol <= tol) & moved
    if dv.dtype == torch.float32:
        near_y = ~infeas & big & (res <= NEAR) & (gap < -tol) & (neg <= NEAR)
        near_d = ~unbounded & moved & (cd < -tol) & (viol <= NEAR)
        has_y, has_d = any_true(near_y), any_true(near_d)
        both = _in_float64(system) if has_y or has_d else None  # formed once for both
        if both is not None and has_y:
            infeas = infeas | _farkas_in_float64(system, *both, y, kf, near_y, tol)
        if both is not None and has_d:
            unbounded = unbounded | _ray_in_float64(system, *both, d, fin, near_d, tol)
    return infeas, unbounded
