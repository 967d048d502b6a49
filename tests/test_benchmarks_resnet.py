"""The ResNet-18 study and the fresh-process peak-memory helper it stands on."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from benchmarks import resnet
from benchmarks.peakmem import run_isolated

MiB = 2 ** 20


# ------------------------------------------------------------------------- peak memory
def test_run_isolated_sees_a_known_allocation():
    small = run_isolated("benchmarks.peakmem:allocate", {"nbytes": 8 * MiB}, timeout=120)
    big = run_isolated("benchmarks.peakmem:allocate", {"nbytes": 200 * MiB}, timeout=120)
    assert small["status"] == big["status"] == "ok", (small["error"], big["error"])
    assert big["result"]["sum"] == 200 * MiB / 8
    # The difference between the two fresh processes is the 192 MiB allocated in between.
    diff = big["net_rss"] - small["net_rss"]
    assert 185 * MiB < diff < 205 * MiB, diff / MiB
    # Import transients are excluded: a small allocation reads as small.
    assert small["net_rss"] < 40 * MiB, small["net_rss"] / MiB
    assert big["peak_rss"] >= big["baseline_rss"] + 190 * MiB


def test_run_isolated_reports_timeout_with_lower_bound():
    r = run_isolated("benchmarks.peakmem:allocate", {"nbytes": 64 * MiB, "hold_seconds": 60},
                     timeout=8)
    assert r["status"] == "timeout" and "killed after 8 s" in r["error"]
    assert r["result"] is None
    assert r["net_rss"] is not None and r["net_rss"] > 60 * MiB


def test_run_isolated_reports_errors_of_the_target():
    r = run_isolated("benchmarks.peakmem:no_such_function", {}, timeout=60)
    assert r["status"] == "error" and "no_such_function" in r["error"]
    r = run_isolated("benchmarks.peakmem:allocate", {"nbytes": -8}, timeout=60)
    assert r["status"] == "error" and "negative" in r["error"]


def test_run_isolated_rejects_bad_arguments():
    with pytest.raises(ValueError, match="package.module:function"):
        run_isolated("benchmarks.peakmem", {})
    with pytest.raises(ValueError, match="timeout must be positive"):
        run_isolated("benchmarks.peakmem:allocate", {}, timeout=0)


# ------------------------------------------------------------------------------ ResNet-18
def test_train_step_cross_entropy_updates_the_model():
    row = resnet.train_step("ce", batch=4, size=32, steps=2, warmup=0)
    assert math.isfinite(row["loss_value"])
    for k in ("forward_s", "backward_s", "step_s"):
        assert row[k] > 0
    assert row["total_s"] == pytest.approx(row["forward_s"] + row["backward_s"] + row["step_s"])


def test_train_step_takes_one_sgd_step_on_the_cross_entropy(monkeypatch):
    """One step: the loss is the initial model's cross entropy on the batch, and every
    parameter moves by -lr times its gradient (plain SGD, lr = 1e-3)."""
    import torchvision
    built = {}
    real = torchvision.models.resnet18

    def spy(*args, **kwargs):
        built["model"] = real(*args, **kwargs)
        built["initial"] = copy.deepcopy(built["model"])
        return built["model"]
    monkeypatch.setattr(torchvision.models, "resnet18", spy)
    row = resnet.train_step("ce", batch=4, size=32, steps=1, warmup=0, seed=3)
    x, y = resnet._batch(4, 32, 0.5, 3, "cpu")
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(built["initial"](x), y)
    assert row["loss_value"] == pytest.approx(float(expected), rel=1e-5)
    moved = 0
    for p, p0 in zip(built["model"].parameters(), built["initial"].parameters()):
        assert p.grad is not None
        torch.testing.assert_close(p.detach(), p0.detach() - 1e-3 * p.grad)
        moved += int(not torch.equal(p, p0))
    assert moved == len(list(built["model"].parameters()))


def test_make_loss_and_batch_reject_bad_input():
    with pytest.raises(ValueError, match="loss must be one of"):
        resnet.make_loss("hinge")
    with pytest.raises(ValueError, match="batch must be at least 2"):
        resnet.train_step("ce", batch=1)
    with pytest.raises(ValueError, match=r"pos_frac must lie in \(0, 1\)"):
        resnet.train_step("ce", batch=4, pos_frac=1.0)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        resnet.train_step("ce", batch=4, steps=0)


def test_batch_has_both_classes_at_requested_fraction():
    x, y = resnet._batch(20, 32, 0.1, 0, "cpu")
    assert x.shape == (20, 3, 32, 32) and int(y.sum()) == 2


@pytest.mark.parametrize("version, n", [("ours", 12), ("dense", 10)])
def test_lp_loss_on_binary_logit_backpropagates(version, n):
    fn = resnet.make_loss(version)
    # The paper's surrogate has a gradient only for pairs whose score gap lies in (0, eps):
    # binary logits 0.005 apart, with eps = 0.01.
    y = torch.tensor([1, 0] * (n // 2))
    logits = torch.zeros(n, 2)
    logits[:, 1] = 0.005 * y + 0.001 * torch.arange(n) / n
    logits.requires_grad_(True)
    out = fn(logits, y)
    out.backward()
    assert out.ndim == 0 and math.isfinite(float(out.detach()))
    # d loss / d logit_1 = -d loss / d logit_0: the loss sees only their difference.
    torch.testing.assert_close(logits.grad[:, 1], -logits.grad[:, 0])
    assert logits.grad.abs().sum() > 0


def test_run_measures_each_configuration_in_a_fresh_process():
    rows = resnet.run(batches=(4,), sizes=(32,), losses=("ce", "dense"), device="cpu",
                      max_dense_pairs=2, progress=False)
    assert [r["loss"] for r in rows] == ["ce", "dense"]
    ce, dense = rows
    assert ce["status"] == "ok", ce["error"]
    assert ce["peak_bytes"] > ce["net_rss"] > 0 and ce["forward_s"] > 0
    # 4 pairs > max_dense_pairs = 2: not started, with the reason.
    assert dense["status"] == "skipped" and "max_dense_pairs" in dense["error"]


def test_time_losses_reports_medians_quartiles_cpu_time_and_per_round_ratios():
    rows = resnet.time_losses(batch=4, size=32, losses=("ce", "ours"), repeats=3)
    by = {r["loss"]: r for r in rows}
    assert by["ce"]["status"] == "ok" and by["ours"]["status"] == "ok", by["ours"]["error"]
    for r in rows:
        assert r["repeats"] == 3
        for phase in resnet.PHASES:
            med, q25, q75 = (r[f"{phase}_s{q}"] for q in ("", "_q25", "_q75"))
            assert 0 < q25 <= med <= q75, (r["loss"], phase)
            assert r[f"{phase}_cpu_s"] > 0, (r["loss"], phase)
        assert r["ratio_to_ce_q25"] <= r["ratio_to_ce"] <= r["ratio_to_ce_q75"]
    # Cross-entropy against itself, round by round: exactly 1.
    assert by["ce"]["ratio_to_ce"] == by["ce"]["ratio_to_ce_q25"] == \
        by["ce"]["ratio_to_ce_q75"] == 1.0
    assert by["ours"]["ratio_to_ce"] > 0
    assert by["ce"]["loss_forward_s"] > 0 and by["ce"]["loss_backward_s"] > 0


def test_time_losses_alternates_the_order_and_drops_the_warm_up(monkeypatch):
    calls = []
    real = resnet.make_loss

    def spy(name):
        fn = real(name)

        def wrapped(logits, labels):
            if not logits.is_leaf:  # the training step, not the loss alone
                calls.append(name)
            return fn(logits, labels)
        return wrapped
    monkeypatch.setattr(resnet, "make_loss", spy)
    rows = resnet.time_losses(batch=4, size=32, losses=("ce", "ours"), repeats=2)
    # warm-up (reversed), round 1, round 2 (reversed)
    assert calls == ["ours", "ce", "ce", "ours", "ours", "ce"]
    assert [r["loss"] for r in rows] == ["ce", "ours"]


def test_time_losses_without_cross_entropy_has_no_ratio():
    (row,) = resnet.time_losses(batch=4, size=32, losses=("ours",), repeats=1)
    assert row["status"] == "ok" and row["ratio_to_ce"] is None
    # One round: its quartiles are its value.
    assert row["iteration_s_q25"] == row["iteration_s"] == row["iteration_s_q75"]


def test_quartiles():
    assert resnet.quartiles([4.0, 1.0, 3.0, 2.0, 5.0]) == (2.0, 3.0, 4.0)
    assert resnet.quartiles([2.0]) == (2.0, 2.0, 2.0)


def test_time_losses_reports_a_loss_that_cannot_be_imported(monkeypatch):
    real = resnet.make_loss

    def make_loss(name):
        if name == "ours":
            raise ImportError("no sparselp.losses here")
        return real(name)
    monkeypatch.setattr(resnet, "make_loss", make_loss)
    ce, ours = resnet.time_losses(batch=4, size=32, losses=("ce", "ours"), repeats=1)
    assert ce["status"] == "ok" and ce["ratio_to_ce"] == 1.0
    assert ours["status"] == "unavailable" and "no sparselp.losses" in ours["error"]
    assert "iteration_s" not in ours
