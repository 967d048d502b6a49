r"""The exact line search by sorting the breakpoints, for small LPs.

Along a Newton direction the derivative of the subproblem's objective is

.. math::

    φ'(t) = \mathrm{lin0} + t\,\mathrm{lin1} + \frac{1}{σ} \sum_i Π(u_i + t s_i)\, s_i ,

continuous, nondecreasing and linear between the breakpoints ``t_i = -u_i / s_i`` of the
inequality rows. :func:`sparselp.linesearch.exact_step` finds its root by a safeguarded
Newton iteration, a handful of passes over the rows each costing a dozen small tensor
operations and a host synchronisation. For a small LP (a loss on a minibatch of a few
hundred scores, a batch of 100-variable LPs) those fixed costs are the step: here the
breakpoints are sorted once, the pieces' intercepts and slopes are cumulative sums over
them, and the root is read off the first piece where ``φ'`` turns nonnegative, in about
twenty operations and no loop. For large ``m`` the sort costs more than the iteration's
few passes, so the solver uses this only up to :data:`MAX_ROWS` rows in the batch.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .operators import all_finite

__all__ = ["breakpoint_step", "MAX_ROWS"]

# Rows times batch elements up to which sorting beats the iterative search (CPU, one
# thread, float32 and float64: 0.4 against 0.7-1.2 ms at 256 to 2,048 rows, 0.9-1.0 against
# 1.2 ms at 8,192; 4.3-4.8 against 1.3-2.1 ms at 32,768; a batch of 128 x 300: 2.5-4.9
# against 2.0-2.2 ms).
MAX_ROWS = 1 << 13


def breakpoint_step(u: Tensor, s: Tensor, eq: Tensor, lin0: Tensor, lin1: Tensor,
                    sigma: Tensor, todo: Tensor) -> Tensor:
    """The root ``t >= 0`` of ``φ'`` per batch element, as :func:`exact_step` returns it.

    ``u``, ``s`` (B, m); ``eq`` (m,) marks equality rows (always active); rows with
    ``u = -inf`` are switched off. ``lin0``, ``lin1`` (B,), ``sigma`` (B, 1). Returns ``t``
    (B,): zero where ``todo`` is False or ``φ'(0) >= 0``, ``+inf`` where ``φ'`` stays
    negative (no proximal term and no row to stop the step).
    """
    if not all_finite(u):  # a switched-off row: u = -1 and s = 0, never active
        fin = torch.isfinite(u)
        u = torch.where(fin, u, -1.0)
        s = torch.where(fin, s, 0.0)
    # Each row's share of phi' on a piece where it is active: intercept s u / sigma and
    # slope s^2 / sigma, stacked so that one gather and one cumsum serve both.
    w = torch.stack([s * u, s * s]).div_(sigma)
    # Active just after t = 0 (a row at u = 0 turns on where s > 0); equality rows always.
    pos, up = u > 0, s > 0
    act0 = (pos | ((u == 0) & up) | eq).to(u.dtype)
    ab0 = torch.stack([lin0, lin1]) + torch.linalg.vecdot(act0, w)
    # Events at t_i = -u_i / s_i > 0 on inequality rows: s > 0 turns a row on, s < 0 off.
    ev = (pos != up) & (u != 0) & (s != 0) & ~eq
    tk, order = (-u / s).masked_fill_(~ev, torch.inf).sort(dim=-1)
    # The pieces: piece 0 is [0, t_1) with ab0; piece k is [t_k, t_{k+1}) with the sums
    # after k events. phi' is continuous, so its value at t_k is that of piece k-1.
    ab = (w * torch.sign(s).mul_(ev)).gather(-1, order.expand_as(w)).cumsum_(-1)
    ab = torch.cat([ab0.unsqueeze(-1), ab.add_(ab0.unsqueeze(-1))], -1)
    at_event = torch.addcmul(ab[0, :, :-1], ab[1, :, :-1], tk)
    # Events sort first; past them tk = inf (at_event inf or nan), never counted.
    k = (at_event < 0).sum(-1, keepdim=True).clamp_max_(ev.sum(-1, keepdim=True))
    ak, bk = ab.gather(-1, k.expand(2, -1, -1)).squeeze(-1)
    ends = torch.nn.functional.pad(tk, (1, 1), value=0.0)
    ends[:, -1] = torch.inf
    left, right = ends.gather(-1, torch.cat([k, k + 1], -1)).unbind(-1)
    # The root of the piece (+inf where its slope is zero), kept inside the piece.
    t = torch.where(bk > 0, -ak / bk, torch.where(ak < 0, torch.inf, left))
    t = t.clamp_(left, right)
    a0 = ab0[0]
    return torch.where(todo & (a0 < 0), t, 0.0)
