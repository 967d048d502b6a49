"""Mixed precision for float32 solves: a float64 shadow of the rows for the certificate
and the polish, the best point seen, and the stop when float32 round-off ends progress.

A float32 iterate cannot bring its own residuals below their round-off: the dual residual
of a column that couples n rows sums n rounded terms, about ``sqrt(n) eps`` to ``n eps``
relative (1e-5, the float32 ``tol``, at a batch of 4,096 for the F-score LP). The shadow
(:meth:`sparselp.scaling.RowSystem.astype`) measures the residuals of the float32 point
exactly (in float64) and runs the active-set polish in float64, rounding only its answer;
see ``SolverOptions.mixed_precision``. Where even that cannot certify, the solve keeps
the best point it saw and stops once ``STALL_PATIENCE`` outer steps brought no element's
worst residual below half its level.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .options import SolverOptions
from .residuals import Residuals, ResidualScales
from .scaling import RowSystem
from .structured import share_layout

__all__ = ["shadow_system", "residuals", "Best", "keep_best", "STALL_PATIENCE"]

#: outer steps without halving any open element's best worst residual before a
#: mixed-precision solve stops (ITERATION_LIMIT, with the best point seen)
STALL_PATIENCE = 30


def shadow_system(opt: SolverOptions, system: RowSystem, separable: bool) -> RowSystem | None:
    """The float64 copy of a float32 system for the residuals and the polish, or None
    (see ``SolverOptions.mixed_precision``)."""
    if system.c.dtype != torch.float32:
        return None
    on = opt.mixed_precision
    if on is None:
        on = system.K.is_sparse and not separable
    if not on:
        return None
    try:
        shadow = system.astype(torch.float64)
    except NotImplementedError:  # an operator without a float64 copy
        return None
    share_layout(system.K, shadow.K)  # the same pattern: analysed once
    return shadow


def residuals(system: RowSystem, scales: ResidualScales, shadow: RowSystem | None,
              shadow_scales: ResidualScales | None, x: Tensor, lam: Tensor) -> Residuals:
    """Residuals of ``(x, lam)`` on the unscaled problem; with a shadow in float64 (the
    exact residuals of the float32 point, reported in float32)."""
    if shadow is None:
        return Residuals(system, x, lam, sc=scales)
    return Residuals(shadow, x.double(), lam.double(), sc=shadow_scales).to(x.dtype)


@dataclass(frozen=True)
class Best:
    """Per element, the point with the smallest worst residual so far and its residuals;
    ``level`` the worst residual at the last halving, ``since`` outer steps since then."""

    x: Tensor
    lam: Tensor
    primal: Tensor
    dual: Tensor
    gap: Tensor
    worst: Tensor
    level: Tensor
    since: int = 0


def keep_best(best: Best | None, x: Tensor, lam: Tensor, res: Residuals, done: Tensor) -> Best:
    """``best`` updated with the point ``(x, lam)`` of residuals ``res``."""
    if best is None:
        return Best(x, lam, res.primal, res.dual, res.gap, res.worst, res.worst)
    better = res.worst < best.worst
    if bool(better.any()):
        sel = better.unsqueeze(-1)
        best = Best(torch.where(sel, x, best.x), torch.where(sel, lam, best.lam),
                    *(torch.where(better, new, old) for new, old in
                      ((res.primal, best.primal), (res.dual, best.dual), (res.gap, best.gap),
                       (res.worst, best.worst))), best.level, best.since)
    halved = (best.worst < 0.5 * best.level) & ~done
    if bool(halved.any()):
        return Best(best.x, best.lam, best.primal, best.dual, best.gap, best.worst,
                    torch.where(halved, best.worst, best.level), 0)
    return Best(best.x, best.lam, best.primal, best.dual, best.gap, best.worst, best.level,
                best.since + 1)
