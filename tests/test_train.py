"""The training study (``sparselp train``): data protocols, minibatches, models, metrics,
resumable runs and the command line. Small and fast: scikit-learn's digits and tiny IDX
files written here (CI has no MNIST)."""
import csv
import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

from benchmarks import cli, idx_data, train_objectives
from benchmarks.train import TrainConfig, train
from benchmarks.train_data import StratifiedBatches, make_task
from benchmarks.train_metrics import auc_mu, best_f1_threshold, binary_metrics, multiclass_metrics
from benchmarks.train_models import build_model

N_TRAIN, N_TEST = 400, 100  # 40 / 10 images per class


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
    """``(folder, raw train images (N, 784) in [0, 1], raw train labels)`` of a random
    28x28 IDX dataset with equal class counts."""
    folder = tmp_path_factory.mktemp("fake_mnist")
    rng = np.random.default_rng(1)
    raw = {}
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        img, lab = idx_data.FILES[split]
        idx_data.write_idx(str(folder / img), images)
        idx_data.write_idx(str(folder / (lab + ".gz")), labels)
        raw[split] = (images.reshape(n, -1) / 255.0, labels.astype(np.int64))
    return str(folder), raw


def _task(fake_mnist, protocol="libauc", imratio=0.1, **kw):
    return make_task("mnist", protocol, imratio, data_dir=fake_mnist[0], **kw)


def _origin(X: torch.Tensor, raw: np.ndarray) -> np.ndarray:
    """Index into ``raw`` of each (standardised) image of ``X``: an affine map keeps a
    correlation of exactly 1 with its original, random images have ~0 with the others."""
    a = X.reshape(len(X), -1).double().numpy()
    a = (a - a.mean(1, keepdims=True)) / a.std(1, keepdims=True)
    b = (raw - raw.mean(1, keepdims=True)) / raw.std(1, keepdims=True)
    corr = a @ b.T / a.shape[1]
    assert np.all(corr.max(1) > 0.999)
    return corr.argmax(1)


# --- make_task -----------------------------------------------------------------------------

def test_libauc_protocol_counts_labels_and_natural_test(fake_mnist):
    _, raw = fake_mnist
    t = _task(fake_mnist, "libauc", 0.1)
    n_neg = int(np.sum(raw["train"][1] < 5))
    pos = int(t.y_train.sum() + t.y_val.sum())
    assert pos == round(0.1 * n_neg / 0.9) == 22
    assert len(t.y_train) + len(t.y_val) == n_neg + pos and t.num_classes == 2 and t.binary
    for X, y in ((t.X_train, t.y_train), (t.X_val, t.y_val)):
        assert set(y.tolist()) == {0, 1}
        assert np.array_equal(y.numpy(), (raw["train"][1][_origin(X, raw["train"][0])] >= 5))
    assert t.y_test.tolist() == (raw["test"][1] >= 5).tolist()  # natural: 50 of 100
    assert t.X_test.shape == (N_TEST, 1, 28, 28)


def test_seed_protocol_keeps_a_fraction_of_negatives(fake_mnist):
    t = _task(fake_mnist, "seed", 0.4)
    y = torch.cat([t.y_train, t.y_val])
    assert int((y == 0).sum()) == round(0.4 * N_TRAIN / 2) and int(y.sum()) == N_TRAIN / 2


def test_longtail_class_sizes_decay_geometrically(fake_mnist):
    t = _task(fake_mnist, "longtail", 0.1)
    counts = np.bincount(t.y_train.numpy(), minlength=10) + np.bincount(t.y_val.numpy(),
                                                                        minlength=10)
    assert counts.tolist() == [round(40 * 0.1 ** (k / 9)) for k in range(10)]
    assert counts[0] == 40 and counts[9] == 4 and t.num_classes == 10
    assert np.bincount(t.y_test.numpy()).tolist() == [10] * 10


def test_validation_split_is_stratified_and_disjoint(fake_mnist):
    _, raw = fake_mnist
    t = _task(fake_mnist, "libauc", 0.1, val_fraction=0.2)
    tr, val = _origin(t.X_train, raw["train"][0]), _origin(t.X_val, raw["train"][0])
    assert len(set(tr)) == len(tr) and not set(tr) & set(val)
    n = len(tr) + len(val)
    assert len(val) == math.ceil(0.2 * n)
    assert abs(int(t.y_val.sum()) - 0.2 * 22) <= 1


def test_standardised_by_the_training_split(fake_mnist):
    _, raw = fake_mnist
    t = _task(fake_mnist, "libauc", 0.1)
    assert abs(float(t.X_train.mean())) < 1e-5 and abs(float(t.X_train.std()) - 1) < 1e-3
    x = raw["train"][0][_origin(t.X_train, raw["train"][0])]
    expect = (raw["test"][0] - x.mean()) / x.std()
    np.testing.assert_allclose(t.X_test.reshape(N_TEST, -1).numpy(), expect, atol=1e-4)
    assert abs(float(t.X_val.mean())) > 1e-4  # val is not standardised on itself


def test_seeds_give_different_subsamples(fake_mnist):
    _, raw = fake_mnist
    kept = []
    for seed in (0, 1):
        t = _task(fake_mnist, "libauc", 0.1, seed=seed)
        kept.append(set(_origin(torch.cat([t.X_train, t.X_val]), raw["train"][0])))
    assert len(kept[0]) == len(kept[1]) and kept[0] != kept[1]
    again = _task(fake_mnist, "libauc", 0.1, seed=0)
    assert set(_origin(torch.cat([again.X_train, again.X_val]), raw["train"][0])) == kept[0]


@pytest.mark.parametrize("kw, word", [({"protocol": "cifar"}, "protocol"),
                                      ({"imratio": 0.0}, "imratio"),
                                      ({"imratio": 1.0}, "imratio"),
                                      ({"imratio": 1.5, "protocol": "seed"}, "imratio"),
                                      ({"val_fraction": 0.5}, "val_fraction"),
                                      ({"val_fraction": 0.0}, "val_fraction")])
def test_bad_task_arguments_are_named(fake_mnist, kw, word):
    with pytest.raises(ValueError, match=word):
        _task(fake_mnist, **kw)


def test_seed_protocol_accepts_imratio_one(fake_mnist):
    t = _task(fake_mnist, "seed", 1.0)
    assert len(t.y_train) + len(t.y_val) == N_TRAIN


def test_every_class_keeps_a_training_sample():
    """Subsampling keeps at least 2 of a class (digits longtail 0.01 would keep
    round(126 * 0.01) = 1 of class 9), so the stratified split can run and training keeps
    every class."""
    t = make_task("digits", "longtail", 0.01)
    assert (torch.bincount(t.y_train, minlength=10) >= 1).all()
    assert "class counts [111, 68, 40, 25, 14, 9, 6, 3, 2, 2]" in t.description


def test_missing_dataset_says_make_data(monkeypatch, tmp_path):
    monkeypatch.setitem(idx_data.DATASETS, "mnist", (str(tmp_path / "nowhere"),))
    with pytest.raises(FileNotFoundError, match="make data"):
        make_task("mnist")


# --- StratifiedBatches -----------------------------------------------------------------------

def test_batches_hold_every_class_in_proportion_and_every_sample_once():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)[torch.randperm(100)]
    b = StratifiedBatches(labels, 16, seed=0)
    batches = list(b)
    assert len(batches) == len(b) == math.ceil(100 / 16)
    assert sorted(torch.cat(batches).tolist()) == list(range(100))
    for idx in batches:
        counts = np.bincount(labels[idx].numpy(), minlength=3)
        assert np.all(np.abs(counts - len(idx) * np.array([0.5, 0.3, 0.2])) <= 1)
        assert abs(len(idx) - 100 / len(batches)) <= 3


def test_batches_with_a_positive_rate():
    labels = torch.tensor([0] * 90 + [1] * 10)
    b = StratifiedBatches(labels, 20, seed=0, positive_rate=0.5)
    batches = list(b)
    assert len(batches) == len(b) == 9
    assert all(int(labels[i].sum()) == 10 and len(i) == 20 for i in batches)
    all_idx = torch.cat(batches).numpy()
    neg = all_idx[all_idx < 90]
    assert sorted(neg.tolist()) == list(range(90))
    uses = np.bincount(all_idx[all_idx >= 90] - 90, minlength=10)
    assert uses.max() - uses.min() <= 1


def test_positive_rate_leaves_room_for_a_negative():
    b = StratifiedBatches(torch.tensor([0] * 6 + [1] * 3), 2, positive_rate=0.9)
    batches = list(b)
    assert len(batches) == 6 and all(sorted((i >= 6).tolist()) == [False, True]
                                     for i in batches)


def test_sampler_state_reproduces_the_sequence():
    labels = torch.tensor([0] * 40 + [1] * 8)
    a = StratifiedBatches(labels, 8, seed=3)
    first = [i.tolist() for i in a]
    state = a.state()
    second = [i.tolist() for i in a]
    assert second != first
    b = StratifiedBatches(labels, 8, seed=99)
    b.set_state(state)
    assert [i.tolist() for i in b] == second
    a.set_state(state)
    assert [i.tolist() for i in a] == second


@pytest.mark.parametrize("kw, word", [({"batch_size": 1}, "batch_size"),
                                      ({"positive_rate": 1.0}, "positive_rate"),
                                      ({"positive_rate": 0.0}, "positive_rate")])
def test_bad_sampler_arguments(kw, word):
    with pytest.raises(ValueError, match=word):
        StratifiedBatches(torch.tensor([0, 1, 0, 1]), **{"batch_size": 2, **kw})


def test_positive_rate_needs_binary_labels():
    with pytest.raises(ValueError, match="binary"):
        StratifiedBatches(torch.tensor([0, 1, 2, 0, 1, 2]), 4, positive_rate=0.5)


# --- models ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("hw", [(28, 28), (8, 8)])
@pytest.mark.parametrize("out", [1, 10])
def test_model_output_shapes(name, hw, out):
    net = build_model(name, hw, out)
    assert net(torch.zeros(5, 1, *hw)).shape == (5, out)


@pytest.mark.parametrize("hw, out", [((28, 28), 1), ((8, 8), 10)])
def test_resnet18_takes_one_channel_small_images(hw, out):
    net = build_model("resnet18", hw, out)
    assert net.conv1.in_channels == 1 and net.conv1.stride == (1, 1)
    assert net(torch.randn(2, 1, *hw)).shape == (2, out)


def test_cnn_takes_one_channel_and_unknown_models_are_refused():
    assert build_model("cnn", (8, 8), 1)[0].in_channels == 1
    with pytest.raises(ValueError, match="vgg"):
        build_model("vgg", (28, 28), 1)


# --- metrics ---------------------------------------------------------------------------------

Y = np.array([0, 0, 1, 1, 0, 1, 0, 1, 0, 0])
S = np.array([-2.0, -0.5, 0.3, 1.5, 0.8, -0.1, 0.1, 2.0, -1.0, 0.4])


def test_binary_metrics_match_scikit_learn():
    m = binary_metrics(Y, S)
    assert m["auc"] == pytest.approx(roc_auc_score(Y, S))
    assert m["average_precision"] == pytest.approx(average_precision_score(Y, S))
    assert m["f1_at_0.5"] == pytest.approx(f1_score(Y, S > 0))
    assert m["accuracy"] == pytest.approx(accuracy_score(Y, S > 0))
    assert m["auc"] == pytest.approx(19 / 24)  # 5 of the 24 (pos, neg) pairs misordered


def test_best_f1_threshold_is_the_brute_force_maximum():
    thr, f1 = best_f1_threshold(Y, S)
    brute = max(f1_score(Y, S >= t) for t in np.unique(S))
    assert f1 == pytest.approx(brute) and f1_score(Y, S >= thr) == pytest.approx(brute)
    assert binary_metrics(Y, S)["f1_oracle"] == pytest.approx(brute)


def test_f1_at_the_validation_threshold():
    val_y, val_s = np.array([0, 0, 1, 1]), np.array([-3.0, -2.5, -1.5, 2.0])
    m = binary_metrics(Y, S, val_y, val_s)
    assert m["val_threshold"] == -1.5
    assert m["f1_val_threshold"] == pytest.approx(f1_score(Y, S >= -1.5))
    assert m["f1_val_threshold"] != pytest.approx(m["f1_at_0.5"])
    assert m["val_f1"] == 1.0  # the validation scores separate the classes at -1.5
    val_s[1] = 2.5  # a negative above every positive: the best validation F1 is 4/5
    assert binary_metrics(Y, S, val_y, val_s)["val_f1"] == pytest.approx(0.8)


def test_auc_mu_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    s = np.array([[2, 1, 0], [0, 1, 0], [1, 2, 0], [0, 0, 1], [0, 1, 2], [1, 0, 0]], float)
    # pairs (0,1): s0-s1 = [1,-1] vs [-1,0] -> 2.5/4; (0,2): s0-s2 = [2,0] vs [-2,1] -> 3/4;
    # (1,2): s1-s2 = [2,-1] vs [-1,0] -> 2.5/4; the mean is 2/3
    assert auc_mu(y, s) == pytest.approx(2 / 3)


def test_auc_mu_of_two_classes_is_the_binary_auc():
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 50), rng.normal(size=(50, 2))
    assert auc_mu(y, s) == pytest.approx(roc_auc_score(y, s[:, 1] - s[:, 0]))


def test_multiclass_metrics():
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    s = rng.normal(size=(30, 3)) + 2 * np.eye(3)[y]
    m = multiclass_metrics(y, s)
    assert set(m) == {"auc_mu", "auc_ovr", "accuracy", "macro_f1"}
    assert m["auc_mu"] == auc_mu(y, s) and m["accuracy"] == accuracy_score(y, s.argmax(1))
    assert all(isinstance(v, float) and 0.5 < v <= 1 for v in m.values())


# --- train() ---------------------------------------------------------------------------------

def _cfg(**kw):
    return TrainConfig(**{"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 32,
                          "imratio": 0.1, **kw})


def _run(out, resume=True, **kw):
    return train(_cfg(**kw), str(out), resume=resume, progress=False)


@pytest.mark.parametrize("loss", ["ce", "auc"])
def test_a_run_writes_its_files(tmp_path, loss):
    result = _run(tmp_path, loss=loss)
    assert (tmp_path / "checkpoint.pt").exists()
    with open(tmp_path / "curve.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(float(r["val_auc"]) for r in rows)
    assert json.loads((tmp_path / "metrics.json").read_text()) == result
    assert result["epochs_done"] == 2 and result["metrics"]["auc"] > 0.7
    scores = np.load(tmp_path / "scores.npz")
    assert scores["scores"].shape == scores["labels"].shape == (540,)
    assert roc_auc_score(scores["labels"], scores["scores"]) == result["metrics"]["auc"]


def test_resuming_gives_the_metrics_of_a_fresh_run(tmp_path):
    _run(tmp_path / "a", loss="auc", epochs=1)
    resumed = _run(tmp_path / "a", loss="auc", epochs=2)
    fresh = _run(tmp_path / "b", loss="auc", epochs=2)
    assert resumed["metrics"] == fresh["metrics"] and resumed["epochs_done"] == 2
    assert np.array_equal(np.load(tmp_path / "a" / "scores.npz")["scores"],
                          np.load(tmp_path / "b" / "scores.npz")["scores"])


def test_other_settings_are_refused_and_no_resume_starts_over(tmp_path):
    _run(tmp_path, loss="ce", epochs=2)
    with pytest.raises(ValueError, match="loss='ce' here, 'auc' asked"):
        _run(tmp_path, loss="auc", epochs=2)
    with pytest.raises(ValueError, match="holds 2 epochs, more than the epochs=1"):
        _run(tmp_path, loss="ce", epochs=1)
    result = _run(tmp_path, resume=False, loss="auc", epochs=1)
    assert result["config"]["loss"] == "auc" and result["epochs_done"] == 1
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["config"]["loss"] == "auc"


@pytest.mark.parametrize("loss", ["multiclass-auc", "ce"])
def test_longtail_runs_report_auc_mu(tmp_path, loss):
    result = _run(tmp_path, loss=loss, protocol="longtail", imratio=0.1, epochs=1)
    assert set(result["metrics"]) == {"auc_mu", "auc_ovr", "accuracy", "macro_f1"}
    assert result["metrics"]["auc_mu"] > 0.6


@pytest.mark.parametrize("loss, protocol, word", [("auc", "longtail", "binary"),
                                                  ("multiclass-auc", "libauc", "multi-class")])
def test_a_loss_of_the_wrong_kind_is_refused(tmp_path, loss, protocol, word):
    with pytest.raises(ValueError, match=word):
        _run(tmp_path, loss=loss, protocol=protocol)


# --- command line ----------------------------------------------------------------------------

def test_cli_train(tmp_path, capsys):
    rc = cli.main(["train", "--loss", "auc", "--epochs", "1", "--model", "mlp", "--out",
                   str(tmp_path), "--no-progress"])
    assert rc == 0 and json.loads((tmp_path / "metrics.json").read_text())["epochs_done"] == 1
    assert "wrote" in capsys.readouterr().out


def test_cli_bad_epochs_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["train", "--epochs", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--epochs" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_cli_missing_data_exits_3(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"),
                   "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 3 and "train-images-idx3-ubyte" in capsys.readouterr().err


# --- LibAUC (optional) -----------------------------------------------------------------------

NO_LIBAUC = train_objectives.libauc_available()


@pytest.mark.skipif(NO_LIBAUC is not None, reason=str(NO_LIBAUC))
def test_libauc_half_positive_batches(tmp_path, monkeypatch):
    seen = []
    real = train_objectives._LibAUC.loss

    def loss(self, outputs, labels):
        seen.append((int(labels.sum()), len(labels)))
        return real(self, outputs, labels)

    monkeypatch.setattr(train_objectives._LibAUC, "loss", loss)
    result = _run(tmp_path, loss="libauc-aucm", epochs=1)
    assert len(seen) > 10 and all(pos == 16 and n >= 31 for pos, n in seen)
    assert result["metrics"]["auc"] > 0.6


@pytest.mark.skipif(NO_LIBAUC is not None, reason=str(NO_LIBAUC))
def test_libauc_resume_restores_pesg(tmp_path):
    _run(tmp_path / "a", loss="libauc-aucm", epochs=1)
    resumed = _run(tmp_path / "a", loss="libauc-aucm", epochs=2)
    fresh = _run(tmp_path / "b", loss="libauc-aucm", epochs=2)
    assert resumed["metrics"] == pytest.approx(fresh["metrics"], rel=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "a" / "scores.npz")["scores"],
                               np.load(tmp_path / "b" / "scores.npz")["scores"], rtol=1e-5)
