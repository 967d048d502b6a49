"""``sparselp bench train`` (benchmarks/train_grid.py) and ``bench train-timing`` in small,
and section (f) of the report from rows. Digits, the MLP, one epoch; Fashion-MNIST rows are
made by hand (CI has no Fashion-MNIST)."""
import math
import os

import pytest

from benchmarks import cli, train_grid, train_timing
from benchmarks.report import build_report
from benchmarks.report import train_section as sec
from benchmarks.report.build import load_rows
from benchmarks.tables import write_csv
from benchmarks.train import TrainConfig
from benchmarks.train_objectives import DEFAULT_EPS, libauc_available

PNG = b"\x89PNG\r\n\x1a\n"


def _bench_args(runs, out):
    return ["bench", "train", "--quick", "--runs", str(runs), "--out", str(out),
            "--no-progress"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """``(runs, out, rows of train_runs.csv)`` of one ``sparselp bench train --quick``."""
    runs, out = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("out")
    assert cli.main(_bench_args(runs, out)) == 0
    return runs, out, load_rows(str(out / "train_runs.csv"))


def _metrics_mtimes(runs):
    return {d: os.stat(runs / d / "metrics.json").st_mtime_ns for d in os.listdir(runs)
            if (runs / d / "metrics.json").exists()}


# --- sparselp bench train --quick ----------------------------------------------------------

def test_quick_bench_writes_tables_and_figures(quick):
    runs, out, rows = quick
    for name in ("train_roc.png", "train_batch_size.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    assert load_rows(str(out / "train_summary.csv"))
    studies = {r["study"] for r in rows}
    assert {"grid", "size", "longtail"} <= studies
    assert {r["loss"] for r in rows if r["study"] == "longtail"} == {"ce", "multiclass-auc"}
    # the longtail study names multiclass-auc's default eps (a run of an older default
    # is then not read back)
    assert {float(r["eps"]) for r in rows if r["loss"] == "multiclass-auc"} == \
        {DEFAULT_EPS["multiclass-auc"]}
    assert {r["batch_size"] for r in rows if r["study"] == "size"} == {32, 128}
    grid = [r for r in rows if r["study"] == "grid" and r.get("seed") is not None]
    assert all(r["dataset"] == "digits" and 0 <= r["auc"] <= 1 for r in grid)
    assert all(os.path.exists(os.path.join(r["run"], "scores.npz")) for r in grid)


def test_second_call_reads_the_runs_back(quick, monkeypatch, tmp_path):
    runs, _, rows = quick
    before = _metrics_mtimes(runs)
    assert set(before) >= {os.path.basename(r["run"]) for r in rows if r.get("run")}

    def no_training(*a, **k):
        raise AssertionError("retrained a finished run")

    monkeypatch.setattr(train_grid, "train", no_training)
    assert cli.main(_bench_args(runs, tmp_path)) == 0
    assert _metrics_mtimes(runs) == before
    assert load_rows(str(tmp_path / "train_runs.csv")) == rows


def test_a_changed_setting_retrains_in_its_own_folder(quick, monkeypatch):
    runs, _, _ = quick
    before, trained = _metrics_mtimes(runs), []
    real = train_grid.train
    monkeypatch.setattr(train_grid, "train",
                        lambda cfg, out, **k: trained.append(cfg) or real(cfg, out, **k))
    one = dict(runs=str(runs), studies=("grid",), losses=("ce",))
    # recall is not in the folder's name: it used to resume the default run's checkpoint,
    # which train() refuses (ValueError).
    row, = train_grid.run(quick=True, base=TrainConfig(recall=0.9), **one)
    assert [c.recall for c in trained] == [0.9] and row["recall"] == 0.9
    # Its own folder; default settings keep their folders' names (earlier runs still found).
    assert os.path.basename(row["run"]) not in before
    assert "digits_libauc_r0.1_ce_mlp_e1_b64_s0" in before
    row, = train_grid.run(dataset="digits", model="mlp", epochs=2, seeds=(0,),
                          imratios=(0.1,), batch_size=64, **one)
    assert [c.epochs for c in trained[1:]] == [2] and row["epochs"] == 2
    assert all(_metrics_mtimes(runs)[d] == t for d, t in before.items())
    train_grid.run(quick=True, base=TrainConfig(recall=0.9), **one)
    assert len(trained) == 2  # both read back now


def test_libauc_lr_is_chosen_by_validation_auc(quick):
    why = libauc_available()
    if why:
        pytest.skip(f"LibAUC not available: {why}")
    _, _, rows = quick
    tuning = [r for r in rows if r["study"] == "libauc-tuning"]
    assert sorted(r["lr"] for r in tuning) == [0.01, 0.1]
    grid = [r for r in rows if r["study"] == "grid" and r["loss"] == "libauc-aucm"]
    assert grid and all(r.get("status") is None for r in grid)
    chosen = {r["lr"] for r in grid}
    assert len(chosen) == 1
    by_lr = {r["lr"]: r["val_auc"] for r in tuning}
    assert by_lr[chosen.pop()] == max(by_lr.values())


def test_libauc_lr_by_validation_not_test_auc(monkeypatch):
    fake = {0.1: (0.7, 0.95), 0.03: (0.9, 0.6), 0.01: (0.8, 0.8)}  # lr: (val, test AUC)
    monkeypatch.setattr(train_grid, "libauc_available", lambda: None)
    monkeypatch.setattr(train_grid, "_one", lambda cfg, runs, study, progress: {
        "study": study, "lr": cfg.lr, "seed": cfg.seed, "val_auc": fake[cfg.lr][0],
        "auc": fake[cfg.lr][1]})
    rows = train_grid.run(dataset="digits", losses=("libauc-aucm",), imratios=(0.05,),
                          seeds=(0, 1), libauc_lrs=tuple(fake), studies=("grid",), runs="-")
    tuning = [(r["lr"], r["seed"]) for r in rows if r["study"] == "libauc-tuning"]
    assert tuning == [(0.1, 0), (0.03, 0), (0.01, 0)]  # on the first seed
    assert [(r["lr"], r["seed"]) for r in rows if r["study"] == "grid"] == [(0.03, 0),
                                                                          (0.03, 1)]


# --- summarise -----------------------------------------------------------------------------

def _run_row(loss, seed, auc, study="grid", imratio=0.1, batch_size=64, **kw):
    return {"study": study, "protocol": "libauc", "imratio": imratio, "loss": loss,
            "batch_size": batch_size, "seed": seed, "auc": auc, "val_auc": auc, **kw}


def test_summarise_mean_std_per_group(tmp_path):
    rows = [_run_row("ce", s, a) for s, a in enumerate((0.7, 0.8, 0.9))]
    rows += [_run_row("libauc-aucm", 0, 0.99, study="libauc-tuning", lr=0.01),
             _run_row("libauc-aucm", 0, 0.6, lr=0.1), _run_row("libauc-aucm", 1, 0.8, lr=0.1),
             {"study": "grid", "imratio": 0.05, "loss": "libauc-aucm",
              "status": "skipped: no LibAUC"},
             _run_row("ce", 0, 0.75, study="size", batch_size=32),
             _run_row("ce", 0, 0.65, study="size", batch_size=128)]
    write_csv(rows, str(tmp_path / "runs.csv"))
    for given in (rows, load_rows(str(tmp_path / "runs.csv"))):  # as run, and from a CSV
        by = {(r["study"], r["imratio"], r["loss"], r["batch_size"]): r
              for r in train_grid.summarise(given)}
        assert len(by) == 5 and not any(k[0] == "libauc-tuning" for k in by)
        ce = by["grid", 0.1, "ce", 64]
        assert ce["seeds"] == 3 and math.isclose(ce["auc"], 0.8)
        assert math.isclose(ce["auc_std"], 0.1)  # ddof=1 (ddof=0: 0.0816)
        lib = by["grid", 0.1, "libauc-aucm", 64]
        assert lib["seeds"] == 2 and math.isclose(lib["auc"], 0.7) and lib["lr"] == 0.1
        skipped = by["grid", 0.05, "libauc-aucm", None]
        assert skipped["seeds"] == 0 and skipped["status"] == "skipped: no LibAUC"
        one = by["size", 0.1, "ce", 32]
        assert one["seeds"] == 1 and one["auc"] == 0.75 and one["auc_std"] == 0.0


# --- sparselp bench train-timing ----------------------------------------------------------

def test_time_steps_ratios_quartiles_and_cpu(tmp_path):
    rows = train_timing.time_steps(dataset="digits", model="mlp", batch=64, repeats=2,
                                   losses=("ce", "auc-hinge"))
    assert [r["loss"] for r in rows] == ["ce", "auc-hinge"]
    ce = rows[0]
    assert ce["ratio_to_ce"] == ce["ratio_to_ce_q25"] == ce["ratio_to_ce_q75"] == 1.0
    for r in rows:
        assert r["status"] == "ok" and r["repeats"] == 2
        assert 0 < r["step_s_q25"] <= r["step_s"] <= r["step_s_q75"]
        assert r["ratio_to_ce_q25"] <= r["ratio_to_ce"] <= r["ratio_to_ce_q75"]
        assert r["cpu_s"] > 0
    with pytest.raises(ValueError, match="start with 'ce'"):
        train_timing.time_steps(dataset="digits", model="mlp", losses=("auc", "ce"))
    out = tmp_path / "timing.csv"
    assert cli.main(["bench", "train-timing", "--dataset", "digits", "--model", "mlp",
                     "--batch", "32", "--repeats", "1", "--losses", "ce,auc",
                     "--out", str(out)]) == 0
    assert [r["loss"] for r in load_rows(str(out))] == ["ce", "auc"]


# --- section (f) from rows -----------------------------------------------------------------

def _grid(tests, vals=None, dataset="fashion-mnist", seeds=(0, 1, 2), spread=0.01):
    """Grid rows: per loss, seeds whose test AUCs are ``tests[loss] + spread * (seed - 1)``
    (3 seeds: std exactly ``spread``); validation AUC ``vals[loss]`` (default: the test's)."""
    vals = vals or tests
    return [_run_row(loss, s, t + spread * (s - 1), imratio=0.01, dataset=dataset,
                     model="mlp", epochs=4, val_auc=vals[loss])
            for loss, t in tests.items() for s in seeds]


def _timing_rows(ratio, dataset="fashion-mnist"):
    base = {"model": "cnn", "batch": 256, "dataset": dataset, "repeats": 3, "status": "ok"}
    return [{**base, "loss": loss, "step_s": 0.01 * r, "step_s_q25": 0.009 * r,
             "step_s_q75": 0.011 * r, "cpu_s": 0.02 * r, "ratio_to_ce": r,
             "ratio_to_ce_q25": r, "ratio_to_ce_q75": r}
            for loss, r in (("ce", 1.0), ("auc-hinge", ratio))]


def _verdict(verdicts, start):
    found = [v for v in verdicts if v["target"].startswith(start)]
    assert len(found) == 1, [v["target"] for v in verdicts]
    return found[0]


def _grid_verdict(rows, out, timing=None):
    data = {"train_runs": rows, "train_timing": timing or _timing_rows(1.0)}
    body, verdicts, notes = sec.render_train(data, str(out))
    return _verdict(verdicts, "best LP loss (by validation AUC)"), body, notes


@pytest.mark.parametrize("tests, ok", [
    ({"ce": 0.80, "auc": 0.85, "auc-hinge": 0.90}, True),    # wins by 0.1 > std 0.01
    ({"ce": 0.80, "auc": 0.795, "auc-hinge": 0.805}, False),  # wins by 0.005 < std
])
def test_grid_verdict_needs_a_win_beyond_the_seed_spread(tmp_path, tests, ok):
    v, body, notes = _grid_verdict(_grid(tests), tmp_path)
    assert v["ok"] is ok and v["measured"].startswith("auc-hinge ")
    assert not notes
    page = "\n".join(body)  # the table of mean and std over the seeds
    assert "<table>" in page and f"<td>{tests['auc-hinge']:.4g}</td>" in page
    assert "<td>0.01</td>" in page


def test_best_lp_loss_is_picked_by_validation_not_test_auc(tmp_path):
    # By test AUC auc-hinge would win clearly; by validation AUC "auc" is the best LP
    # loss, and its test AUC beats ce by 0.01, within the std of 0.02.
    rows = _grid({"ce": 0.80, "auc": 0.81, "auc-hinge": 0.95},
                 vals={"ce": 0.8, "auc": 0.95, "auc-hinge": 0.85}, spread=0.02)
    v, _, _ = _grid_verdict(rows, tmp_path)
    assert v["measured"].startswith("auc 0.81") and v["ok"] is False


def test_fscore_verdict_takes_the_surrogate_best_on_validation_f1(tmp_path):
    # The hinge has the better test F1, the ramp the better validation F1: the ramp is
    # compared with cross-entropy (and falls short of it).
    f1 = {"ce": (0.89, 0.88), "fscore": (0.87, 0.90), "fscore-hinge": (0.95, 0.85)}
    rows = [_run_row(loss, s, 0.9, imratio=0.05, dataset="fashion-mnist", model="mlp",
                     epochs=4, f1_val_threshold=t + 0.001 * s, val_f1=v)
            for loss, (t, v) in f1.items() for s in (0, 1, 2)]
    body, verdicts, _ = sec.render_train({"train_runs": rows}, str(tmp_path))
    v = _verdict(verdicts, "FScoreLoss's test F1")
    assert v["measured"].startswith("fscore 0.87") and v["ok"] is False
    for r in rows:
        r["val_f1"] = 0.95 if r["loss"] == "fscore-hinge" else 0.8
    _, verdicts, _ = sec.render_train({"train_runs": rows}, str(tmp_path))
    v = _verdict(verdicts, "FScoreLoss's test F1")
    assert v["measured"].startswith("fscore-hinge 0.95") and v["ok"] is True


@pytest.mark.parametrize("dataset, seeds", [("digits", (0, 1, 2)), ("fashion-mnist", (0,))])
def test_grid_verdicts_not_measured_off_target_data_or_with_one_seed(tmp_path, dataset,
                                                                   seeds):
    rows = _grid({"ce": 0.6, "auc-hinge": 0.9}, dataset=dataset, seeds=seeds)
    v, _, notes = _grid_verdict(rows, tmp_path)
    assert v["ok"] is None
    assert any("digits" in n and "not measured" in n for n in notes) == (dataset == "digits")


@pytest.mark.parametrize("ratio, dataset, ok", [(1.05, "fashion-mnist", True),
                                                 (1.2, "fashion-mnist", False),
                                                 (1.05, "digits", None)])
def test_timing_verdict_by_the_1_1x_rule(tmp_path, ratio, dataset, ok):
    data = {"train_runs": _grid({"ce": 0.8, "auc": 0.9}),
            "train_timing": _timing_rows(ratio, dataset)}
    body, verdicts, _ = sec.render_train(data, str(tmp_path))
    v = _verdict(verdicts, "LP losses' per-iteration time")
    assert v["ok"] is ok and f"auc-hinge {ratio:.2f}x" in v["measured"]
    assert f"{ratio:.2f}x ({ratio:.2f}-{ratio:.2f})" in "\n".join(body)


def test_missing_rows_are_not_measured(tmp_path):
    body, verdicts, _ = sec.render_train({}, str(tmp_path))
    assert verdicts and all(v["ok"] is None for v in verdicts)
    assert any("training rows missing" in v["measured"] for v in verdicts)
    _, verdicts, _ = sec.render_train({"train_runs": _grid({"ce": 0.8, "auc": 0.9})},
                                      str(tmp_path))
    assert _verdict(verdicts, "LP losses' per-iteration time")["ok"] is None
    _, verdicts, _ = sec.render_train({"train_timing": _timing_rows(1.0)}, str(tmp_path))
    assert _verdict(verdicts, "LP losses' per-iteration time")["ok"] is True


def test_section_rules():
    assert sec.beats(0.9, 0.01, 0.8, 0.05) and not sec.beats(0.9, 0.2, 0.8, 0.01)
    assert sec.beats(0.9, None, 0.8, math.nan) and sec.beats(math.nan, 0, 0.8, 0) is None
    assert sec.time_ok([1.0, 1.1]) and not sec.time_ok([1.0, 1.11]) and sec.time_ok([]) is None
    assert sec._decided(True, [{"seeds": 3}, {"seeds": 2}], True) is True
    assert sec._decided(False, [{"seeds": 3}, {"seeds": 1}], True) is None
    assert sec._decided(True, [{"seeds": 3}], False) is None


def test_quick_report_section_f(tmp_path):
    summary = build_report(out=str(tmp_path), quick=True, sections="f")
    index = (tmp_path / "index.html").read_text()
    assert "(f) Training with the LP losses" in index and summary["status"]["f"] == "ok"
    for name in ("train_roc.png", "train_batch_size.png"):
        assert f"<img src='{name}'" in index
        assert (tmp_path / name).read_bytes()[:8] == PNG
    assert all(v["ok"] is None for v in summary["verdicts"]["f"])  # digits: not measured
    assert "Fashion-MNIST is not installed" in index


def test_report_from_csv_says_which_rows_were_not_measured_now(tmp_path):
    """--from-csv: the page names the sources read from CSV instead of claiming that every
    number was measured in this run."""
    from benchmarks.report import build_report

    first, second = tmp_path / "a", tmp_path / "b"
    build_report(out=str(first), quick=True, sections="f")
    page = (first / "index.html").read_text()
    assert "Every number on this page was measured in this run" in page
    build_report(out=str(second), quick=True, sections="f", from_csv=str(first))
    page = (second / "index.html").read_text()
    assert "Rows of train_runs, train_timing were read from CSV files" in page
    assert "Every number on this page was measured" not in page


@pytest.mark.parametrize("limit", ["300", "1"], ids=["whole", "cut"])
def test_gpu_train_script_on_cpu(tmp_path, limit):
    """benchmarks/gpu_train.sh (the ResNet-18 grid for a GPU session) with a CPU stand-in:
    digits, the MLP, one epoch. Cut short by its time limit, it still summarises the runs
    that finished and packs them."""
    import subprocess
    import sys
    import tarfile
    env = dict(os.environ, DATASET="digits", MODEL="mlp", DEVICE="cpu", LOSSES="ce,auc-hinge",
               IMRATIOS="0.1", SEEDS="0", EPOCHS="1", LIMIT=limit, OUT=str(tmp_path),
               PYTHON=sys.executable)
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "gpu_train.sh")
    done = subprocess.run(["bash", script], env=env, capture_output=True, text=True)
    log = (tmp_path / "gpu_train.log").read_text()
    if limit == "300":
        assert done.returncode == 0, log
        rows = load_rows(str(tmp_path / "train_runs.csv"))
        assert sorted(r["loss"] for r in rows) == ["auc-hinge", "ce"]
        assert all(0.5 < float(r["auc"]) <= 1 for r in rows)
        with tarfile.open(tmp_path / "runs.tgz") as tar:
            names = tar.getnames()
        assert sum(n.endswith("metrics.json") for n in names) == 2
        assert not any(n.endswith(".pt") for n in names)
    else:  # killed by the limit: the summary of what finished (here nothing) is still made
        assert done.returncode == 124, log
        assert "summarising the finished runs" in log
        assert (tmp_path / "train_runs_finished.csv").exists()
