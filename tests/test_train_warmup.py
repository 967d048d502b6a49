"""``--warmup-ce-epochs``: an LP loss's run whose first epochs train with cross-entropy (the
same Adam), its per-loss default, how checkpoints and the grid record it. Digits, the MLP."""
import json

import pytest
import torch

from benchmarks import cli, train_grid, train_objectives
from benchmarks.train import TrainConfig, recorded_config, saved_config, train


def _cfg(**kw):
    return TrainConfig(**{"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 32,
                          "imratio": 0.1, **kw})


def _run(out, resume=True, **kw):
    return train(_cfg(**kw), str(out), resume=resume, progress=False)


def _curve(out):
    return torch.load(out / "checkpoint.pt", weights_only=False)["curve"]


def _weights(out):
    return torch.load(out / "checkpoint.pt", weights_only=False)["model"]


def test_warmup_epochs_are_cross_entropy_then_the_loss(tmp_path):
    warm = _run(tmp_path / "w", loss="auc", epochs=3, warmup_ce_epochs=2)
    ce = _run(tmp_path / "ce", loss="ce", epochs=2)
    auc = _run(tmp_path / "auc", loss="auc", epochs=3)
    w, c, a = _curve(tmp_path / "w"), _curve(tmp_path / "ce"), _curve(tmp_path / "auc")
    # The same initial weights and minibatches: the warm-up is the CE run, step for step.
    assert [r["train_loss"] for r in w[:2]] == [r["train_loss"] for r in c]
    assert [r["val_auc"] for r in w[:2]] == [r["val_auc"] for r in c]
    # then the AUC loss (a hinge of the scores, not CE's loss, nor the cold AUC run's)
    assert w[2]["train_loss"] != a[2]["train_loss"] and warm["metrics"] != auc["metrics"]
    assert warm["config"]["warmup_ce_epochs"] == 2 and ce["metrics"]["auc"] > 0.7


def test_a_warmup_run_resumes_and_extends_like_a_fresh_one(tmp_path):
    _run(tmp_path / "a", loss="fscore", epochs=2, warmup_ce_epochs=1)
    resumed = _run(tmp_path / "a", loss="fscore", epochs=3, warmup_ce_epochs=1)
    fresh = _run(tmp_path / "b", loss="fscore", epochs=3, warmup_ce_epochs=1)
    assert resumed["metrics"] == fresh["metrics"]
    for k, v in _weights(tmp_path / "a").items():
        assert torch.equal(v, _weights(tmp_path / "b")[k]), k
    with pytest.raises(ValueError, match="warmup_ce_epochs=1 here, 2 asked"):
        _run(tmp_path / "a", loss="fscore", epochs=3, warmup_ce_epochs=2)


@pytest.mark.parametrize("loss, k, epochs, word", [
    ("ce", 1, 2, "not 'ce'"), ("libauc-aucm", 1, 2, "not 'libauc-aucm'"),
    ("auc", 2, 2, "leaves none of the epochs=2"), ("auc", -1, 2, "must be >= 0")])
def test_bad_warmups_are_refused_naming_it(tmp_path, capsys, loss, k, epochs, word):
    with pytest.raises(ValueError, match=word):
        _run(tmp_path / "o", loss=loss, epochs=epochs, warmup_ce_epochs=k)
    assert cli.main(["train", "--loss", loss, "--epochs", str(epochs), "--warmup-ce-epochs",
                     str(k), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--warmup-ce-epochs" in err and word in err and not (tmp_path / "o").exists()


def test_the_loss_default_is_recorded_and_a_run_without_it_is_not_resumed(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setitem(train_objectives.DEFAULT_WARMUP_CE_EPOCHS, "auc", 1)
    cfg = _cfg(loss="auc")
    assert saved_config(cfg)["loss_defaults"]["warmup_ce_epochs"] == 1
    assert train_objectives.warmup_ce_epochs("auc", None, 2) == 1
    assert train_objectives.warmup_ce_epochs("auc", 0, 2) == 0
    with pytest.raises(ValueError, match="its default.*--warmup-ce-epochs 0"):
        train_objectives.warmup_ce_epochs("auc", None, 1)
    # a record from before the warm-up existed (no field, no default) ran without one
    old = {k: v for k, v in saved_config(_cfg(loss="ce")).items()
           if k != "warmup_ce_epochs"}
    old["loss_defaults"] = {"eps": None, "reduction": None}
    assert recorded_config(old) == saved_config(_cfg(loss="ce"))
    assert recorded_config({**old, "loss": "auc"}) != saved_config(cfg)
    default = _run(tmp_path / "d", loss="auc")
    explicit = _run(tmp_path / "e", loss="auc", warmup_ce_epochs=1)
    assert default["metrics"] == explicit["metrics"]
    assert json.loads((tmp_path / "d" / "metrics.json").read_text())["config"][
        "loss_defaults"]["warmup_ce_epochs"] == 1
    with pytest.raises(ValueError, match="loss_defaults"):
        monkeypatch.setitem(train_objectives.DEFAULT_WARMUP_CE_EPOCHS, "auc", 0)
        _run(tmp_path / "d", loss="auc")


def test_the_grid_names_the_warmup_and_gives_it_to_the_lp_losses_only(tmp_path, monkeypatch):
    monkeypatch.setitem(train_objectives.DEFAULT_WARMUP_CE_EPOCHS, "auc", 1)
    rows = train_grid.run(dataset="digits", model="mlp", epochs=2, seeds=(0,),
                          imratios=(0.1,), batch_size=64, losses=("ce", "auc", "auc-hinge"),
                          studies=("grid",), runs=str(tmp_path),
                          base=TrainConfig(warmup_ce_epochs=None))
    runs = {r["loss"]: r["run"] for r in rows}
    assert runs["auc"].endswith("_s0_wce1") and runs["ce"].endswith("_s0")
    assert runs["auc-hinge"].endswith("_s0")
    assert {r["loss"]: r["warmup_ce_epochs"] for r in rows} == {"ce": 0, "auc": 1,
                                                                 "auc-hinge": 0}
    rows = train_grid.run(dataset="digits", model="mlp", epochs=2, seeds=(0,),
                          imratios=(0.1,), batch_size=64, losses=("ce", "auc-hinge"),
                          studies=("grid",), runs=str(tmp_path),
                          base=TrainConfig(warmup_ce_epochs=1))
    runs = {r["loss"]: r["run"] for r in rows}
    assert runs["ce"].endswith("_s0") and runs["auc-hinge"].endswith("_s0_wce1")
