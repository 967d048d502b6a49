r"""The inner solve of one outer step: generalized Newton on a piecewise quadratic.

Each outer step ``j`` of :mod:`sparselp.solver` minimises

.. math::

    \phi_j(x) = c^T x + \frac{1}{2\sigma_j}\|\Pi(\lambda_j + \sigma_j (K x - k))\|^2
               + \frac{1}{2\tau_j}\|x - x_j\|^2,

(``Π``: projection onto ``>= 0`` on inequality rows, identity on equality rows; the last
term only for the proximal ALM), whose generalized Hessian is ``σ K^T D K + I/τ`` with
``D`` the indicator of the rows where the argument of ``Π`` is positive (Mangasarian
2004). :class:`Subproblem` holds ``φ_j``; :func:`newton_minimise` takes Newton steps with
the line search it is handed (:mod:`sparselp.linesearch`) until the gradient is below the
inner tolerance.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .batching import put_rows, take_rows, take_system
from .linesearch import LineSearch, RowKinds
from .linsolve import HessianStrategy, NewtonSystem
from .lowrank import FactorCache
from .operators import any_true, float_mask
from .scaling import RowSystem, inf_norm

__all__ = ["Subproblem", "newton_minimise", "clip_free_columns"]


@dataclass
class Subproblem:
    """``φ_j`` of one outer step, on the equilibrated rows ``system``.

    ``lam`` (B, M) multiplier, ``center`` (B, n) proximal centre ``x_j``, ``sigma`` and
    ``tau`` (B, 1); ``proximal`` False drops the proximal term (the exact penalty).
    """

    system: RowSystem
    rows: RowKinds
    lam: Tensor
    center: Tensor
    sigma: Tensor
    tau: Tensor
    proximal: bool

    def argument(self, x: Tensor) -> Tensor:
        """``u = λ + σ (K x - k)``, the argument of ``Π``, (B, M)."""
        # In place on the fresh product: the same three operations, no m-sized temporaries.
        return self.system.K.mv(x).sub_(self.system.k).mul_(self.sigma).add_(self.lam)

    def value(self, x: Tensor):
        """``(φ(x), u, Π(u))``."""
        u = self.argument(x)
        p = self.rows.proj(u)
        val = (self.system.c * x).sum(-1) + (p * p).sum(-1) / (2 * self.sigma.squeeze(-1))
        if self.proximal:
            val = val + ((x - self.center) ** 2).sum(-1) / (2 * self.tau.squeeze(-1))
        return val, u, p

    def gradient(self, x: Tensor, p: Tensor) -> Tensor:
        """``∇φ(x) = c + K^T Π(u) (+ (x - x_j)/τ)``, given ``p = Π(u)``."""
        g = self.system.c + self.system.K.rmv(p)
        if self.proximal:
            g = g + (x - self.center) / self.tau
        return g

    def take(self, idx: Tensor) -> "Subproblem | None":
        """The subproblem of the batch elements ``idx``, or None (see
        :func:`sparselp.batching.take_system`)."""
        system = take_system(self.system, idx)
        if system is None:
            return None
        return Subproblem(system, self.rows, *(take_rows(t, idx) for t in (
            self.lam, self.center, self.sigma, self.tau)), self.proximal)

    def hessian_weights(self, u: Tensor, p: Tensor, kinks_active: bool) -> Tensor:
        """``σ D``: the diagonal of the generalized Hessian's row weights, (B, M).

        With ``kinks_active``, rows exactly on their kink (``u = 0``, e.g. every row with a
        zero right-hand side at the ``x = 0`` start) enter as well: an equally valid element
        of the generalized Hessian, and one that keeps the first direction on the scale of
        ``1/σ`` rather than ``τ``. Used where a per-coordinate exact search makes the choice
        a matter of speed only.
        """
        if kinks_active:
            return self.rows.active(float_mask(torch.ge, u, 0), inplace=True).mul_(self.sigma)
        return self.sigma * self.rows.active(p)


#: Newton steps of one inner loop after which a step that lowers phi by no more than its
#: round-off counts as stalled (float32; :class:`sparselp.linesearch.ExactLineSearch`)
ROUNDOFF_AFTER = 10


def clip_free_columns(sub: Subproblem, u: Tensor, w: Tensor, d: Tensor) -> Tensor:
    """``d`` with the step of each free column cut at the first kink of its rows.

    A column none of whose rows is active has the shift alone (``1/τ``) as its Hessian,
    uncoupled from the other columns, so its Newton step is ``-τ g_j``: with a large ``τ``
    it flies far past the first kink of its rows, the exact line search stops every
    coordinate there (steps of 1e-7 measured, precision at recall at 256 scores), and a
    Newton step is spent on each such column in turn. Scaling a free column's step by
    ``min(1, 1 / r_j)``, ``r_j`` the largest ``|a_ij| (σ K d)_i / (-u_i)`` over its
    inactive rows approaching their kink (the inverse of the step that reaches it,
    weighted by the entries, near 1 after equilibration), brings it to that kink at
    ``t = 1`` instead. The free block of the Newton system is uncoupled, so ``d`` stays a
    descent direction and the other columns' step is untouched; where no kink is crossed
    it is the Newton step itself.

    Applied on the structured strategy's LPs (a few dense rows or columns): it cut 333
    Newton steps to 231 on six precision-at-recall LPs of a training run (256 scores) and
    569 to 482 over the F-score and precision-at-recall LPs of 256 to 16,384 scores
    (``benchmarks.start_sweep``). On Netlib it was neutral (+2% steps, some problems up to
    23% more), and on small dense LPs no column is ever free while the test costs a
    product with ``|K|``.
    """
    free = sub.system.K.sq_rmv(w) == 0
    if not any_true(free):
        return d
    s = sub.sigma * sub.system.K.mv(d)
    rate = torch.where((u < 0) & (s > 0), s / -u, 0.0)
    r, _ = sub.system.K.abs_extremes(rate, torch.ones_like(d), 1)
    return torch.where(free, d / r.clamp_min(1.0), d)


# Over 60 lines with its docstring: one loop whose working set shrinks as elements
# converge; split into helpers, the eight tensors it selects would travel through each.
def newton_minimise(sub: Subproblem, x: Tensor, inner_tol: Tensor, active: Tensor,
                    strategy: HessianStrategy, search: LineSearch, shift: Tensor,
                    kinks_active: bool, max_steps: int):
    """Generalized Newton steps on ``sub`` from ``x`` until ``‖∇φ‖_∞ <= inner_tol``.

    Only the elements still to move take Newton steps: once some element of the batch is
    inactive or has converged, the others are selected into a smaller working batch
    (:mod:`sparselp.batching`), so a batch costs the sum of its elements' steps rather
    than its slowest element's steps times its size. An element that stops moving keeps
    its gradient, so the working set only shrinks. Operators that cannot select batch
    elements keep the whole batch, the finished elements masked out.

    Parameters
    ----------
    inner_tol : tensor of shape (B,)
    active : bool tensor of shape (B,)
        Elements still being solved; the others do not move.
    shift : tensor of shape (B, 1)
        Diagonal added to ``σ K^T D K`` (``1/τ`` for the ALM).
    max_steps : int
        At most this many Newton steps.

    Returns
    -------
    x, u, p, steps, unfinished
        The new iterate, ``u`` = the argument of ``Π`` there, ``p = Π(u)`` (the next
        multiplier, recovered by thresholding), the number of Newton steps taken, and a
        (B,) bool tensor: the elements still short of ``inner_tol`` when ``max_steps``
        ran out. Elements not ``active`` keep their ``x``; their ``u`` and ``p`` are zero
        when they were left out of the working set (the caller keeps their multipliers).
    """
    full_x, idx = x, None  # the whole batch; idx: the working set in it
    if not bool(active.all()):  # decided elements never enter the working set
        sel = torch.nonzero(active).squeeze(-1)
        small = sub.take(sel)
        if small is not None:
            idx, sub = sel, small
            x, inner_tol, shift, active = (take_rows(t, sel) for t in (x, inner_tol, shift,
                                                                         active))
    u = sub.argument(x)
    p = sub.rows.proj(u)
    # Inactive elements left out of the working set get u = 0 (their x does not move).
    full_u = u if idx is None else u.new_zeros(full_x.shape[0], u.shape[1])
    cache = FactorCache(strategy) if getattr(strategy, "accepts_gram", False) else None
    steps, todo = 0, None
    for _ in range(max_steps):
        g = sub.gradient(x, p)
        todo = (inf_norm(g) > inner_tol) & active
        n_todo = int(todo.sum())
        if not n_todo:
            break
        # Selecting copies the rows of the elements that stay: worth it once a tenth of
        # the working set is done (a few more Newton steps of each element that left
        # cost more than the copy); smaller drops are masked.
        if n_todo <= 0.9 * todo.numel():
            sel = torch.nonzero(todo).squeeze(-1)
            small = sub.take(sel)
            if small is not None:  # the finished elements leave the working set
                full_x, full_u = put_rows(full_x, idx, x), put_rows(full_u, idx, u)
                idx = sel if idx is None else idx.index_select(0, sel)
                sub, x, u, p, g, inner_tol, shift = small, *(take_rows(t, sel) for t in (
                    x, u, p, g, inner_tol, shift))
                todo = active = todo[sel]
                if cache is not None:
                    cache.take(sel)
        w = sub.hessian_weights(u, p, kinks_active)
        del p  # m-sized: the memory of a large solve
        system = NewtonSystem(sub.system.K, w, shift.expand_as(x))
        d = -(strategy.factor(system) if cache is None else cache.solver(system))(g)
        del system
        if strategy.clip_free:
            d = clip_free_columns(sub, u, w, d)
        del w
        if not bool(todo.all()):
            d = torch.where(todo.unsqueeze(-1), d, torch.zeros_like(d))
        gd = g.mul_(d)
        del g
        x, u, accepted, stalled = search.step(sub, x, u, d, gd, todo,
                                              late=steps >= ROUNDOFF_AFTER)
        del gd, d
        p = sub.rows.proj(u)
        steps += 1
        if stalled or not bool(accepted.all()):
            todo = None  # no decrease possible at this precision: left to the outer loop
            break
    # Out of steps (no break): the elements that still had a step to take are unfinished.
    unfinished = torch.zeros(full_x.shape[0], dtype=torch.bool, device=x.device)
    if todo is not None:
        unfinished = todo if idx is None else unfinished.index_fill(0, idx[todo], True)
    if idx is None:
        return x, u, p, steps, unfinished
    full_x, full_u = put_rows(full_x, idx, x), put_rows(full_u, idx, u)
    return full_x, full_u, sub.rows.proj(full_u), steps, unfinished
