r"""Ratio metrics as LPs: the F-score (Charnes–Cooper) and precision at a fixed recall.

Both LPs couple every sample to one shared variable (the Charnes–Cooper scale ``t`` or the
threshold ``theta``), so ``A^T D A`` is an arrow matrix, not diagonal: they exercise the
solver's general sparse path.

References
----------
.. [1] Charnes, Cooper, "Programming with linear fractional functionals", Naval Research
   Logistics Quarterly 9 (1962).
.. [2] Eban, Schain, Mackey, Gordon, Saurous, Elidan, "Scalable Learning of
   Non-Decomposable Objectives", AISTATS 2017.
.. [3] Meng et al., "Differentiable Optimization of Generalized Nondecomposable Functions
   using Linear Programs", NeurIPS 2021.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..problem import LinearProgram
from ._base import LPData, check_binary, csr_from_triplets

__all__ = ["fscore", "fscore_data", "precision_at_recall", "precision_at_recall_data",
           "relaxed_predictions"]


def _binary(scores, labels, eps):
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    s, y = check_binary(scores, labels, "the metric")
    return s, y, int(y.sum())


#: the F-score LP's relaxations of the 0/1 predictions (:func:`fscore`): whether the
#: positives, the negatives take the hinge bound (else the ramp)
SURROGATES = {"ramp": (False, False), "hinge": (True, True), "hinge-negatives": (False, True)}


def _check_surrogate(surrogate) -> tuple[bool, bool]:
    if surrogate not in SURROGATES:
        raise ValueError(f"surrogate must be one of {tuple(SURROGATES)}, got {surrogate!r}")
    return SURROGATES[surrogate]


def relaxed_predictions(scores: Tensor, eps: float = 1.0) -> Tensor:
    r"""Ramp relaxation of the 0/1 prediction: :math:`u = \min(1, \max(0, 1/2 + s/(2\varepsilon)))`."""
    return _hinge(scores, eps).clamp(0.0, 1.0)


def _hinge(s: Tensor, eps: float) -> Tensor:
    """``h = 1/2 + s/(2 eps)``: the ramp before its clipping, the hinge bounds' line."""
    return 0.5 + s / (2 * eps)


def _fscore_coefficients(s: Tensor, pos: Tensor, eps: float, surrogate: str) -> Tensor:
    """The t column's coefficient of each sample's bound: the ramp ``u`` (clipped) or,
    on a side that takes the hinge, ``h = 1/2 + s/(2 eps)`` (unclipped)."""
    hp, hn = _check_surrogate(surrogate)
    h = _hinge(s, eps)
    if hp == hn:  # one relaxation for both sides
        return h if hp else h.clamp(0.0, 1.0)
    u = h.clamp(0.0, 1.0)
    return torch.where(pos, h if hp else u, h if hn else u)


def _fscore_rows(pos: Tensor, a: Tensor, surrogate: str = "ramp"):
    """COO triplets of the F-score LP's two rows per sample ``k`` (columns ``w_k``, and
    ``t`` after the ``n`` samples), ``a`` the coefficients of
    :func:`_fscore_coefficients`. The bound: row ``2k+1``, ``w_k - a_k t <= 0``
    (positive); row ``2k``, ``-w_k + a_k t <= 0`` (negative). The other row: ``-w_k <= 0``
    (ramp) or ``w_k - t <= 0`` (hinge) at ``2k`` for a positive; ``w_k - t <= 0`` (ramp)
    or ``-w_k <= 0`` (hinge) at ``2k+1`` for a negative."""
    hp, hn = _check_surrogate(surrogate)
    n, dev = a.shape[0], a.device
    k = torch.arange(n, device=dev)
    t_col = torch.full((n,), n, dtype=torch.long, device=dev)
    one = torch.ones_like(a)
    # the other row's w coefficient and whether it has -t
    w_other = torch.where(pos, one if hp else -one, -one if hn else one)
    t_other = (pos & hp) | (~pos & (not hn))
    other = torch.where(pos, 2 * k, 2 * k + 1)
    bound = torch.where(pos, 2 * k + 1, 2 * k)
    rows = torch.cat([other, other[t_other], bound, bound])
    cols = torch.cat([k, t_col[t_other], k, t_col])
    return rows, cols, torch.cat([w_other, -one[t_other], torch.where(pos, one, -one),
                                  torch.where(pos, -a, a)])


def fscore_data(scores: Tensor, labels, eps: float = 1.0, surrogate: str = "ramp") -> LPData:
    """Tensors of :func:`fscore`, attached to the graph of ``scores`` (through ``A``)."""
    s, y, npos = _binary(scores, labels, eps)
    n, dev, dt = s.shape[0], s.device, s.dtype
    pos = y == 1
    a = _fscore_coefficients(s, pos, eps, surrogate)
    one = torch.ones(n, dtype=dt, device=dev)
    rows, cols, vals = _fscore_rows(pos, a, surrogate)
    # row 2n: -t <= -t_min (0 but for the hinge on the positives)
    A = csr_from_triplets(torch.cat([rows, rows.new_full((1,), 2 * n)]),
                          torch.cat([cols, cols.new_full((1,), n)]),
                          torch.cat([vals, vals.new_full((1,), -1.0)]), (2 * n + 1, n + 1))
    b = torch.cat([torch.zeros(2 * n, dtype=dt, device=dev),
                   -_fscore_t_min(s, pos, npos, eps, surrogate).reshape(1)])  # on the graph
    A_eq = csr_from_triplets(torch.zeros(n + 1, dtype=torch.long, device=dev),
                             torch.arange(n + 1, device=dev),
                             torch.cat([one, torch.tensor([float(npos)], dtype=dt, device=dev)]),
                             (1, n + 1))
    b_eq = torch.ones(1, dtype=dt, device=dev)
    c = torch.cat([torch.where(pos, -2.0 * one, 0.0 * one), torch.zeros(1, dtype=dt, device=dev)])
    # The optimum of the docstring (summed in float64: a float32 sum of 65,536 terms is off
    # by more than the start's tight-row test allows).
    x, _, _ = _fscore_optimum(a.detach().double(), pos, npos,
                              _fscore_t_min(s.detach().double(), pos, npos, eps, surrogate))
    return LPData(c, A, b, A_eq, b_eq, start=x.to(dt))


def _fscore_t_min(s: Tensor, pos: Tensor, npos: int, eps: float, surrogate: str) -> Tensor:
    """The floor of ``t`` from the scores ``s`` (a scalar of their dtype, on their graph):
    ``1 / (2 |P| + FP_u)``, ``FP_u = sum_N max(0, 1/2 + s/(2 eps))``, for the hinge on the
    positives, else 0."""
    if not _check_surrogate(surrogate)[0]:
        return s.new_zeros(())
    return 1.0 / (2 * npos + _hinge(s[~pos], eps).clamp(min=0.0).sum())


def _fscore_optimum(ad: Tensor, pos: Tensor, npos: int,
                    t_min: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The F-score LP's optimum from its coefficients ``ad`` (float64, the whole batch):
    ``(x, F*, TP)``. With the bounds ``yhat = min(1, a)`` (positives), ``max(0, a)``
    (negatives) and ``TP = sum_P yhat >= 0``: ``t = 1 / (sum yhat + |P|)``, ``w = yhat t``
    and ``F* = 2 t TP``. With ``TP < 0`` (the hinge only): ``t = t_min``, ``w = yhat t``
    plus an equal share of what the normalisation row leaves on each negative, ``F* = 2
    t_min TP < 0``."""
    yhat = torch.where(pos, ad.clamp(max=1.0), ad.clamp(min=0.0))
    tp = yhat[pos].sum()
    t = 1.0 / (yhat.sum() + npos) if tp >= 0 else t_min
    w = yhat * t
    if tp < 0:
        w = w + torch.where(pos, 0.0, (1.0 - w.sum() - npos * t) / (ad.shape[0] - npos))
    return torch.cat([w, t.reshape(1)]), 2.0 * tp * t, tp


# Over 60 lines: the docstring is the derivation of both relaxations; the body is one line.
def fscore(scores: Tensor, labels, eps: float = 1.0,
           surrogate: str = "ramp") -> LinearProgram:
    r"""The F1-score LP of a minibatch, by the Charnes–Cooper transformation.

    **Derivation.** Relax each 0/1 prediction to :math:`\hat y_k \in [0, 1]` and tie it to
    the score by the ramp :math:`u_k = \operatorname{clip}(1/2 + s_k/(2\varepsilon), 0, 1)`
    (:func:`relaxed_predictions`): a positive may be predicted at most :math:`u_k`
    (:math:`0 \le \hat y_i \le u_i`), a negative at least :math:`u_k`
    (:math:`u_j \le \hat y_j \le 1`). With :math:`TP = \sum_{i \in \mathcal P} \hat y_i`,
    :math:`FP = \sum_{j \in \mathcal N} \hat y_j`, :math:`FN = |\mathcal P| - TP`,

    .. math::

        F = \frac{2\,TP}{2\,TP + FP + FN} = \frac{2\,TP}{TP + FP + |\mathcal P|},

    a linear-fractional program with a positive denominator. Charnes–Cooper [1]_
    substitutes :math:`t = 1/(TP + FP + |\mathcal P|) > 0`, :math:`w = t \hat y`, and
    gives the LP (here as a minimisation of :math:`-F`)

    .. math::

        \min_{w, t} \; -2 \sum_{i \in \mathcal P} w_i \quad \text{s.t.} \quad
        \sum_k w_k + |\mathcal P| t = 1, \quad
        0 \le w_i \le u_i t \ (i \in \mathcal P), \quad
        u_j t \le w_j \le t \ (j \in \mathcal N), \quad t \ge 0.

    Its optimum is :math:`w_k = u_k t`, :math:`t = 1/(\sum_{\mathcal P} u + \sum_{\mathcal N}
    u + |\mathcal P|)` and :math:`-F^*` with :math:`F^* = 2 \sum_{\mathcal P} u_i\, t`, the
    F-score of the relaxed predictions; it is nondegenerate when :math:`u_i > 0` on
    positives and :math:`u_j < 1` on negatives. The scores enter ``A`` (the ``t`` column),
    not ``b``. As with a ramp loss, a sample on the wrong side by more than ``eps`` gets no
    gradient.

    **Hinge bounds** (``surrogate="hinge"``, Eban et al. [2]_). With :math:`h_k = 1/2 +
    s_k/(2\varepsilon)` unclipped, a positive may be predicted at most :math:`\min(1, h_i)`
    and has no lower bound, a negative at least :math:`\max(0, h_j)` and has no upper
    bound: the rows of sample ``k`` become :math:`w_i \le t`, :math:`w_i \le h_i t` and
    :math:`h_j t \le w_j`, :math:`w_j \ge 0` (still two, and the ``t`` column still
    carries the scores). :math:`TP_l = \sum_{\mathcal P} \min(1, h_i)` is a lower bound on
    the true positives and :math:`FP_u = \sum_{\mathcal N} \max(0, h_j)` an upper bound on
    the false positives that do not saturate on the wrong side: every positive below
    :math:`s = \varepsilon` and every negative above :math:`-\varepsilon` gets a gradient.
    Where :math:`TP_l \ge 0` the denominator :math:`TP_l + FP_u + |\mathcal P| \ge
    |\mathcal P|` is positive and the optimum is :math:`w_k = \hat y_k t` at those bounds,
    :math:`F^* = 2 TP_l/(TP_l + FP_u + |\mathcal P|)`, a lower bound on the F-score of the
    relaxed predictions. Where :math:`TP_l < 0` (the positives far on the wrong side) the
    fraction is negative at every :math:`t > 0` and would rise to 0 as :math:`t \to 0`
    (the negatives' predictions growing without bound): a flat optimum, no gradient, and
    a state training does not leave (measured: one seed of three collapsed in its first
    epoch). The row :math:`t \ge t_{\min} = 1/(2|\mathcal P| + FP_u)` closes that exit:
    it is inactive where :math:`TP_l \ge 0` (there :math:`t = 1/(TP_l + FP_u + |\mathcal
    P|) \ge t_{\min}` as :math:`TP_l \le |\mathcal P|`), and where :math:`TP_l < 0` the
    optimum is :math:`t = t_{\min}`, :math:`F^* = 2 TP_l\, t_{\min} < 0`, still a lower
    bound on the F-score, whose gradient raises every positive below :math:`s =
    \varepsilon`. Its right-hand side holds the scores too and is differentiated with the
    rest: there it also raises the negatives above :math:`-\varepsilon`, :math:`|TP_l|\,
    t_{\min}` times as strongly (a smaller :math:`F^*` is less negative with a larger
    denominator), until the positives' bound is nonnegative again. The LP is feasible (at
    :math:`t = t_{\min}` with :math:`w` spread over the negatives) and bounded
    (:math:`-2 \sum_{\mathcal P} w_i \ge -2`). ``surrogate="hinge-negatives"``: the hinge
    on the negatives only, the ramp on the positives
    (:math:`TP_l \ge 0` always, ``t >= 0``).

    Parameters
    ----------
    scores : tensor of shape (n,)
    labels : integer tensor of shape (n,), values 0 or 1
    eps : float
        Width of the ramp (of the hinge's linear part).
    surrogate : {"ramp", "hinge", "hinge-negatives"}
        The bounds that relax the predictions (see above).

    Returns
    -------
    LinearProgram
        Variables ``x = (w_1..w_n, t)``; ``A`` sparse of shape (2n+1, n+1) with ``4n + 1 -
        |P|`` nonzeros (ramp; ``3n + 1 + |P|`` hinge, ``3n + 1`` hinge-negatives); one
        equality row.
    """
    return fscore_data(scores, labels, eps, surrogate).problem()


def precision_at_recall_data(scores: Tensor, labels, recall: float = 0.8,
                             eps: float = 1.0) -> LPData:
    """Tensors of :func:`precision_at_recall`, attached to the graph of ``scores``."""
    _check_recall(recall)
    s, y, npos = _binary(scores, labels, eps)
    dev, dt = s.device, s.dtype
    pos = torch.nonzero(y == 1).squeeze(1)
    neg = torch.nonzero(y == 0).squeeze(1)
    p, q = pos.numel(), neg.numel()
    # Variables: xi (p), eta (q), theta; rows: 2 per positive, 2 per negative, recall row.
    ip, iq = torch.arange(p, device=dev), torch.arange(q, device=dev)
    th = torch.full((max(p, q),), p + q, dtype=torch.long, device=dev)
    one_p, one_q = torch.ones(p, dtype=dt, device=dev), torch.ones(q, dtype=dt, device=dev)
    rows = torch.cat([2 * ip, 2 * ip, 2 * ip + 1,                       # positives
                      2 * p + 2 * iq, 2 * p + 2 * iq, 2 * p + 2 * iq + 1,  # negatives
                      torch.full((p,), 2 * (p + q), device=dev)])       # recall row
    cols = torch.cat([ip, th[:p], ip, p + iq, th[:q], p + iq, ip])
    vals = torch.cat([-eps * one_p, one_p, -one_p, -eps * one_q, -one_q, -one_q, one_p])
    A = csr_from_triplets(rows, cols, vals, (2 * (p + q) + 1, p + q + 1))
    zp, zq = torch.zeros(p, dtype=dt, device=dev), torch.zeros(q, dtype=dt, device=dev)
    b = torch.cat([torch.stack([s[pos] - eps, zp], 1).reshape(-1),
                   torch.stack([-s[neg] - eps, zq], 1).reshape(-1),
                   torch.tensor([(1.0 - recall) * p], dtype=dt, device=dev)])
    c = torch.cat([zp, one_q / q, torch.zeros(1, dtype=dt, device=dev)])
    # The optimum in closed form, computed in float64 (cumulative sums of the scores).
    sd = s.detach().double()
    theta = _recall_threshold(sd[pos], recall, eps)
    slack = _hinge_slack(sd, y == 1, theta, eps).clamp_min_(0)
    start = torch.cat([slack[pos], slack[neg], theta.reshape(1)])
    return LPData(c, A, b, start=start.to(dt))


def _hinge_slack(sd: Tensor, is_pos: Tensor, theta: Tensor, eps: float) -> Tensor:
    """The precision-at-recall LP's hinge at threshold ``theta`` before its clamp at 0:
    ``1 + (theta - s)/eps`` for a positive (its ``xi``), ``1 + (s - theta)/eps`` for a
    negative (its ``eta``)."""
    return 1 + torch.where(is_pos, theta - sd, sd - theta) / eps


def _check_recall(recall) -> None:
    if not (isinstance(recall, (int, float)) and 0 < recall <= 1):
        raise ValueError(f"recall must be in (0, 1], got {recall!r}")


def _recall_threshold(sp: Tensor, recall: float, eps: float) -> Tensor:
    r"""The optimal threshold of :func:`precision_at_recall`: the largest :math:`	heta`
    with :math:`g(	heta) = \sum_{\mathcal P} \max(0, (	heta - a_i)/arepsilon) \le
    (1-eta)|\mathcal P|`, :math:`a_i = s_i - arepsilon` (the false positives fall as
    :math:`	heta` grows, the recall constraint holds while :math:`g` stays below its
    bound). ``g`` is piecewise linear and increasing past the smallest ``a``: on the piece
    after the ``k`` smallest ``a`` it is :math:`(k	heta - S_k)/arepsilon`, so the root is
    :math:`(arepsilon R + S_k)/k` on the first piece whose right end reaches ``R``."""
    a = (sp - eps).sort().values
    p = a.numel()
    k = torch.arange(1, p + 1, dtype=a.dtype, device=a.device)
    S = a.cumsum(0)
    R = (1.0 - recall) * p
    right = torch.cat([(k[:-1] * a[1:] - S[:-1]) / eps, a.new_full((1,), torch.inf)])
    j = int((right < R).sum())  # pieces that end below R
    return (eps * R + S[j]) / k[j]


def precision_at_recall(scores: Tensor, labels, recall: float = 0.8,
                        eps: float = 1.0) -> LinearProgram:
    r"""Precision at a fixed recall as an LP with a learned threshold (Eban et al. [2]_).

    The prediction of sample k is :math:`1[s_k > \theta]` for a threshold :math:`\theta`
    chosen by the LP. Hinge bounds with margin :math:`\varepsilon` give a lower bound on
    the true positives, :math:`TP \ge \sum_{i \in \mathcal P} (1 - \xi_i)`, and an upper
    bound on the false positives, :math:`FP \le \sum_{j \in \mathcal N} \eta_j`. At recall
    :math:`TP/|\mathcal P| \ge \beta` the true positives are fixed at
    :math:`\beta|\mathcal P|`, so precision :math:`TP/(TP+FP)` is maximised by minimising
    the false positives:

    .. math::

        \min_{\xi, \eta, \theta} \; \frac{1}{|\mathcal N|} \sum_{j \in \mathcal N} \eta_j
        \quad \text{s.t.} \quad
        \varepsilon \xi_i \ge \varepsilon - (s_i - \theta),\ \xi_i \ge 0,\quad
        \varepsilon \eta_j \ge \varepsilon + (s_j - \theta),\ \eta_j \ge 0,\quad
        \sum_{i \in \mathcal P} \xi_i \le (1 - \beta)|\mathcal P|.

    The optimal value is the relaxed false-positive rate at recall at least
    :math:`\beta`; the LP is always feasible (lower :math:`\theta`) and bounded. The scores
    enter ``b``.

    Parameters
    ----------
    scores : tensor of shape (n,)
    labels : integer tensor of shape (n,), values 0 or 1
    recall : float in (0, 1]
        Target recall :math:`\beta`.
    eps : float
        Hinge margin.

    Returns
    -------
    LinearProgram
        Variables ``x = (xi (|P|), eta (|N|), theta)``; ``A`` sparse with rows
        ``2(|P| + |N|) + 1``.
    """
    return precision_at_recall_data(scores, labels, recall, eps).problem()
