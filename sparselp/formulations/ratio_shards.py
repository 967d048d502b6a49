r"""One rank's rows of the ratio LPs (:mod:`.ratio`) and their optimum in closed form, for
the row-sharded global-batch losses (:mod:`sparselp.sharded`).

Both builders take the GLOBAL batch (every rank holds it after the gather) and the range
``[lo, hi)`` of this rank's own samples. They build only the rows of those samples (two
each, as :func:`.ratio.fscore_data` and :func:`.ratio.precision_at_recall_data`) and
this rank's slice of the global rows, so the LP held by a rank is ``1/world`` of the
whole. The proposed optimum needs a few global numbers, which every rank computes alike
from the gathered scores (in float64): the sums of the F-score, the threshold of precision
at recall. The multipliers come from the optimality conditions of the whole LP, derived
below; :func:`sparselp.sharded.certify` checks them, so a wrong proposal is never
certified, only refused (the loss then solves the whole LP).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..sharded import ArrowShard
from .ratio import (_binary, _check_recall, _check_surrogate, _fscore_coefficients,
                    _fscore_optimum, _fscore_rows, _fscore_t_min, _hinge_slack,
                    _recall_threshold)

__all__ = ["fscore_shard", "precision_at_recall_shard"]


def _check_range(n: int, lo: int, hi: int) -> None:
    if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi <= n):
        raise ValueError(f"lo, hi must be integers with 0 <= lo <= hi <= {n} (the batch), "
                         f"got {lo!r}, {hi!r}")


def _arrow_rows(nl: int, dev, first: Tensor, second: Tensor, shared: Tensor):
    """Triplets of two rows per local sample ``j``: row ``2j`` has ``first[j]`` on column
    ``j`` and ``shared[j]`` on the shared column ``nl``, row ``2j+1`` has ``second[j]`` on
    column ``j``."""
    j = torch.arange(nl, device=dev)
    rows = torch.cat([2 * j, 2 * j + 1, 2 * j])
    cols = torch.cat([j, j, torch.full((nl,), nl, dtype=j.dtype, device=dev)])
    return rows, cols, torch.cat([first, second, shared])


def fscore_shard(scores: Tensor, labels, eps: float, lo: int, hi: int,
                 surrogate: str = "ramp") -> ArrowShard:
    r"""Rows ``[2 lo, 2 hi)`` of :func:`.ratio.fscore_data`'s LP, the normalisation row
    and ``-t <= -t_min`` as global rows, and the optimum.

    Optimality (sample ``k``, rows ``2k``, ``2k+1``; ``mu`` of the normalisation row,
    ``nu`` of ``-t <= -t_min``): a positive's column gives ``-2 + v_{2k} + v_{2k+1} + mu = 0``
    (its two rows have ``+w_k``, or ``-w_k`` at ``2k`` for the ramp), so ``v = 2 - mu``
    on its bound ``w_k <= a_k t``, or on the cap ``w_k <= t`` where the hinge's ``a_k
    >= 1``; a negative's, ``-v_{2k} - v_{2k+1} + mu = 0`` (ramp: ``+v_{2k+1}``), so ``v =
    mu`` on its bound ``a_k t <= w_k``, or on ``w_k >= 0`` where the hinge's ``a_k <
    0``. The ``t`` column then gives ``mu (TP + FP + |P|) = 2 TP + nu`` with ``TP = sum_P
    min(1, a)``, ``FP = sum_N max(0, a)``: ``mu = F*``, the relaxed F-score, and ``nu =
    0`` where ``TP >= 0``; where ``TP < 0`` (the hinge) ``t = t_min``, every negative is
    above its bound (the normalisation's rest is spread over them), so ``mu = 0``, and
    ``nu = -2 TP``. Where a ramp is clipped both rows of a sample are tight; the choice above
    stays feasible (``mu <= 1``) and its score gets no gradient from the clip.
    """
    s, y, npos = _binary(scores, labels, eps)
    _check_range(s.shape[0], lo, hi)
    dev, dt, nl = s.device, s.dtype, hi - lo
    hp, hn = _check_surrogate(surrogate)
    ypos = y == 1
    pos = ypos[lo:hi]
    a = _fscore_coefficients(s[lo:hi], pos, eps, surrogate)  # on the graph: the t column's
    one = torch.ones(nl, dtype=dt, device=dev)
    rows, cols, vals = _fscore_rows(pos, a, surrogate)
    ad = _fscore_coefficients(s.detach().double(), ypos, eps, surrogate)  # float64
    x, f, tp = _fscore_optimum(ad, ypos, npos,
                               _fscore_t_min(s.detach().double(), ypos, npos, eps, surrogate))
    mu = f if tp >= 0 else f * 0
    al = ad[lo:hi]
    pos64 = pos.double()
    cap = pos64 * (al >= 1).double() if hp else 0 * pos64       # v on 2k: the cap
    floor = (1 - pos64) * (al < 0).double() if hn else 0 * pos64  # v on 2k+1: w >= 0
    v = torch.stack([cap * (2 - mu) + (1 - pos64 - floor) * mu,
                     (pos64 - cap) * (2 - mu) + floor * mu], 1).reshape(-1)
    G = torch.zeros(2, nl + 1, dtype=dt, device=dev)
    G[0, :nl], G[0, nl], G[1, nl] = 1.0, float(npos), -1.0
    zero = torch.zeros(1, dtype=dt, device=dev)  # the shared column's
    c = torch.cat([torch.where(pos, -2.0 * one, 0.0 * one), zero])
    return ArrowShard(rows, cols, vals, torch.zeros(2 * nl, dtype=dt, device=dev), c, 1, G,
                      # on the graph: the floor of t holds the scores
                      torch.stack([s.new_ones(()), -_fscore_t_min(s, ypos, npos, eps,
                                                                  surrogate)]),
                      torch.tensor([True, False], device=dev),
                      torch.cat([x[lo:hi], x[-1:]]), v,
                      torch.stack([mu, (-2 * tp).clamp_min(0)]))


def precision_at_recall_shard(scores: Tensor, labels, recall: float, eps: float, lo: int,
                              hi: int) -> ArrowShard:
    r"""Rows ``[2 lo, 2 hi)`` of the precision-at-recall LP, each sample's column its
    ``xi`` (positive) or ``eta`` (negative), the recall row as the global row, and the
    optimum.

    Optimality (``a``, ``b`` the multipliers of a sample's hinge row and of its ``>= 0``
    row, ``rho`` the recall row's): a negative's column gives ``1/q - eps a - b = 0``, so
    ``a = 1/(q eps)`` where its hinge row is tight (``eta > 0``), ``b = 1/q`` where it is
    slack; a positive's gives ``rho - eps a - b = 0``: ``a = rho/eps`` where tight,
    ``b = rho`` where slack; the ``theta`` column, ``sum_P a = sum_N a``, gives ``rho =
    n_eta / (q n_xi)`` with ``n_xi``, ``n_eta`` the positives and negatives whose hinge
    row is tight. A sample on its kink (both rows tight) is counted as tight: the
    threshold's formula counts it the same way.
    """
    _check_recall(recall)
    s, y, npos = _binary(scores, labels, eps)
    _check_range(s.shape[0], lo, hi)
    dev, dt, nl = s.device, s.dtype, hi - lo
    q = s.shape[0] - npos
    pos = y[lo:hi] == 1
    one = torch.ones(nl, dtype=dt, device=dev)
    sign = torch.where(pos, one, -one)
    # row 2j: -eps xi_j + theta <= s_j - eps (positive), -eps eta_j - theta <= -s_j - eps;
    # row 2j+1: -xi_j <= 0 or -eta_j <= 0.
    rows, cols, vals = _arrow_rows(nl, dev, -eps * one, -one, sign)
    b = torch.stack([sign * s[lo:hi] - eps, 0 * one], 1).reshape(-1)
    sd = s.detach().double()
    theta = _recall_threshold(sd[y == 1], recall, eps)
    # A hinge row is tight where its slack variable is positive, or on its kink (to
    # round-off: one scalar tolerance, so that no float temporary of the batch's size is
    # made): xi_i > 0 where s_i < theta + eps, eta_j > 0 where s_j > theta - eps.
    top = max(float(sd.max()), -float(sd.min()))
    tol = 64 * torch.finfo(sd.dtype).eps * (eps + top + abs(float(theta)))
    ypos = y == 1
    tight = torch.where(ypos, sd <= theta + eps + tol, sd >= theta - eps - tol)
    n_xi = int((tight & ypos).sum())
    n_eta = int(tight.sum()) - n_xi
    rho = n_eta / (q * n_xi) if n_xi else 0.0
    sl = sd[lo:hi]
    raw = _hinge_slack(sl, pos, theta, eps)  # xi or eta
    tl, pl = tight[lo:hi].double(), pos.double()
    hinge = tl * (pl * rho + (1 - pl) / q) / eps
    nonneg = (1 - tl) * (pl * rho + (1 - pl) / q)
    zero = torch.zeros(1, dtype=dt, device=dev)  # the shared column's
    c = torch.cat([torch.where(pos, 0 * one, one / q), zero])
    G = torch.cat([pos.to(dt), zero]).reshape(1, -1)
    return ArrowShard(rows, cols, vals, b, c, 1, G,
                      torch.tensor([(1.0 - recall) * npos], dtype=dt, device=dev),
                      torch.tensor([False], device=dev),
                      torch.cat([raw.clamp_min(0), theta.reshape(1)]),
                      torch.stack([hinge, nonneg], 1).reshape(-1),
                      torch.tensor([rho], dtype=torch.float64, device=dev))
