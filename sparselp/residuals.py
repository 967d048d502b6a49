"""Residuals of an iterate measured on the original (unscaled) problem, and the Farkas
certificates of infeasibility and unboundedness, for :mod:`sparselp.solver`."""
from __future__ import annotations

import torch
from torch import Tensor

from .scaling import RowSystem, inf_norm

__all__ = ["ResidualScales", "Residuals", "certificates"]

class ResidualScales:
    """What the residuals need that does not change during a solve: a few scalars, and
    row masks only where the problem has equality or switched-off rows (m-sized vectors
    are the memory of a large solve, so none is stored without need)."""

    def __init__(self, system: RowSystem):
        self.has_inf = not system.all_finite()
        fin = torch.isfinite(system.k) if self.has_inf else None
        self.has_eq = bool(system.eq.any())
        self.finf = fin.to(system.k.dtype) if self.has_inf else None
        self.eqf = system.eq.to(system.k.dtype) if self.has_eq else None
        self.kf = torch.where(fin, system.k, torch.zeros_like(system.k)) if self.has_inf \
            else system.k
        # Unscaled quantities: K0 x - k0 = (Kx - k) k_scale / r, c0 + K0^T v =
        # c_scale (c + K^T v) / s, c0^T x0 = c_scale k_scale c^T x, k0^T v0 likewise.
        self.obj_scale = system.c_scale.squeeze(-1) * system.k_scale.squeeze(-1)
        self.k0_norm = 1 + inf_norm(self.kf * (system.k_scale / system.r))
        self.c0_norm = 1 + inf_norm(system.c * (system.c_scale / system.s))


class Residuals:
    """Residuals of ``(x_hat, v_hat)`` measured on the original, unscaled problem."""

    def __init__(self, system: RowSystem, x: Tensor, v: Tensor, Kx: Tensor | None = None,
                 sc: ResidualScales | None = None):
        sc = ResidualScales(system) if sc is None else sc
        Kx = system.K.mv(x) if Kx is None else Kx
        diff = (Kx - sc.kf).mul_(system.k_scale).div_(system.r)
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
        self.gap = (self.primal_obj - self.dual_obj).abs() / (
            1 + self.primal_obj.abs() + self.dual_obj.abs())
        self.worst = torch.maximum(torch.maximum(self.primal, self.dual), self.gap)

    def to(self, dtype: torch.dtype) -> "Residuals":
        """The same numbers in ``dtype`` (residuals measured in float64, reported to a
        float32 solve: the values are accurate, only their own last digits round)."""
        for name in ("primal_obj", "dual_obj", "primal", "dual", "gap", "worst"):
            setattr(self, name, getattr(self, name).to(dtype))
        return self


def certificates(system: RowSystem, dv: Tensor, dx: Tensor, tol: float):
    """Primal-infeasibility and unboundedness certificates in the scaled space."""
    fin = torch.isfinite(system.k)
    kf = torch.where(fin, system.k, torch.zeros_like(system.k))
    nv = inf_norm(dv).clamp_min(torch.finfo(dv.dtype).tiny).unsqueeze(-1)
    y = torch.where(fin, dv, torch.zeros_like(dv)) / nv
    infeas = (inf_norm(system.K.rmv(y)) <= tol) & ((kf * y).sum(-1) < -tol) \
        & (torch.where(system.eq, torch.zeros_like(y), -y).amax(-1) <= tol) \
        & (nv.squeeze(-1) > 1e-8)
    nx = inf_norm(dx).clamp_min(torch.finfo(dx.dtype).tiny).unsqueeze(-1)
    d = dx / nx
    Kd = system.K.mv(d)
    Kd = torch.where(fin, torch.where(system.eq, Kd.abs(), Kd.clamp_min(0)), torch.zeros_like(Kd))
    unbounded = ((system.c * d).sum(-1) < -tol) & (inf_norm(Kd) <= tol) & (nx.squeeze(-1) > 1e-8)
    return infeas, unbounded
