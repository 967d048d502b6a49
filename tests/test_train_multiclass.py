"""``--loss multiclass-auc`` of ``sparselp train`` on the long-tailed task: its minibatches
hold every class (so the loss never takes its zero loss of a missing class) and its
default eps and reduction (chosen on validation) give the AUC_mu pairwise hinge summed
over the pairs, as computed by hand."""
import warnings

import numpy as np
import pytest
import torch

from benchmarks.train import TrainConfig
from benchmarks.train_data import StratifiedBatches
from benchmarks.train_objectives import DEFAULT_EPS, MULTICLASS_REDUCTION, make_objective
from sparselp.losses import AUCLoss, MultiClassAUCLoss

# Training class counts of the long-tailed protocol at imratio 0.01, scaled by 1/10.
LONGTAIL = [540, 324, 194, 116, 70, 42, 25, 15, 9, 5]


def _longtail_labels(seed=0):
    labels = np.repeat(np.arange(10), LONGTAIL)
    return torch.from_numpy(np.random.default_rng(seed).permutation(labels))


def _hinge_by_hand(s: np.ndarray, y: np.ndarray, eps: float, reduction: str) -> float:
    """Over class pairs i < j and (a in i, b in j), max(0, eps - ((s_i(a) - s_j(a)) -
    (s_i(b) - s_j(b)))): summed ("sum"), or the mean over the class pairs of each pair's
    mean ("mean")."""
    sums, means = [], []
    for i in range(s.shape[1]):
        for j in range(i + 1, s.shape[1]):
            a, b = s[y == i], s[y == j]
            if len(a) and len(b):
                nu = (a[:, i] - a[:, j])[:, None] - (b[:, i] - b[:, j])[None, :]
                hinge = np.maximum(0.0, eps - nu)
                sums.append(hinge.sum())
                means.append(hinge.mean())
    return float(np.sum(sums) if reduction == "sum" else np.mean(means))


def test_longtail_batches_hold_every_class_so_the_loss_is_never_zeroed():
    labels = _longtail_labels()
    batches = list(StratifiedBatches(labels, 64, seed=0))
    # ceil(1340 / 64) = 21 batches would leave the 5 samples of class 9 out of most of them;
    # the sampler makes as many batches as the smallest class has samples.
    assert len(batches) == min(LONGTAIL) < -(-len(labels) // 64)
    assert sorted(torch.cat(batches).tolist()) == list(range(len(labels)))
    loss = make_objective("multiclass-auc", 10).loss
    gen = torch.Generator().manual_seed(0)
    for idx in batches:
        y = labels[idx]
        assert torch.bincount(y, minlength=10).min() >= 1
        s = torch.randn(len(idx), 10, generator=gen, dtype=torch.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the missing-class warning would raise here
            value = loss(s, y)
        assert float(value) == pytest.approx(_hinge_by_hand(s.numpy(), y.numpy(), 0.25, "sum"),
                                             rel=1e-6)
        assert float(value) > 0


def test_a_plain_split_would_lose_tail_classes_and_zero_the_loss():
    """Why the sampler matters: equal-size batches of a shuffled long tail lack class 9,
    and MultiClassAUCLoss's default then returns zero for the whole minibatch."""
    labels = _longtail_labels()
    plain = [labels[i:i + 64] for i in range(0, len(labels), 64)]
    lacking = [y for y in plain if torch.bincount(y, minlength=10).min() == 0]
    assert lacking
    with pytest.warns(UserWarning, match="has no sample of class"):
        value = make_objective("multiclass-auc", 10).loss(
            torch.randn(len(lacking[0]), 10, dtype=torch.float64), lacking[0])
    assert float(value) == 0.0


def test_multiclass_auc_trains_with_the_validation_chosen_eps_and_reduction():
    assert DEFAULT_EPS["multiclass-auc"] == 0.25
    assert MULTICLASS_REDUCTION == "sum"
    fn = make_objective("multiclass-auc", 10).loss_fn
    assert isinstance(fn, MultiClassAUCLoss)
    assert (fn.eps, fn.variant, fn.reduction, fn.num_classes) == (0.25, "mu", "sum", 10)
    assert make_objective("multiclass-auc", 10, eps=1.0).loss_fn.eps == 1.0  # --eps wins
    # The binary losses keep their classes' own eps.
    assert make_objective("auc-hinge").loss_fn.eps == AUCLoss().eps == 1.0


def test_the_sum_weighs_pairs_alike_the_mean_weighs_class_pairs_alike():
    """On a long-tailed batch the two reductions differ (the hand computation checks both)."""
    labels = _longtail_labels()
    labels = labels[next(iter(StratifiedBatches(labels, 300, seed=0)))]
    gen = torch.Generator().manual_seed(1)
    s = torch.randn(len(labels), 10, generator=gen, dtype=torch.float64)
    fn = make_objective("multiclass-auc", 10).loss_fn
    total = float(fn(s, labels))
    fn.reduction = "mean"
    mean = float(fn(s, labels))
    assert total == pytest.approx(_hinge_by_hand(s.numpy(), labels.numpy(), 0.25, "sum"),
                                  rel=1e-6)
    assert mean == pytest.approx(_hinge_by_hand(s.numpy(), labels.numpy(), 0.25, "mean"),
                                 rel=1e-6)
    assert total > 100 * mean


def test_a_run_recorded_under_other_loss_defaults_is_not_resumed(tmp_path):
    """Checkpoints record the defaults that eps=None stands for; one written before that
    (no ``loss_defaults``) resumes for a loss whose defaults did not change, and is refused,
    naming them, for the multi-class loss, whose defaults did."""
    from benchmarks.train import _resume, recorded_config, saved_config
    ce = TrainConfig(loss="ce")
    old = {k: v for k, v in saved_config(ce).items() if k != "loss_defaults"}
    assert recorded_config(old) == saved_config(ce)
    mc = TrainConfig(loss="multiclass-auc", protocol="longtail")
    old = {k: v for k, v in saved_config(mc).items() if k != "loss_defaults"}
    assert recorded_config(old) != saved_config(mc)
    path = tmp_path / "checkpoint.pt"
    torch.save({"config": old, "epoch": 1}, path)
    with pytest.raises(ValueError, match="loss_defaults"):
        _resume(str(path), mc, None, None, None, None)
