"""``sparselp train`` over several processes: ``--nproc`` (spawned) and ``torchrun``
(benchmarks/train_ddp.py), against one process on the same minibatches."""
import csv
import json

import pytest


@pytest.mark.parametrize("loss", ["auc-hinge", "ce"])
def test_nproc_two_takes_the_steps_of_one_process(loss, tmp_path, capsys):
    """``sparselp train --nproc 2``: DDP with the loss of the global minibatch takes the
    steps of one process on the same minibatches (train loss per epoch equal to round-off,
    the same test AUC), and a run started on 2 processes resumes on 1."""
    from benchmarks.train import main
    args = ["--dataset", "digits", "--model", "mlp", "--loss", loss, "--batch-size", "64",
            "--no-progress", "--epochs", "1"]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    assert main(args + ["--out", str(tmp_path / "two"), "--nproc", "2"]) == 0
    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    curve = [list(csv.DictReader(open(tmp_path / d / "curve.csv"))) for d in ("one", "two")]
    assert float(curve[0][0]["train_loss"]) == pytest.approx(float(curve[1][0]["train_loss"]),
                                                             abs=1e-5)
    assert one["metrics"]["auc"] == pytest.approx(two["metrics"]["auc"], abs=1e-3)
    assert one["config"] == two["config"]
    # extend the two-process run by an epoch in one process
    assert main(args[:-1] + ["2", "--out", str(tmp_path / "two")]) == 0
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["epochs_done"] == 2


def test_nproc_refusals(tmp_path, capsys):
    from benchmarks.train import main
    base = ["--dataset", "digits", "--model", "mlp", "--epochs", "1", "--no-progress",
            "--out", str(tmp_path / "r")]
    assert main(base + ["--loss", "libauc-aucm", "--nproc", "2"]) == 2
    assert "no global-batch form" in capsys.readouterr().err
    assert main(base + ["--loss", "auc", "--batch-size", "3", "--nproc", "2"]) == 2
    assert "too small to share" in capsys.readouterr().err
    assert main(base + ["--loss", "auc", "--nproc", "0"]) == 2
    assert "--nproc must be at least 1" in capsys.readouterr().err


def test_torchrun_launch_takes_the_steps_of_one_process(tmp_path, monkeypatch, capsys):
    """``torchrun --nproc_per_node 2 -m benchmarks.train ...``: the processes are torchrun's,
    the run is the one of ``--nproc 2`` (and of one process on the same minibatches)."""
    import os
    import subprocess
    import sys

    from benchmarks.train import main
    args = ["--dataset", "digits", "--model", "mlp", "--loss", "auc-hinge", "--batch-size",
            "64", "--no-progress", "--epochs", "1"]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m",
                           "benchmarks.train"] + args + ["--out", str(tmp_path / "tr")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("wrote") == 1  # rank 0 reports
    curve = [list(csv.DictReader(open(tmp_path / d / "curve.csv"))) for d in ("one", "tr")]
    assert float(curve[0][0]["train_loss"]) == pytest.approx(float(curve[1][0]["train_loss"]),
                                                             abs=1e-5)
    # under torchrun, --nproc is refused (the processes are torchrun's)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(args + ["--out", str(tmp_path / "x"), "--nproc", "2"]) == 2
    assert "under torchrun" in capsys.readouterr().err
