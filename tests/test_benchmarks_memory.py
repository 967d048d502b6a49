"""The memory benchmark runs, and its three versions compute the same loss."""
import csv

import pytest
import torch

from benchmarks.dense_port import dense_port_auc_loss, dense_port_bytes
from benchmarks.memory_lp import main, run, step
from sparselp.losses import AUCLoss


def test_dense_port_matches_our_loss_and_gradient():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(16, generator=g, dtype=torch.float64)
    y = (torch.arange(16) % 2 == 0).long()
    a, b = s.clone().requires_grad_(), s.clone().requires_grad_()
    ours = AUCLoss(eps=0.01, surrogate="paper")(a, y)
    port = dense_port_auc_loss(b, y, eps=0.01)
    ours.backward()
    port.backward()
    # The port's last solve carries a 1e-2 ridge (z / 1.01 on the active rows): a 1% bias.
    assert float(port.detach()) == pytest.approx(float(ours.detach()), rel=2e-2)
    assert torch.allclose(a.grad, b.grad, rtol=3e-2, atol=1e-3)


def test_step_versions_agree_in_process():
    losses = {v: step(v, 24, pos_frac=0.5, dtype="float64")["loss"]
              for v in ("ours", "floor")}
    assert losses["ours"] == pytest.approx(losses["floor"], rel=1e-10)
    with pytest.raises(ValueError, match="version must be one of"):
        step("sparse", 8)


def test_dense_port_prediction_matches_the_reported_measurement():
    # 5.5 GB measured at batch 160 (6,400 pairs) before this project.
    assert 4e9 < dense_port_bytes(80, 80) < 7e9


def test_run_isolated_rows_and_caps():
    rows = run(sizes=(16,), balances=("balanced",), timeout=60, threads=1)
    rows += run(sizes=(64,), balances=("balanced",), versions=("dense",), dense_mem_cap=1e6)
    by = {(r["version"], r["batch"]): r for r in rows}
    for v in ("dense", "ours", "floor"):
        assert by[(v, 16)]["status"] == "ok", by[(v, 16)]
        assert by[(v, 16)]["peak_mb"] > 0
    assert by[("ours", 16)]["loss"] == pytest.approx(by[("floor", 16)]["loss"], rel=1e-5)
    # The warm step (second step of a child under the default allocator) is timed too.
    assert by[("ours", 16)]["warm_total_s"] > 0 and by[("floor", 16)]["warm_total_s"] > 0
    assert by[("dense", 16)].get("warm_total_s") is None
    assert by[("dense", 64)]["status"] == "skipped"
    assert "cap" in by[("dense", 64)]["error"]


def test_main_writes_csv(tmp_path, capsys):
    out = tmp_path / "mem.csv"
    main(["--quick", "--sizes", "16", "--versions", "floor", "--out", str(out)])
    assert "floor" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out)))
    assert rows[0]["version"] == "floor" and rows[0]["status"] == "ok"
