"""The statuses of a solve's open elements after an outer step (:mod:`sparselp.solver`):
optimal when the residuals are within ``tol``, infeasible or unbounded when a verified
certificate says so (:func:`sparselp.residuals.certificates`), a numerical error when the
iterates are not finite."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .operators import finite_rows
from .residuals import Residuals, certificates
from .scaling import RowSystem
from .solution import Status

__all__ = ["classify"]


def classify(system: RowSystem, tol: float, options, x: Tensor, res: Residuals,
             steps: Callable[[], tuple[Tensor, Tensor]], done: Tensor, status: tuple,
             ray_steps: Tensor):
    """Decide the open elements that are optimal, infeasible, unbounded or broken.

    All arguments are those of the working set (:class:`sparselp.batching.Working`):
    ``system`` its rows, ``done`` (B,) the elements already decided, ``status`` their
    statuses (None while open), ``ray_steps`` (B,) the count of outer steps with a ray.
    ``steps()`` gives the outer step's moves ``(dx, dv)`` of the primal and the
    multipliers, formed only when a certificate is looked for (an m-sized difference a
    block of the chunked loss, whose elements are all optimal, need not form). Returns ``(status, done, ray_steps)`` updated.

    Unbounded needs a feasible point as well as a ray: a problem that is infeasible and
    has a descent ray is infeasible (as scipy and HiGHS report it). The ALM's iterates
    on an unbounded problem approach feasibility only slowly, so a ray is trusted once
    the point is feasible to ``tol``, or once it has persisted for
    ``options.unbounded_patience`` outer steps without an infeasibility certificate (on
    an infeasible problem that certificate follows the ray within a step or two).
    """
    bad = ~torch.isfinite(res.worst) | ~finite_rows(x)
    if bool(((res.worst > tol) & ~done & ~bad).any()):
        dx, dv = steps()
        infeas, unb = certificates(system, dv, dx, options.infeasibility_tol)
    else:  # every open element is optimal: no certificate is needed
        infeas = unb = torch.zeros_like(done)
    ray_steps = torch.where(unb & ~infeas, ray_steps + 1, torch.zeros_like(ray_steps))
    trusted = (res.primal <= tol) | (ray_steps >= options.unbounded_patience)
    status, done = list(status), done.clone()
    for i in range(len(status)):
        if done[i]:
            continue
        if bad[i]:
            status[i] = (Status.NUMERICAL_ERROR, "non-finite values in the iterates")
        elif res.worst[i] <= tol:
            status[i] = (Status.OPTIMAL, "optimal: residuals and gap within tol")
        elif infeas[i]:
            status[i] = (Status.INFEASIBLE, "primal infeasible: a Farkas certificate "
                         "y >= 0 with A^T y = 0, b^T y < 0 was found")
        elif unb[i] and trusted[i]:
            status[i] = (Status.UNBOUNDED, "unbounded: a direction d with c^T d < 0 "
                         "and A d <= 0 was found")
        done[i] = status[i] is not None
    return tuple(status), done, ray_steps
