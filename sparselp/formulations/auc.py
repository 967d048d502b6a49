r"""Pairwise AUC linear programs: binary AUC (the paper's eq. 1) and multi-class AUC_mu.

Each pair of samples that should be ranked one above the other gets a hinge variable
:math:`z \ge \max(0, \varepsilon - \delta)`, where :math:`\delta` is the pair's score gap.
The LP has one variable per pair and two rows per variable, ``A = [-I; -I]``: every row
has a single nonzero, so the generalized Newton Hessian :math:`A^T D A` is diagonal and
the solver's ``"diagonal"`` strategy applies without any special case.

References
----------
.. [1] Meng, Mukherjee, Wu, Singh, Ravi, "Differentiable Optimization of Generalized
   Nondecomposable Functions using Linear Programs", NeurIPS 2021, eqs. (1)-(2).
.. [2] Kleiman, Page, "AUC_mu: A Performance Metric for Multi-Class Machine Learning
   Models", ICML 2019.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..problem import LinearProgram
from ._base import (LPData, absent_classes, check_binary, check_labels, check_scores,
                    describe_absent, separable_constraints)

__all__ = ["binary_auc", "binary_auc_data", "binary_auc_pairs_data", "multiclass_auc",
           "multiclass_auc_data", "auc_from_hinge"]


def _pair_gaps(u: Tensor, idx_hi: Tensor, idx_lo: Tensor) -> Tensor:
    """Score gaps ``u[i] - u[j]`` for all (i in idx_hi, j in idx_lo), row-major, shape (|hi| |lo|,)."""
    return (u[idx_hi].unsqueeze(1) - u[idx_lo].unsqueeze(0)).reshape(-1)


def _check_common(eps: float, reduction: str):
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def binary_auc_data(scores: Tensor, labels, eps: float = 1.0, reduction: str = "mean") -> LPData:
    """Tensors of :func:`binary_auc`, attached to the graph of ``scores``."""
    _check_common(eps, reduction)
    s, y = check_binary(scores, labels, "binary AUC")
    pos = torch.nonzero(y == 1).squeeze(1)
    neg = torch.nonzero(y == 0).squeeze(1)
    P = pos.numel() * neg.numel()
    return binary_auc_pairs_data(s, pos, neg, eps, 1.0 / P if reduction == "mean" else 1.0)


def binary_auc_pairs_data(scores: Tensor, pos: Tensor, neg: Tensor, eps: float,
                          weight: float, matrices: dict | None = None) -> LPData:
    """The binary AUC hinge LP of the pairs ``pos x neg`` only (row-major), each pair's
    variable weighted ``weight`` in the objective: one block of :func:`binary_auc_data`'s
    LP, which is row-separable, so its blocks are independent LPs. ``matrices``: see
    :func:`~sparselp.formulations._base.separable_constraints`."""
    gap = _pair_gaps(scores, pos, neg) - eps
    w = torch.full((gap.shape[0],), weight, dtype=scores.dtype, device=scores.device)
    return separable_constraints(gap, w, matrices)


def binary_auc(scores: Tensor, labels, eps: float = 1.0, reduction: str = "mean") -> LinearProgram:
    r"""The binary AUC hinge LP of a minibatch (the paper's eq. 1).

    With positives :math:`\mathcal P = \{i : y_i = 1\}`, negatives
    :math:`\mathcal N = \{j : y_j = 0\}` and one variable :math:`z_{ij}` per pair,

    .. math::

        \min_{z} \; \sum_{i \in \mathcal P, j \in \mathcal N} w \, z_{ij}
        \quad \text{s.t.} \quad z_{ij} \ge \varepsilon - (s_i - s_j), \quad z_{ij} \ge 0,

    with :math:`w = 1/(|\mathcal P||\mathcal N|)` (``reduction="mean"``) or 1 (``"sum"``).
    Its solution is :math:`z_{ij} = \max(0, \varepsilon - (s_i - s_j))`, and when every
    gap :math:`|s_i - s_j|` exceeds :math:`\varepsilon`, :math:`1 - \operatorname{mean}
    \min(z_{ij}/\varepsilon, 1)` is the AUC (:func:`auc_from_hinge`).

    In the canonical form :math:`\min c^T x` s.t. :math:`A x \le b` (x free):
    ``A = [-I; -I]`` of shape (2P, P), ``b = [s_i - s_j - eps; 0]``, pairs in row-major
    order ``p = a |N| + b`` for the a-th positive and b-th negative.

    Parameters
    ----------
    scores : tensor of shape (n,)
        Float scores; float16/bfloat16 are cast to float32.
    labels : integer tensor of shape (n,), values 0 or 1
    eps : float
        Margin :math:`\varepsilon > 0`.
    reduction : {"mean", "sum"}

    Returns
    -------
    LinearProgram
        ``P = |P| |N|`` variables, ``2P`` rows, ``A`` sparse (2 P nonzeros).

    Raises
    ------
    ValueError
        If a class is missing, scores are not finite, or shapes disagree.
    """
    return binary_auc_data(scores, labels, eps, reduction).problem()


def auc_from_hinge(z: Tensor, eps: float) -> Tensor:
    """AUC read off the hinge values: ``1 - mean(min(z / eps, 1))``; exact when no pair gap
    lies strictly inside ``(0, eps)``."""
    return 1.0 - (z / eps).clamp(max=1.0).mean()


def _check_shard(shard) -> tuple[int, int]:
    if shard is None:
        return 0, 1
    ok = isinstance(shard, tuple) and len(shard) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in shard)
    if not (ok and shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise ValueError(f"shard must be None or a tuple (rank, world) of integers with "
                         f"0 <= rank < world, got {shard!r}")
    return shard


# Over 60 lines only through its docstring; the body is about 45.
def multiclass_auc_data(scores: Tensor, labels, P: Tensor | None = None, eps: float = 1.0,
                        reduction: str = "mean", variant: str = "mu",
                        missing: str = "raise",
                        shard: tuple[int, int] | None = None) -> LPData:
    """Tensors of :func:`multiclass_auc`, attached to the graph of ``scores``.

    ``shard=(rank, world)`` keeps only the share ``rank`` of ``world`` of the pairs: in
    each class-pair group the anchors (class ``i`` of the pair ``i < j``; class ``k`` for
    ``"ova"``) are taken ``[rank::world]``, against all of the other side, while the
    weights keep the whole batch's counts (``|D_i||D_j|`` and the number of groups ``T``).
    The ``world`` shards' LPs are thus disjoint blocks of the whole LP, whose optimal
    values sum to its value (the LP is row-separable); a shard may have no pair at all
    (an LP with no variable) when the batch is tiny. None (default): the whole LP.
    """
    _check_common(eps, reduction)
    rank, world = _check_shard(shard)
    if variant not in ("mu", "ova"):
        raise ValueError(f"variant must be 'mu' or 'ova', got {variant!r}")
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}")
    s = check_scores(scores, (2,))
    n, K = s.shape
    if K < 2:
        raise ValueError(f"scores must have K >= 2 columns, got shape {tuple(s.shape)}")
    y = check_labels(labels, n, num_classes=K, device=s.device)
    if P is None:
        P = 1.0 - torch.eye(K, dtype=s.dtype, device=s.device)
    P = torch.as_tensor(P, dtype=s.dtype, device=s.device)
    if P.shape != (K, K):
        raise ValueError(f"P must have shape ({K}, {K}) to match scores with {K} columns, "
                         f"got shape {tuple(P.shape)}")
    if not bool(torch.isfinite(P).all()):
        raise ValueError("P contains NaN or Inf entries")
    idx = [torch.nonzero(y == k).squeeze(1) for k in range(K)]
    absent = absent_classes(y, K)
    if absent and missing == "raise":
        raise ValueError(f"labels contain no {describe_absent(absent, K)}; pass "
                         "missing='skip' to leave their pairs out")
    gaps, counts = [], []  # this shard's gaps per group, the whole group's pair count
    if variant == "mu":
        for i in range(K):
            for j in range(i + 1, K):
                if idx[i].numel() and idx[j].numel():
                    # Instance a of class i should beat b of class j along v_ij = P_j - P_i.
                    u = s @ (P[j] - P[i])
                    gaps.append(_pair_gaps(u, idx[i][rank::world], idx[j]))
                    counts.append(idx[i].numel() * idx[j].numel())
    else:
        for k in range(K):
            rest = torch.nonzero(y != k).squeeze(1)
            if idx[k].numel() and rest.numel():
                gaps.append(_pair_gaps(s[:, k], idx[k][rank::world], rest))
                counts.append(idx[k].numel() * rest.numel())
    if not gaps:
        raise ValueError("no pair of classes is present in labels: at least two classes "
                         "are needed")
    gap = torch.cat(gaps) - eps
    if reduction == "mean":
        # Average of per-class-pair means, as AUC_mu averages the pairwise AUCs.
        w = torch.cat([torch.full((g.numel(),), 1.0 / (c * len(counts)), dtype=s.dtype,
                                  device=s.device) for g, c in zip(gaps, counts)])
    else:
        w = torch.ones_like(gap)
    return separable_constraints(gap, w)


def multiclass_auc(scores: Tensor, labels, P: Tensor | None = None, eps: float = 1.0,
                   reduction: str = "mean", variant: str = "mu",
                   missing: str = "raise",
                   shard: tuple[int, int] | None = None) -> LinearProgram:
    r"""The multi-class AUC hinge LP: AUC_mu (the paper's eq. 2) or one-vs-all.

    AUC_mu [2]_ averages, over the class pairs :math:`i < j`, the AUC of separating class
    :math:`i` from class :math:`j` along the direction :math:`v_{ij} = P_{j\cdot} -
    P_{i\cdot}` of the partition (cost) matrix ``P``: instance :math:`a` of class
    :math:`i` beats :math:`b` of class :math:`j` when :math:`\nu_{ab} = \langle v_{ij},
    s(a) - s(b)\rangle > 0`. With ``P = 1 - I`` (the default, argmax decisions)
    :math:`\nu_{ab} = (s_i(a) - s_j(a)) - (s_i(b) - s_j(b))`. The LP is

    .. math::

        \min_{z} \; \sum_{i<j} \frac{1}{T\,|D_i||D_j|} \sum_{a \in D_i, b \in D_j} z_{ab}
        \quad \text{s.t.} \quad z_{ab} \ge \varepsilon - \nu_{ab}, \quad z_{ab} \ge 0,

    with :math:`T` the number of class pairs present. ``variant="ova"`` uses instead the
    pairs (a in class k, b not in class k) with :math:`\nu_{ab} = s_k(a) - s_k(b)`,
    weighted :math:`1/(T |D_k| |\bar D_k|)`. Either way ``A = [-I; -I]`` and the Newton
    Hessian is diagonal. ``reduction="sum"`` puts weight 1 on every pair.

    Parameters
    ----------
    scores : tensor of shape (n, K)
    labels : integer tensor of shape (n,), values in 0..K-1
    P : tensor of shape (K, K), optional
        Partition/cost matrix, zero diagonal; default ``1 - I``.
    eps : float
        Margin.
    reduction : {"mean", "sum"}
    variant : {"mu", "ova"}
    missing : {"raise", "skip"}
        What to do when a class has no sample: raise, or leave its pairs out.
    shard : tuple (rank, world), optional
        Only this shard's pairs (anchors ``[rank::world]`` in each group, weights of the
        whole batch; see :func:`multiclass_auc_data`): the LP of one rank of a
        distributed loss (:mod:`sparselp.distributed`).

    Returns
    -------
    LinearProgram
        One variable per pair, ``A = [-I; -I]`` sparse.
    """
    return multiclass_auc_data(scores, labels, P, eps, reduction, variant, missing,
                               shard).problem()
