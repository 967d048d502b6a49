"""What each ``--loss`` of ``sparselp train`` trains with: the loss, its optimizer, its
minibatch sampling and its schedule.

Every method gets the protocol it is used with:

- ``ce``: cross-entropy (binary: ``BCEWithLogitsLoss`` on the single logit; multi-class:
  ``cross_entropy``), Adam.
- the LP losses of :mod:`sparselp.losses` on the raw scores, Adam: ``auc-hinge`` is
  ``AUCLoss()`` (the pairwise hinge, eps 1), ``auc`` the paper's ramp surrogate
  ``AUCLoss(surrogate="paper")`` (eps 1), ``fscore`` (``FScoreLoss(surrogate=
  "ramp")``, the seed paper's), ``fscore-hinge`` (``FScoreLoss()``, Eban et al.'s hinge
  bounds) and ``fscore-hinge-negatives`` (``surrogate="hinge-negatives"``),
  ``precision-at-recall`` (recall 0.8) and ``multiclass-auc``
  (``MultiClassAUCLoss(K, eps=0.25, reduction="sum")``:
  AUC_mu's pairwise hinge on the logits, every pair of the minibatch weighted alike, eps
  and reduction chosen on validation, :data:`DEFAULT_EPS`, :data:`MULTICLASS_REDUCTION`);
  ``--eps`` overrides a loss's eps.
- ``libauc-aucm``: LibAUC 2.0's ``AUCMLoss`` on ``sigmoid(scores)`` with its ``PESG``
  optimizer, as in LibAUC's own examples: minibatches half positive (its ``DualSampler``
  with ``sampling_rate=0.5``), momentum 0.9, weight decay 1e-4, margin 1.0, learning rate
  and ``epoch_decay`` given (its examples use 0.1 and 2e-3 / 3e-3; choose them on the
  validation split), and the learning rate divided by 10 with the regulariser reset
  (``update_regularizer``) at 50% and 75% of the epochs. Optional: ``pip install
  --no-deps libauc==2.0.1``; :func:`libauc_available` says why it is missing.

An LP loss may first train ``--warmup-ce-epochs K`` epochs with cross-entropy (the same
Adam; :func:`warmup_ce_epochs`, defaults :data:`DEFAULT_WARMUP_CE_EPOCHS`, none so far:
for ``fscore`` on 5% Fashion-MNIST, K = 1 or 2 of 4 epochs left its validation F1 where it
was, 0.839 / 0.842 against 0.841, seed 0; README, "Measured here").

Every minibatch holds both classes (every class of the long-tailed task: no minibatch
takes ``MultiClassAUCLoss``'s zero loss of a missing class) for every method
(:class:`~benchmarks.train_data.StratifiedBatches`), cross-entropy included.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sparselp.losses import AUCLoss, FScoreLoss, MultiClassAUCLoss, PrecisionAtRecallLoss

__all__ = ["Objective", "make_objective", "LOSSES", "BINARY_LOSSES", "libauc_available",
           "DEFAULT_LR", "DEFAULT_EPS", "MULTICLASS_REDUCTION", "DEFAULT_WARMUP_CE_EPOCHS",
           "NO_WARMUP_LOSSES", "warmup_ce_epochs", "FSCORE_SURROGATES"]

BINARY_LOSSES = ("ce", "auc", "auc-hinge", "fscore", "fscore-hinge", "fscore-hinge-negatives",
                 "precision-at-recall", "libauc-aucm")
LOSSES = BINARY_LOSSES + ("multiclass-auc",)
#: the F-score losses: FScoreLoss's surrogate of each
FSCORE_SURROGATES = {"fscore": "ramp", "fscore-hinge": "hinge",
                     "fscore-hinge-negatives": "hinge-negatives"}
#: the learning rate each family uses unless told otherwise
DEFAULT_LR = {"adam": 1e-3, "libauc-aucm": 0.1}
#: the eps a loss trains with unless told otherwise, where it is not the loss class's
#: own default; multiclass-auc's eps and its reduction were chosen together by the mean
#: validation AUC_mu of seeds 0-2 on long-tailed Fashion-MNIST (imratio 0.01, the small
#: CNN, 4 epochs, Adam 1e-3, minibatch 256): eps 0.1-4 with reduction "mean", 0.1-1 with
#: "sum" (README, "Measured here"). fscore-hinge's eps by the mean validation F1 of
#: seeds 0-2 on 5% Fashion-MNIST (the same protocol): eps 0.5 / 1 / 2 give 0.8993 /
#: 0.8949 / 0.8829 (before the floor of t in sparselp.formulations.fscore, eps 0.5
#: collapsed on seed 1 and eps 1 on seed 2: the LP's optimum was flat, F* = 0 at t = 0,
#: wherever a minibatch's hinge bound on the true positives fell below 0)
DEFAULT_EPS = {"multiclass-auc": 0.25, "fscore-hinge": 0.5}
#: multiclass-auc's reduction: "sum" weighs every pair of the minibatch alike; the
#: class-pair mean ("mean", AUC_mu's own weighting) puts a fifth of the loss (9 of the 45
#: class pairs) on the one or two samples of the smallest class in a minibatch, a noisy
#: gradient (validation AUC_mu 0.9930 against 0.9936 at eps 0.25)
MULTICLASS_REDUCTION = "sum"
#: the epochs a loss first trains with cross-entropy (then with itself, the same Adam)
#: unless told otherwise (``--warmup-ce-epochs``; 0 where not listed)
DEFAULT_WARMUP_CE_EPOCHS: dict[str, int] = {}
#: the losses that take no warm-up: cross-entropy itself, and LibAUC (its own optimizer)
NO_WARMUP_LOSSES = ("ce", "libauc-aucm")


def warmup_ce_epochs(loss: str, given: int | None, epochs: int) -> int:
    """The cross-entropy warm-up of ``loss`` (``given``, or None: its default,
    :data:`DEFAULT_WARMUP_CE_EPOCHS`), checked against the run's ``epochs``: the warm-up
    trains the network with the loss's own Adam, so it is refused for ``ce`` itself and
    for ``libauc-aucm`` (PESG), and must leave at least one epoch to the loss."""
    k = DEFAULT_WARMUP_CE_EPOCHS.get(loss, 0) if given is None else given
    if k < 0:
        raise ValueError(f"warmup_ce_epochs={k}: must be >= 0")
    if k and loss in NO_WARMUP_LOSSES:
        raise ValueError(f"warmup_ce_epochs={k}: a cross-entropy warm-up is for the LP losses "
                         f"(Adam), not {loss!r}")
    if k and k >= epochs:
        why = "" if given is not None else " (its default, DEFAULT_WARMUP_CE_EPOCHS)"
        raise ValueError(f"warmup_ce_epochs={k}{why} leaves none of the epochs={epochs} to "
                         f"{loss!r}: ask for more epochs or --warmup-ce-epochs 0")
    return k


def libauc_available() -> str | None:
    """None when LibAUC imports, else the reason it does not."""
    try:
        import libauc.losses  # noqa: F401
        import libauc.optimizers  # noqa: F401
    except Exception as exc:  # ImportError, or a dependency it lacks
        return (f"LibAUC is not installed or does not import ({type(exc).__name__}: {exc}); "
                f"pip install --no-deps libauc==2.0.1")
    return None


class Objective:
    """One method: ``loss(outputs, labels)``, ``make_optimizer(params)``, ``epoch_start``
    (a schedule hook), ``positive_rate`` (None: the training proportions in every batch)
    and any state of the loss itself (``state_dict``; LibAUC's a, b, alpha)."""

    positive_rate: float | None = None

    def __init__(self, name: str, loss_fn, lr: float, weight_decay: float = 0.0):
        self.name, self.loss_fn, self.lr, self.weight_decay = name, loss_fn, lr, weight_decay

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(outputs, labels)

    def make_optimizer(self, params):
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    def epoch_start(self, epoch: int, epochs: int, optimizer) -> None:
        """Called before epoch ``epoch`` (0-based) of ``epochs``."""

    def state_dict(self) -> dict:
        return self.loss_fn.state_dict() if isinstance(self.loss_fn, nn.Module) else {}

    def load_state_dict(self, state: dict) -> None:
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn.load_state_dict(state)


def _bce(outputs, labels):
    return F.binary_cross_entropy_with_logits(outputs.reshape(-1), labels.float())


class _LibAUC(Objective):
    positive_rate = 0.5

    def __init__(self, lr: float, epoch_decay: float, device):
        from libauc.losses import AUCMLoss

        super().__init__("libauc-aucm", AUCMLoss(margin=1.0, device=device), lr, 1e-4)
        self.epoch_decay, self.device = epoch_decay, device

    def loss(self, outputs, labels):
        return self.loss_fn(torch.sigmoid(outputs.reshape(-1, 1)), labels.reshape(-1, 1).float())

    def make_optimizer(self, params):
        from libauc.optimizers import PESG

        return PESG(list(params), loss_fn=self.loss_fn, lr=self.lr, momentum=0.9, margin=1.0,
                    epoch_decay=self.epoch_decay, weight_decay=self.weight_decay,
                    device=self.device, verbose=False)

    def epoch_start(self, epoch, epochs, optimizer):
        if epoch > 0 and epoch in {int(0.5 * epochs), int(0.75 * epochs)}:
            optimizer.update_regularizer(decay_factor=10)


def make_objective(loss: str, num_classes: int = 2, *, lr: float | None = None,
                   eps: float | None = None, recall: float = 0.8,
                   epoch_decay: float = 2e-3, device="cpu", process_group=None) -> Objective:
    """The :class:`Objective` of ``loss`` (one of :data:`LOSSES`). ``eps`` overrides the LP
    loss's margin/ramp width (:data:`DEFAULT_EPS`, else the loss class's own default);
    ``recall`` is the precision-at-recall target; ``epoch_decay`` is LibAUC's;
    ``process_group`` makes the LP losses those of the global minibatch (``--nproc``;
    LibAUC has no such form)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if num_classes > 2 and loss not in ("ce", "multiclass-auc"):
        raise ValueError(f"loss {loss!r} is binary; a {num_classes}-class task takes 'ce' or "
                         f"'multiclass-auc'")
    if num_classes == 2 and loss == "multiclass-auc":
        raise ValueError("loss 'multiclass-auc' needs a multi-class task (protocol longtail)")
    if loss == "libauc-aucm":
        why = libauc_available()
        if why:
            raise ImportError(why)
        return _LibAUC(DEFAULT_LR["libauc-aucm"] if lr is None else lr, epoch_decay, device)
    lr = DEFAULT_LR["adam"] if lr is None else lr
    eps = DEFAULT_EPS.get(loss) if eps is None else eps
    kw = ({} if eps is None else {"eps": eps}) | (
        {} if process_group is None else {"process_group": process_group})
    if loss == "ce":
        fn = _bce if num_classes == 2 else F.cross_entropy
    elif loss == "auc":
        fn = AUCLoss(surrogate="paper", **kw)
    elif loss == "auc-hinge":
        fn = AUCLoss(**kw)
    elif loss in FSCORE_SURROGATES:
        fn = FScoreLoss(surrogate=FSCORE_SURROGATES[loss], **kw)
    elif loss == "precision-at-recall":
        fn = PrecisionAtRecallLoss(recall=recall, **kw)
    else:
        fn = MultiClassAUCLoss(num_classes, reduction=MULTICLASS_REDUCTION, **kw)
    return Objective(loss, fn, lr)
