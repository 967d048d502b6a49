r"""Non-decomposable losses: an LP built from the minibatch, solved and differentiated.

Each loss is an ``nn.Module`` taking ``(scores, labels)`` and returning a scalar to
minimise. The LP comes from :mod:`sparselp.formulations` and is solved by
:func:`sparselp.layer.lp_solve`; the loss is the LP's optimal value, whose gradient with
respect to the scores comes from the dual (``d f*/d b = -v``, ``d f*/d A = v x^T``):
the backward pass needs no linear solve at all.

Shared behaviour (tested):

- a minibatch that lacks a class the metric needs: a ``UserWarning`` and a zero loss
  ``scores.sum() * 0`` that keeps the autograd graph (so ``backward`` still works);
- NaN or Inf scores: ``ValueError``;
- float16/bfloat16 scores: the LP is built and solved in float32 and the loss is float32;
- ``memory_budget=`` (bytes, or a string such as ``"2GB"``; every loss): the peak of
  forward + backward is predicted by :func:`sparselp.plan` before the LP is built; a
  batch that does not fit raises :class:`sparselp.MemoryBudgetError` naming the estimate
  and the nearest setting that would fit, except that :class:`AUCLoss` first falls back
  to its chunked solve with the block size the planner picks (``last_block_size``);
- an LP that is not certified OPTIMAL: infeasible, unbounded or a numerical error raises
  ``RuntimeError``; an iteration limit gives a ``RuntimeWarning`` naming the status and
  the residuals, and the value and gradient at the point reached (see
  :func:`sparselp.layer.lp_solve`), or raises with ``strict=True`` (a keyword every loss
  passes on to the layer);
- ``warm_start=True`` (every loss; the solver backend): each call's LP starts from the
  solution of the loss's previous call (primal and duals, :mod:`sparselp.warmstart`)
  when the two LPs have the same shapes (the same class counts), cold otherwise; the
  value and gradient are those of a cold start. The chunked AUC solve starts cold.
- ``FScoreLoss`` and ``PrecisionAtRecallLoss`` know their LP's optimum in closed form
  (primal and multipliers, :mod:`sparselp.formulations.ratio_shards`): they certify it
  against the LP's residuals (:func:`sparselp.sharded.certify`, the solver's definitions
  and ``tol``) and differentiate it by the envelope theorem, as the layer would, without
  a solve (``last_path == "closed-form"``). Where the certificate fails, or with
  ``closed_form=False``, another ``backend`` or ``mode``, the solver solves the LP,
  started at that optimum (``LPData.start``; ``last_path == "solver"``).

Global batch over ``torch.distributed`` (``process_group=``, every loss): the loss of the
concatenation over the group's ranks, in rank order, of the local ``(scores, labels)``,
the same value on every rank, and each rank's local scores get the gradient of that global
loss (:mod:`sparselp.distributed`). Local batch sizes may differ. The AUC losses are
sharded: each rank solves the LP of about 1/world of the global pairs, so memory per rank
falls as 1/world (and ``block_size=`` cuts a rank's share into blocks). The F-score and
precision-at-recall LPs couple all samples through one shared variable; each rank builds
the rows of its own samples only, and their closed-form optimum is certified for the
whole LP with all-reduced sums (:mod:`sparselp.sharded`); where it is not, the LP is
solved whole on every rank (``last_path`` says which). A missing class is judged on the global
labels, so every rank warns and returns the zero loss alike. Every rank must call the loss
and its backward (collectives); non-finite scores on any rank raise on every rank.

References
----------
Meng, Mukherjee, Wu, Singh, Ravi, "Differentiable Optimization of Generalized
Nondecomposable Functions using Linear Programs", NeurIPS 2021.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .formulations import fscore_data, multiclass_auc_data, precision_at_recall_data
from .formulations.ratio import _check_surrogate
from .formulations.ratio_shards import fscore_shard, precision_at_recall_shard
from .formulations._base import absent_classes, describe_absent
from .chunked import auc_pairs_term, chunked_auc_loss
from .distributed import rank_and_world
from .loss_base import LPLossBase, binary_counts

__all__ = ["AUCLoss", "MultiClassAUCLoss", "FScoreLoss", "PrecisionAtRecallLoss"]


class AUCLoss(LPLossBase):
    r"""Binary AUC loss from the paper's pairwise hinge LP (eq. 1).

    The LP (:func:`sparselp.formulations.binary_auc`) is

    .. math::

        z^* = \arg\min_z \sum_{i \in \mathcal P, j \in \mathcal N} z_{ij}
        \quad \text{s.t.} \quad z_{ij} \ge \varepsilon - (s_i - s_j),\ z_{ij} \ge 0,

    whose solution is :math:`z_{ij} = \max(0, \varepsilon - (s_i - s_j))`.
    ``A = [-I; -I]`` is row-separable, so the solver's Newton Hessian is diagonal.

    ``surrogate="hinge"`` (default) is the LP's optimal value
    :math:`\operatorname{mean}_{ij} z^*_{ij}`, the pairwise hinge loss, whose gradient
    comes from the dual: every pair ranked within the margin ``eps`` (misranked pairs
    included) pulls its two scores apart. ``surrogate="paper"`` is the loss of the
    paper's released code,

    .. math::

        L = 1 - \frac{1}{|\mathcal P||\mathcal N|} \sum_{ij}
        \frac{\operatorname{relu}(\varepsilon - z^*_{ij})}{\varepsilon},

    computed from the LP's primal solution and differentiated implicitly; it equals
    :math:`1 - \mathrm{AUC}` when every pair gap :math:`|s_i - s_j|` is at least
    :math:`\varepsilon`. It is the ramp :math:`1 - \operatorname{mean}
    \operatorname{clip}((s_i - s_j)/\varepsilon, 0, 1)`: only pairs with
    :math:`0 < s_i - s_j < \varepsilon` get a gradient, misranked pairs none.

    Why the defaults (hinge, ``eps=1``): the paper applies its surrogate with
    ``eps=0.01`` to softmax probabilities. On raw logits (a network's usual output)
    that leaves almost no pair with a gradient once training has spread the scores:
    training a CNN on binary Fashion-MNIST (5% positives) for 3 epochs, 0.03% of a
    minibatch's pairs had ``0 < gap < 0.01`` while 3.3% were misranked and got no
    gradient; validation AUC 0.959 against cross-entropy's 0.968. The hinge with
    ``eps=1`` reached 0.978 (``eps=0.1``: 0.979, ``eps=3``: 0.976; the paper surrogate
    with ``eps=1``: 0.972; seed 0, and seed 1 agrees: eps 0.01 0.972 against
    cross-entropy 0.984). Measured by ``sparselp train`` on the validation split.

    Parameters
    ----------
    eps : float
        Margin of the pairwise hinge, in units of the scores (default 1.0; the paper
        uses 0.01 on softmax probabilities).
    surrogate : {"hinge", "paper"}
    block_size : int, optional
        Solve the LP block by block, about ``block_size`` pairs at a time (whole positives,
        at least one per block; :mod:`sparselp.chunked`): the LP is row-separable, so the
        value and gradient are those of the whole LP while the memory follows the block.
        None (default) solves it at once.
    process_group : torch.distributed.ProcessGroup or "world", optional
        The loss of the global batch (see the module docstring); rank ``r`` of ``world``
        solves the pairs of the positives ``[r::world]`` of the global batch against all
        its negatives, weighted by the global pair count.
    options, backend, **layer_kwargs
        Passed to :func:`sparselp.layer.lp_solve`.

    Shapes: ``scores`` (n,), ``labels`` (n,) in {0, 1}; returns a scalar.
    """

    def __init__(self, eps: float = 1.0, surrogate: str = "hinge",
                 block_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if surrogate not in ("paper", "hinge"):
            raise ValueError(f"surrogate must be 'paper' or 'hinge', got {surrogate!r}")
        if block_size is not None and (isinstance(block_size, bool) or
                                       not isinstance(block_size, int) or block_size < 1):
            raise ValueError(f"block_size must be a positive integer or None, got "
                             f"{block_size!r}")
        self.eps, self.surrogate, self.block_size = eps, surrogate, block_size

    def forward(self, scores: Tensor, labels) -> Tensor:
        s, y, group = self._prepare(scores, labels)
        zero = self._missing_binary_class(scores, y, group)
        if zero is not None:
            return zero
        rank, world = (0, 1) if group is None else rank_and_world(group)
        pos = torch.nonzero(y == 1).squeeze(1)
        neg = torch.nonzero(y == 0).squeeze(1)
        mine = pos[rank::world]  # this rank's positives: all of them for the local batch
        kw = dict(options=self.options, backend=self.backend, **self.layer_kwargs)
        paper = self.surrogate == "paper"
        # The budget applies to a rank's share; every rank checks the largest share, so
        # that all ranks raise together or none does.
        block_size = self._check_budget(s, [neg.numel(), -(-pos.numel() // world)],
                                        self.block_size)
        self.last_block_size = block_size
        if block_size is not None and mine.numel() * neg.numel() > block_size:
            partial = chunked_auc_loss(s, y, self.eps, self.surrogate, block_size, kw,
                                       shard=(rank, world))
        elif mine.numel() == 0:  # a rank with no positive of the global batch to solve
            partial = s.sum() * 0 + (1.0 / world if paper else 0.0)
        else:
            term = auc_pairs_term(s, mine, neg, self.eps, self.surrogate,
                                  pos.numel() * neg.numel(), kw)
            partial = 1.0 / world - term if paper else term
        return self._finish(partial, s, group)


class MultiClassAUCLoss(LPLossBase):
    r"""Multi-class AUC loss: the optimal value of the AUC_mu hinge LP (or one-vs-all).

    See :func:`sparselp.formulations.multiclass_auc` for the LP. ``scores`` (n, K),
    ``labels`` (n,) in 0..K-1.

    Parameters
    ----------
    num_classes : int
        K.
    P : tensor of shape (K, K), optional
        Partition/cost matrix of AUC_mu (default ``1 - I``).
    eps : float
    variant : {"mu", "ova"}
    missing : {"zero", "skip"}
        A minibatch lacking a class always warns. ``"zero"`` (default) then returns a zero
        loss; ``"skip"`` averages over the class pairs present (zero loss only when fewer
        than two classes are present).
    process_group : torch.distributed.ProcessGroup or "world", optional
        The loss of the global batch (see the module docstring); each rank solves its
        share of every class pair's pairs (``shard=(rank, world)`` of
        :func:`~sparselp.formulations.auc.multiclass_auc_data`).
    options, backend, **layer_kwargs
        Passed to :func:`sparselp.layer.lp_solve`.
    """

    score_dims = (2,)

    def __init__(self, num_classes: int, P: Tensor | None = None, eps: float = 1.0,
                 variant: str = "mu", reduction: str = "mean", missing: str = "zero",
                 **kwargs):
        super().__init__(**kwargs)
        if missing not in ("zero", "skip"):
            raise ValueError(f"missing must be 'zero' or 'skip', got {missing!r}")
        if not (isinstance(num_classes, int) and num_classes >= 2):
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.num_classes, self.eps, self.variant = num_classes, eps, variant
        self.reduction, self.missing = reduction, missing
        self.register_buffer("P", None if P is None else torch.as_tensor(P))

    def _check_local(self, s: Tensor) -> None:
        if s.shape[1] != self.num_classes:
            raise ValueError(f"scores must have {self.num_classes} columns (num_classes), "
                             f"got shape {tuple(s.shape)}")

    def forward(self, scores: Tensor, labels) -> Tensor:
        s, y, group = self._prepare(scores, labels, self.num_classes)
        absent = absent_classes(y, self.num_classes)
        if absent:
            why = f"{self._batch(group)} has no {describe_absent(absent, self.num_classes)}"
            if self.missing == "zero" or self.num_classes - len(absent) < 2:
                return self._zero(scores, why)
            warnings.warn(f"MultiClassAUCLoss: {why}; their pairs are left out", UserWarning,
                          stacklevel=2)
        self._check_budget(s, torch.bincount(y, minlength=self.num_classes).tolist())
        shard = None if group is None else rank_and_world(group)
        data = multiclass_auc_data(s, y, self.P, self.eps, self.reduction, self.variant,
                                   missing="skip", shard=shard)
        # A shard may hold no pair (a tiny global batch): its share of the loss is zero.
        partial = self._value(data) if data.c.numel() else s.sum() * 0
        return self._finish(partial, s, group)


class FScoreLoss(LPLossBase):
    r"""F1-score loss: ``1 - F*`` with ``F*`` from the Charnes–Cooper LP.

    See :func:`sparselp.formulations.fscore` for the derivation: :math:`F^*` is the
    F-score of Eban et al.'s hinge bounds on the true and false positives (``surrogate=
    "hinge"``, the default), which give a gradient to every positive below ``eps`` and
    every negative above ``-eps`` however far on the wrong side (on 5% Fashion-MNIST its
    test F1 matched cross-entropy's where the ramp's fell short), or of the seed paper's
    ramp-relaxed predictions :math:`\operatorname{clip}(1/2 + s/(2\varepsilon), 0, 1)`
    (``"ramp"``). The scores enter the LP's matrix, so the gradient is :math:`v x^T` on its stored
    entries. ``scores`` (n,), ``labels`` (n,) in {0, 1}.

    Parameters
    ----------
    eps : float
        Width of the ramp (of the hinge's linear part).
    surrogate : {"hinge", "ramp", "hinge-negatives"}
        The relaxation of the predictions (:func:`sparselp.formulations.fscore`);
        ``"hinge-negatives"``: the hinge on the negatives, the ramp on the positives. With
        ``"hinge"``, a minibatch whose bound on the true positives :math:`TP_l = \sum_{
        \mathcal P} \min(1, 1/2 + s_i/(2\varepsilon))` is negative has the optimum
        :math:`F^* = 2 TP_l / (2|\mathcal P| + FP_u) < 0` (the loss exceeds 1), whose
        gradient still raises the positives.
    closed_form : bool
        True (default): answer from the LP's optimum in closed form, certified against
        the LP's residuals (:func:`sparselp.sharded.certify`, the solver's definitions
        and ``tol``) and differentiated by the envelope theorem, with no solve; the
        solver takes over where the certificate fails. False: always solve the LP with
        the engine (started at that optimum). ``last_path`` says which answered the
        last call: ``"closed-form"`` or ``"solver"``.
    process_group : torch.distributed.ProcessGroup or "world", optional
        The loss of the global batch (see the module docstring): each rank holds the
        rows of its own samples, certified together (:mod:`sparselp.sharded`); where
        the certificate fails every rank solves the whole LP.
    options, backend, **layer_kwargs
        Passed to :func:`sparselp.layer.lp_solve`; a ``backend`` other than
        ``"sparselp"`` or a ``mode`` other than ``"implicit"`` always solves.
    """

    def __init__(self, eps: float = 1.0, closed_form: bool = True, surrogate: str = "hinge",
                 **kwargs):
        super().__init__(**kwargs)
        _check_surrogate(surrogate)
        self.eps, self.closed_form, self.surrogate = eps, closed_form, surrogate

    def forward(self, scores: Tensor, labels) -> Tensor:
        s, y, group = self._prepare(scores, labels)
        zero = self._missing_binary_class(scores, y, group)
        if zero is not None:
            return zero
        self._check_budget(s, binary_counts(y), group=group)
        eps, sur = self.eps, self.surrogate
        value = self._coupled_value(s, group, lambda: fscore_data(s, y, eps, sur),
                                    lambda lo, hi: fscore_shard(s, y, eps, lo, hi, sur), 1.0)
        return self._finish(value, s, group)


class PrecisionAtRecallLoss(LPLossBase):
    r"""Precision at a fixed recall: the relaxed false-positive rate at recall >= beta.

    The optimal value of :func:`sparselp.formulations.precision_at_recall` (Eban et al.
    2017): minimising the false positives while the true positives are held at
    :math:`\beta |\mathcal P|` maximises precision. ``scores`` (n,), ``labels`` (n,).

    Parameters
    ----------
    recall : float
        The recall :math:`\beta` to hold.
    eps : float
        Width of the ramp.
    closed_form, process_group, options, backend, **layer_kwargs
        As for :class:`FScoreLoss`.
    """

    def __init__(self, recall: float = 0.8, eps: float = 1.0, closed_form: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.recall, self.eps, self.closed_form = recall, eps, closed_form

    def forward(self, scores: Tensor, labels) -> Tensor:
        s, y, group = self._prepare(scores, labels)
        zero = self._missing_binary_class(scores, y, group)
        if zero is not None:
            return zero
        self._check_budget(s, binary_counts(y), group=group)
        value = self._coupled_value(
            s, group, lambda: precision_at_recall_data(s, y, self.recall, self.eps),
            lambda lo, hi: precision_at_recall_shard(s, y, self.recall, self.eps, lo, hi))
        return self._finish(value, s, group)
