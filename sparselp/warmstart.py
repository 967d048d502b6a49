r"""Warm starts: a previous :class:`~sparselp.Solution` as the first iterate of a solve.

The solver's state is a primal ``x`` and the multipliers ``λ`` of the stacked rows
``K = [A; A_eq; -I_L; I_U]`` (:mod:`sparselp.scaling`), in the equilibrated space. A
solution of an LP of the same shapes gives both: ``x̂ = x / (k_scale s)`` and
``λ̂ = [v; v_eq; v_lb[L]; v_ub[U]] / (c_scale r)``, the inverse of what
:func:`sparselp.solver.finish` does. From the exact ``(x*, λ*)`` of the same LP the first
outer step's gradient is ``c + K^T λ* = 0``: it is certified without a Newton step; from
the answer of a nearby LP (the next minibatch's, a perturbed right-hand side) the
proximal ALM starts next to its answer instead of at ``x = 0, λ = 0``.

:class:`WarmStart` holds the last solution of a layer or a loss and hands it to the next
solve when the shapes match (the same batch size, ``n``, ``m``, ``m_eq``); otherwise the
solve starts cold. The answer never depends on the start: it is certified the same way.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .problem import LinearProgram
from .scaling import RowSystem
from .solution import Solution

__all__ = ["WarmStart", "warm_start_fits", "check_warm_start", "warm_iterate"]


class WarmStart:
    """The last solution of a sequence of solves, reused where the shapes allow.

    Pass one as ``warm_start=`` to :func:`sparselp.layer.lp_solve` (``LPLayer`` and the
    losses hold one when built with ``warm_start=True``): each call starts from the
    solution the holder has when it fits the new LP (:func:`warm_start_fits`), cold
    otherwise, and records its own solution for the next call. ``used`` says whether the
    last call was warm-started.
    """

    def __init__(self):
        self.solution: Solution | None = None
        self.used = False

    def start_for(self, problem: LinearProgram) -> Solution | None:
        """The held solution if it fits ``problem``, else None (a cold start)."""
        fits = self.solution is not None and warm_start_fits(self.solution, problem)
        self.used = fits
        return self.solution if fits else None

    def record(self, solution: Solution | None) -> None:
        self.solution = solution

    def __repr__(self) -> str:
        return f"WarmStart(held={self.solution is not None}, used={self.used})"


def _batched(t: Tensor, batched: bool) -> Tensor:
    return t if batched else t.unsqueeze(0)


def _shapes(sol: Solution):
    b = sol.batched
    return tuple(tuple(_batched(getattr(sol, f), b).shape) for f in ("x", "v", "v_eq"))


def warm_start_fits(sol: Solution, problem: LinearProgram) -> bool:
    """True when ``sol`` has the shapes of a solution of ``problem``."""
    B = problem.batch_size or 1
    want = ((B, problem.n), (B, problem.m), (B, problem.m_eq))
    return isinstance(sol, Solution) and _shapes(sol) == want


def check_warm_start(sol, problem: LinearProgram) -> None:
    """Raise a ValueError naming ``warm_start`` when ``sol`` cannot start ``problem``."""
    if not isinstance(sol, Solution):
        raise TypeError(f"warm_start must be a sparselp Solution (or None), got "
                        f"{type(sol).__name__}")
    if not warm_start_fits(sol, problem):
        B = problem.batch_size or 1
        raise ValueError(f"warm_start has shapes x, v, v_eq = {_shapes(sol)}; this problem "
                         f"needs {((B, problem.n), (B, problem.m), (B, problem.m_eq))}")


def warm_iterate(system: RowSystem, sol: Solution, dtype, device) -> tuple[Tensor, Tensor]:
    """``(x̂, λ̂)`` of ``sol`` in the equilibrated space of ``system`` (its scaling
    recorded by :func:`sparselp.scaling.equilibrate`). Elements with a non-finite entry
    start cold (at zero)."""
    b = sol.batched

    def get(name):
        return _batched(getattr(sol, name), b).detach().to(dtype=dtype, device=device)

    x = get("x") / (system.k_scale * system.s)
    m, m_eq, n_lb, n_ub = system.sizes
    if system.K.m == m + m_eq + n_lb + n_ub:
        v = torch.cat([get("v"), get("v_eq"), get("v_lb")[:, system.lb_idx],
                       get("v_ub")[:, system.ub_idx]], 1)
        lam = v / (system.c_scale * system.r)
        ineq = ~system.eq
        lam = torch.where(ineq, lam.clamp_min(0), lam)
    else:  # no constraint: one switched-off placeholder row
        lam = torch.zeros_like(system.k)
    ok = torch.isfinite(x).all(-1) & torch.isfinite(lam).all(-1)
    if not bool(ok.all()):
        x = torch.where(ok.unsqueeze(-1), x, torch.zeros_like(x))
        lam = torch.where(ok.unsqueeze(-1), lam, torch.zeros_like(lam))
    return x, lam
