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

On CPU, a batch of at most :data:`NUMPY_BATCH` elements (a single LP: Netlib, ``linprog``)
is searched element by element in numpy instead: only the events are sorted, an element
that does not move costs nothing, and numpy's per-operation cost is a fraction of
torch's. Measured (one thread, float64, random rows): 0.10 against 0.38 ms at 300 rows,
0.18 against 0.51 ms at 3,000, 0.30 against 1.0 ms at 8,000; a batch of 4 x 1,000 0.36
against 0.54 ms. The line search was 38% of the time of the 43 feasible Netlib problems.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .operators import all_finite

__all__ = ["breakpoint_step", "numpy_step", "roots_numpy", "searched_in_numpy", "MAX_ROWS",
           "NUMPY_BATCH"]

# Rows times batch elements up to which sorting beats the iterative search (CPU, one
# thread, float32 and float64: 0.4 against 0.7-1.2 ms at 256 to 2,048 rows, 0.9-1.0 against
# 1.2 ms at 8,192; 4.3-4.8 against 1.3-2.1 ms at 32,768; a batch of 128 x 300: 2.5-4.9
# against 2.0-2.2 ms).
MAX_ROWS = 1 << 13
#: Batch elements up to which a CPU search runs per element in numpy (32 x 200 rows: 1.9
#: ms per element against 0.74 ms batched in torch)
NUMPY_BATCH = 4
#: The numpy search sorts only this many of the first events (by a partition) when there
#: are more than twice as many, and all of them when the root lies beyond: on Netlib the
#: root is at event 3 (median), 25 (95th percentile) of about 1,000 (BNL1, PILOT-WE,
#: PEROLD, MAROS, SCRS8), and the search took 80 against 150 us a call.
FIRST_EVENTS = 32


def breakpoint_step(u: Tensor, s: Tensor, eq: Tensor, lin0: Tensor, lin1: Tensor,
                    sigma: Tensor, todo: Tensor) -> Tensor:
    """The root ``t >= 0`` of ``φ'`` per batch element, as :func:`exact_step` returns it.

    ``u``, ``s`` (B, m); ``eq`` (m,) marks equality rows (always active); rows with
    ``u = -inf`` are switched off. ``lin0``, ``lin1`` (B,), ``sigma`` (B, 1). Returns ``t``
    (B,): zero where ``todo`` is False or ``φ'(0) >= 0``, ``+inf`` where ``φ'`` stays
    negative (no proximal term and no row to stop the step).
    """
    if searched_in_numpy(u):
        return _per_element(u, s, eq, lin0, lin1, sigma, todo)
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


def searched_in_numpy(u: Tensor) -> bool:
    """Whether the rows ``u`` (B, m) are searched per element in numpy: a CPU batch of at
    most :data:`NUMPY_BATCH` elements and :data:`MAX_ROWS` rows in all."""
    return u.device.type == "cpu" and u.shape[0] <= NUMPY_BATCH and u.numel() <= MAX_ROWS


def numpy_step(sub, x: Tensor, u: Tensor, d: Tensor, todo: Tensor):
    """The step of :class:`sparselp.linesearch.ExactLineSearch` for a few float64 LPs on
    CPU, on numpy views: ``(x, u, accepted, stalled)`` after the exact step along ``d``.

    The same arithmetic as the torch search, at a fraction of torch's fixed cost per
    operation on vectors of 1e3-1e4 entries (one LP: Netlib, ``linprog``). Measured, one
    thread: BNL1's solve 3.33 s with the torch search, 3.02 s with this one (2,027 Newton
    steps), 5.71 against 5.19 s over six Netlib problems. Float64 only: in float32 the
    sums' other round-off changed the fate of LPs at the edge of float32 certification (2
    of 1,000 fuzzed infeasible and unbounded LPs went to the iteration limit), and the
    round-off test of a late float32 step stays torch's.
    """
    s = sub.system.K.mv(d).mul_(sub.sigma)
    X, D, U, S = (a.detach().numpy() for a in (x, d, u, s))
    lin0 = (sub.system.c.detach().numpy() * D).sum(-1)
    lin1 = np.zeros_like(lin0)
    if sub.proximal:
        tau = sub.tau.detach().numpy()[:, 0]
        lin0 += ((X - sub.center.detach().numpy()) * D).sum(-1) / tau
        lin1 = (D * D).sum(-1) / tau
    t = roots_numpy(U, S, lin0, lin1, sub.system.eq.numpy(),
                    sub.sigma.detach().numpy()[:, 0], todo.numpy())
    accepted = np.isfinite(t)
    t[~accepted] = 0.0
    move = t[:, None] * D
    # A step that no longer moves x means the gradient is at its precision floor.
    eps = np.finfo(X.dtype).eps
    moved = np.abs(move).max(-1, initial=0.0) > 8 * eps * (1 + np.abs(X).max(-1, initial=0.0))
    stalled = not (moved & todo.numpy()).any()
    return (torch.from_numpy(X + move), torch.from_numpy(U + t[:, None] * S),
            torch.from_numpy(accepted), stalled)


def _per_element(u: Tensor, s: Tensor, eq: Tensor, lin0: Tensor, lin1: Tensor,
                 sigma: Tensor, todo: Tensor) -> Tensor:
    """:func:`breakpoint_step` element by element in numpy (CPU tensors, same answer)."""
    out = roots_numpy(*(t.detach().numpy() for t in (u, s, lin0, lin1)), eq.numpy(),
                      sigma.detach().numpy()[:, 0], todo.numpy())
    return torch.from_numpy(out).to(u.dtype)


def roots_numpy(u: np.ndarray, s: np.ndarray, lin0: np.ndarray, lin1: np.ndarray,
                eq: np.ndarray, sigma: np.ndarray, todo: np.ndarray) -> np.ndarray:
    """:func:`breakpoint_step` on numpy arrays, element by element: ``u``, ``s`` (B, m),
    ``lin0``, ``lin1``, ``sigma``, ``todo`` (B,); returns ``t`` (B,), float64."""
    # In float64 whatever the dtype: the sums over the rows, in float32, moved a float32
    # solve's roots enough to stall it (an F-score LP from a shifted start, 300 scores).
    f64 = [a.astype(np.float64, copy=False) for a in (u, s, lin0, lin1, sigma)]
    out = np.zeros(u.shape[0])
    for b in np.flatnonzero(todo):
        out[b] = _root(f64[0][b], f64[1][b], eq, f64[2][b], f64[3][b], f64[4][b])
    return out


def _root(u: np.ndarray, s: np.ndarray, eq: np.ndarray, lin0, lin1, sigma):
    """The root of one element's ``φ'`` (0 where ``φ'(0) >= 0``), as in the batched search."""
    fin = np.isfinite(u)
    if not fin.all():  # a switched-off row is never active
        u, s = u[fin], s[fin]
        eq = eq[fin]
    pos, up = u > 0, s > 0
    act = pos | ((u == 0) & up) | eq
    sa = s[act]
    a = lin0 + np.dot(sa, u[act]) / sigma
    if a >= 0:
        return 0.0
    b = lin1 + np.dot(sa, sa) / sigma
    ev = np.flatnonzero((pos != up) & (u != 0) & (s != 0) & ~eq)
    tk = -u[ev] / s[ev]
    if tk.size > 2 * FIRST_EVENTS:  # the first events alone, unless the root lies beyond
        t = _on_pieces(tk, np.argpartition(tk, FIRST_EVENTS)[:FIRST_EVENTS], ev, u, s, a, b,
                       sigma)
        if t is not None:
            return t
    return _on_pieces(tk, np.arange(tk.size), ev, u, s, a, b, sigma)


def _on_pieces(tk, sel, ev, u, s, a, b, sigma):
    """The root on the pieces cut by the events ``sel`` (indices into ``tk``, the smallest
    ones), or None when it lies beyond the last of them while other events remain."""
    order = sel[np.argsort(tk[sel], kind="stable")]
    tk_s, rows = tk[order], ev[order]
    se = s[rows]
    # phi' after each event: a row turning on (s > 0) adds its share, one turning off
    # (s < 0) removes it; the root is on the first piece whose end value is >= 0.
    signed = np.sign(se) / sigma
    a_k = np.concatenate(([a], a + np.cumsum(signed * se * u[rows])))
    b_k = np.concatenate(([b], b + np.cumsum(signed * se * se)))
    k = int(np.count_nonzero(a_k[:-1] + b_k[:-1] * tk_s < 0))
    if k == tk_s.size < tk.size:
        return None
    left = tk_s[k - 1] if k else 0.0
    right = tk_s[k] if k < tk_s.size else np.inf
    ak, bk = a_k[k], b_k[k]
    if bk > 0:
        t = -ak / bk
    else:
        t = np.inf if ak < 0 else left
    return min(max(t, left), right)
