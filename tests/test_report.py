"""``sparselp report``: the quick report end to end, and the section renderers' verdicts."""
from __future__ import annotations

import csv
import math
import re

import pytest

from benchmarks.report import Section, Source
from benchmarks.report import build as report
from benchmarks.report import accuracy as report_accuracy
from benchmarks.report import html as report_html
from benchmarks.report import sections as report_sections
from benchmarks.report import verdicts
from sparselp import Status


def test_quick_report_writes_every_section_figure_and_table(tmp_path):
    """The README's main command in its quick form: it must finish and write its files.

    Every benchmark exists and its quick run succeeds, so every section is "ok"; a
    section whose benchmark fails says so and shows no numbers (tested below).
    """
    out = tmp_path / "report"
    summary = report.build_report(out=str(out), quick=True)
    index = (out / "index.html").read_text()
    assert summary["index"] == str(out / "index.html")
    for key in "abcdefgh":
        assert f"<h2 id='{key}'>({key})" in index
        assert summary["status"][key] == "ok", (key, summary["status"])
    # Every image the page refers to exists and is a PNG; every CSV link too.
    images = re.findall(r"<img src='([^']+)'", index)
    assert images, "the report has no figure"
    for name in images:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    for name in re.findall(r"<a href='([^']+\.csv)'", index):
        with open(out / name) as fh:
            rows = list(csv.DictReader(fh))
        assert rows, f"{name} is empty"
    # The sections this issue owns always measure something.
    assert summary["status"]["b"] in ("ok", "partial") and summary["status"]["c"] == "ok"
    assert "resnet_memory.png" in images and "runtime.png" in images
    assert "scale_planner.png" in images and "scale_ranks.png" in images
    for key, status in summary["status"].items():
        if status != "ok":
            assert "Not available:" in index
    assert (out / "timings.csv").exists()
    # The quick report's budget (3 minutes) is checked by the benchmark, not here: the
    # machine running the tests may be shared.


def test_missing_benchmark_is_reported_not_faked(tmp_path, monkeypatch):
    fake = [Section("c", "runtime", "claim text", [Source("nope", "benchmarks.no_such_bench")],
                    "sections:render_runtime")]
    monkeypatch.setattr(report, "SECTIONS", fake)
    summary = report.build_report(out=str(tmp_path), quick=True, sections="c")
    index = (tmp_path / "index.html").read_text()
    assert summary["status"] == {"c": "failed"}
    assert "Not available:</b> benchmarks.no_such_bench: ModuleNotFoundError" in index
    assert "claim text" in index
    assert "not measured" in index
    assert not list(tmp_path.glob("*.png"))


def test_failing_benchmark_does_not_take_the_report_down(tmp_path, monkeypatch):
    fake = [Section("a", "memory", "claim", [Source("bad", "benchmarks.peakmem:allocate",
                                                    quick={"nbytes": "not a number"})],
                    "sections:render_memory")]
    monkeypatch.setattr(report, "SECTIONS", fake)
    summary = report.build_report(out=str(tmp_path), quick=True, sections="a")
    assert summary["status"] == {"a": "failed"}
    assert "benchmarks.peakmem:allocate failed" in (tmp_path / "index.html").read_text()


def _resnet_rows(dense_status="ok", dense_mem=4000.0, ours_mem=300.0, ce_mem=290.0):
    rows = []
    for loss, mem, status in (("ce", ce_mem, "ok"), ("dense", dense_mem, dense_status),
                              ("ours", ours_mem, "ok")):
        rows.append({"loss": loss, "batch": 200, "size": 32, "device": "cpu",
                     "status": status, "net_rss": mem * 2 ** 20, "total_s": 1.0,
                     "forward_s": 0.5, "backward_s": 0.5})
    return rows


@pytest.mark.parametrize("dense_status, dense_mem, expect", [
    ("ok", 4000.0, True),            # 13x: met
    ("ok", 2000.0, False),           # 6.7x: not met
    ("timeout", 4000.0, True),       # a lower bound of 13x still meets the target
    ("memory_limit", 2000.0, None),  # a lower bound of 6.7x proves nothing
])
def test_resnet_dense_verdict_treats_killed_runs_as_lower_bounds(dense_status, dense_mem,
                                                                 expect):
    verdicts = report_sections._resnet_memory_verdicts(_resnet_rows(dense_status, dense_mem))
    dense = next(v for v in verdicts if v["target"].startswith("dense-port memory"))
    assert dense["ok"] is expect, dense
    if dense_status != "ok":
        assert ">= " in dense["measured"]


def test_resnet_cross_entropy_verdict():
    verdicts = report_sections._resnet_memory_verdicts(_resnet_rows(ours_mem=300, ce_mem=290))
    ce = next(v for v in verdicts if "cross-entropy" in v["target"])
    assert ce["ok"] is True and "1.034x" in ce["measured"]
    verdicts = report_sections._resnet_memory_verdicts(_resnet_rows(ours_mem=400, ce_mem=290))
    assert next(v for v in verdicts if "cross-entropy" in v["target"])["ok"] is False


def test_runtime_verdicts(tmp_path):
    rows = [{"method": m, "batch": 128, "pairs": 4096, "status": "ok", "forward_s": t / 2,
             "backward_s": t / 2, "total_s": t, "grad_rel_err": 1e-9}
            for m, t in (("closed", 1e-4), ("ours", 1e-3), ("blackbox", 2e-2))]
    rows.append({"method": "cvxpylayers", "batch": 128, "pairs": 4096, "status": "skipped",
                 "error": "4096 pairs > max_cvxpy_pairs 1024"})
    body, verdicts, notes = report_sections.render_runtime({"runtime": rows}, str(tmp_path))
    bb = next(v for v in verdicts if "blackbox" in v["target"])
    cv = next(v for v in verdicts if "cvxpylayers" in v["target"])
    assert bb["ok"] is True and bb["measured"].startswith("20.00x")
    assert cv["ok"] is None and "max_cvxpy_pairs" in cv["measured"]
    assert (tmp_path / "runtime.png").exists() and (tmp_path / "runtime_split.png").exists()


def test_from_csv_reads_rows_back_with_their_types(tmp_path, monkeypatch):
    from benchmarks.tables import write_csv

    rows = [{"method": m, "batch": 128, "pairs": 4096, "status": "ok", "forward_s": 0.5 * t,
             "backward_s": 0.5 * t, "total_s": t, "grad_rel_err": 0.0, "error": ""}
            for m, t in (("ours", 0.01), ("blackbox", 0.2))]
    write_csv(rows, str(tmp_path / "runtime.csv"))
    back = report.load_rows(str(tmp_path / "runtime.csv"))
    assert back[0]["batch"] == 128 and back[0]["total_s"] == 0.01 and back[0]["error"] is None
    # The source's target does not exist: the page can only come from the CSV.
    fake = [Section("c", "runtime", "claim", [Source("runtime", "benchmarks.no_such_bench")],
                    "sections:render_runtime")]
    monkeypatch.setattr(report, "SECTIONS", fake)
    summary = report.build_report(out=str(tmp_path / "out"), sections="c",
                                  from_csv=str(tmp_path))
    assert summary["status"] == {"c": "ok"}
    assert summary["verdicts"]["c"][0]["measured"].startswith("20.00x")


def test_memory_section_with_skipped_rows_and_warm_times(tmp_path):
    """Rows without times (skipped, killed) must not break the section; the time targets
    are judged on the warm step and quote the first step beside it."""
    def row(version, batch, pairs, status="ok", peak=10.0, total=None, warm=None):
        r = {"version": version, "balance": "balanced", "batch": batch, "pairs": pairs,
             "status": status, "peak_mb": peak}
        if total is not None:
            r.update(forward_s=0.9 * total, backward_s=0.1 * total, total_s=total)
        if warm is not None:
            r["warm_total_s"] = warm
        return r
    rows = [row("dense", 128, 4096, peak=2205.0, total=278.0),
            row("dense", 2000, 10**6, status="skipped"),
            row("dense", 6325, 10**7, status="timeout", peak=900.0),
            row("ours", 128, 4096, peak=16.9, total=0.007, warm=0.007),
            row("ours", 2000, 10**6, peak=219.0, total=0.93, warm=0.37),
            row("ours", 6325, 10**7, peak=1846.0, total=10.2, warm=8.4),
            row("floor", 128, 4096, peak=11.4, total=0.001, warm=0.001),
            row("floor", 6325, 10**7, peak=210.0, total=0.28, warm=0.25)]
    body, verdicts, notes = report_sections.render_memory({"memory_lp": rows}, str(tmp_path))
    by = {v["target"]: v for v in verdicts}
    t6 = next(v for k, v in by.items() if k.startswith("1e+06 pairs"))
    t7 = next(v for k, v in by.items() if k.startswith("1e+07 pairs"))
    assert t6["ok"] is True and "0.37 s warm step" in t6["measured"] and "0.93 s" in t6["measured"]
    assert t7["ok"] is True and "8.40 s warm step" in t7["measured"]
    assert next(v for k, v in by.items() if "3x the floor" in k)["ok"] is False
    assert next(v for k, v in by.items() if "1000x" in k)["ok"] is False
    assert (tmp_path / "memory_lp_time.png").exists()


# ------------------------------------------------------------------ verdicts, as tables
nan = math.nan


@pytest.mark.parametrize("rule, args, word", [
    # (b) ResNet-18: memory against the dense port (a killed run is a lower bound) and
    # against cross-entropy, step time, backward share.
    (verdicts.dense_memory_ok, (13.0, False), "met"),
    (verdicts.dense_memory_ok, (10.0, False), "met"),
    (verdicts.dense_memory_ok, (6.7, False), "not met"),
    (verdicts.dense_memory_ok, (13.0, True), "met"),
    (verdicts.dense_memory_ok, (6.7, True), "not measured"),
    (verdicts.ce_memory_ok, (1.05,), "met"),
    (verdicts.ce_memory_ok, (1.06,), "not met"),
    (verdicts.step_time_ok, (1.1,), "met"),
    (verdicts.step_time_ok, (3.8,), "not met"),
    (verdicts.backward_ok, (0.2,), "met"),
    (verdicts.backward_ok, (0.25,), "not met"),
    # (d) reduction: CV choice over the pairs that reach 0.95, the IHS's best sketch.
    (verdicts.cv_choice_ok, (3, 3), "met"),
    (verdicts.cv_choice_ok, (2, 3), "not met"),
    (verdicts.cv_choice_ok, (0, 0), "not measured"),
    (verdicts.ihs_ok, ([False, True, None],), "met"),
    (verdicts.ihs_ok, ([False, None],), "not met"),
    # (e) Netlib and random LPs.
    (verdicts.netlib_solved_ok, (8, 10), "met"),
    (verdicts.netlib_solved_ok, (7, 10), "not met"),
    (verdicts.none_listed, ([],), "met"),
    (verdicts.none_listed, (["AFIRO"],), "not met"),
    (verdicts.random_lp_ok, (1e-7, 0.5), "met"),
    (verdicts.random_lp_ok, (2e-6, 0.1), "not met"),
    (verdicts.random_lp_ok, (1e-9, 0.6), "not met"),
    (verdicts.random_lp_ok, (nan, 0.1), "not measured"),
    (verdicts.random_lp_ok, (1e-9, nan), "not measured"),
    (verdicts.memory_ratio_ok, (10.0,), "met"),
    (verdicts.memory_ratio_ok, (12.5,), "not met"),
    # several verdicts in one
    (verdicts.all_met, ([True, True],), "met"),
    (verdicts.all_met, ([True, None, False],), "not met"),
    (verdicts.all_met, ([True, None],), "not measured"),
    (verdicts.all_met, ([],), "not measured"),
])
def test_verdict_rule_table(rule, args, word):
    assert verdicts.word(rule(*args)) == word


def _timing_rows(ours_s, ce_s, backward_s):
    return [{"loss": loss, "batch": 64, "size": 32, "repeats": 2, "status": "ok",
             "iteration_s": t, "loss_forward_s": 1e-3, "loss_backward_s": backward_s}
            for loss, t in (("ce", ce_s), ("ours", ours_s))]


@pytest.mark.parametrize("ours_s, backward_s, step_word, backward_word", [
    (1.05, 1e-4, "met", "met"),
    (1.20, 1e-4, "not met", "met"),
    (1.00, 5e-4, "met", "not met"),
])
def test_resnet_timing_verdicts(tmp_path, ours_s, backward_s, step_word, backward_word):
    _, found, _ = report_sections.render_resnet(
        {"resnet_timing": _timing_rows(ours_s, 1.0, backward_s)}, str(tmp_path))
    by = {v["target"].split()[1]: verdicts.word(v["ok"]) for v in found}
    assert by == {"step": step_word, "loss": backward_word}


def _timing_rows_with_spread():
    """Rows as time_losses writes them: the ratio of the medians (1.5) is not the median of
    the per-round ratios (1.05), which the verdict must use."""
    rows = []
    for loss, t, ratio in (("ce", 1.0, (1.0, 1.0, 1.0)), ("ours", 1.5, (0.98, 1.05, 1.12))):
        rows.append({"loss": loss, "batch": 64, "size": 32, "device": "cpu", "repeats": 7,
                     "status": "ok", "error": "", "iteration_s": t, "iteration_s_q25": 0.9 * t,
                     "iteration_s_q75": 1.2 * t, "iteration_cpu_s": 2.5 * t,
                     "loss_forward_s": 1e-3, "loss_backward_s": 1e-4, "ratio_to_ce_q25": ratio[0],
                     "ratio_to_ce": ratio[1], "ratio_to_ce_q75": ratio[2]})
    rows.append({"loss": "dense", "batch": 64, "size": 32, "device": "cpu", "repeats": 7,
                 "status": "unavailable", "error": "ImportError: no dense port"})
    return rows


def test_resnet_timing_shows_the_median_per_round_ratio_with_its_spread(tmp_path):
    from benchmarks.tables import write_csv

    write_csv(_timing_rows_with_spread(), str(tmp_path / "resnet_timing.csv"))
    rows = report.load_rows(str(tmp_path / "resnet_timing.csv"))  # as --from-csv reads them
    body, found, _ = report_sections.render_resnet({"resnet_timing": rows}, str(tmp_path))
    page = "\n".join(body)
    step = next(v for v in found if v["target"].startswith("our step time"))
    assert step["ok"] is True
    assert step["measured"].startswith("1.05x (0.98-1.12): median (IQR) of per-round ratios "
                                       "over 7 interleaved rounds")
    assert "CPU time 1.50x" in step["measured"]
    assert "1.05x (0.98-1.12)" in page and "1.00x (1.00-1.00)" in page
    assert "1.5 (1.35-1.8)" in page  # wall time with its range, CPU time beside it
    assert "<th>step CPU s, median</th>" in page and "<td>3.75</td>" in page
    assert "interquartile range" in page and "ImportError: no dense port" in page
    assert "written before" not in page


def test_resnet_timing_from_an_older_csv_renders_without_spread(tmp_path):
    old = [{k: r[k] for k in ("loss", "batch", "size", "device", "repeats", "status", "error",
                              "iteration_s", "loss_forward_s", "loss_backward_s")}
           for r in _timing_rows_with_spread()[:2]]
    body, found, _ = report_sections.render_resnet({"resnet_timing": old}, str(tmp_path))
    page = "\n".join(body)
    step = next(v for v in found if v["target"].startswith("our step time"))
    assert step["ok"] is False and step["measured"] == "1.50x: ratio of the median step times"
    assert "1.50x" in page and "1.50x (" not in page and "written before" in page


@pytest.mark.parametrize("met, word", [
    ([False, True], "met"), ([False, False], "not met"),
])
def test_ihs_verdict_from_rows(tmp_path, met, word):
    rows = [{"method": "exact", "m": 400, "n": 20, "nit_ratio": 1.0, "speedup": 1.0}]
    rows += [{"method": f"sketch{i}", "m": 400, "n": 20, "nit_ratio": 1.5, "speedup": 6.0 + i,
              "rel_err": 1e-9, "target_met": m} for i, m in enumerate(met)]
    _, found, _ = report_accuracy.render_tradeoff({"ihs": rows}, str(tmp_path))
    assert [verdicts.word(v["ok"]) for v in found] == [word]
    assert f"{sum(met)} of 2 sketches meet all" in found[0]["measured"]


def _netlib_row(name, kind, status, solved, nnz=500):
    return {"name": name, "kind": kind, "nnz": nnz, "status": int(status), "rel_err": 1e-9,
            "ours_s": 0.1, "highs_s": 0.01, "solved": solved}


@pytest.mark.parametrize("rows, words", [
    # 4 of 5 solved (80%), the fifth says iteration_limit; the infeasible one is detected.
    ([_netlib_row(f"P{i}", "feasible", Status.OPTIMAL, True) for i in range(4)]
     + [_netlib_row("P4", "feasible", Status.ITERATION_LIMIT, False),
        _netlib_row("I0", "infeasible", Status.INFEASIBLE, False)],
     ["met", "met", "met"]),
    # 3 of 5 solved, one of the others claims optimal; an infeasible one is called optimal.
    ([_netlib_row(f"P{i}", "feasible", Status.OPTIMAL, True) for i in range(3)]
     + [_netlib_row("P3", "feasible", Status.OPTIMAL, False),
        _netlib_row("P4", "feasible", Status.NUMERICAL_ERROR, False),
        _netlib_row("I0", "infeasible", Status.OPTIMAL, False)],
     ["not met", "not met", "not met"]),
    # problems above 1e4 nonzeros do not count towards the 80%.
    ([_netlib_row("P0", "feasible", Status.OPTIMAL, True),
      _netlib_row("BIG", "feasible", Status.ITERATION_LIMIT, False, nnz=20_000)],
     ["met", "met"]),
])
def test_netlib_verdicts_from_rows(tmp_path, rows, words):
    _, found, _ = report_accuracy.render_accuracy({"netlib": rows}, str(tmp_path))
    assert [verdicts.word(v["ok"]) for v in found] == words


@pytest.mark.parametrize("err, ratio, mem_ratio, words", [
    (1e-9, 0.3, 4.0, ["met", "met"]),
    (1e-5, 0.3, 12.0, ["not met", "not met"]),
    (1e-9, 0.8, None, ["not met"]),
    (None, 0.3, None, ["not measured"]),
])
def test_random_lp_verdicts_from_rows(tmp_path, err, ratio, mem_ratio, words):
    rows = [{"kind": "sparse", "m": m, "ours_s": 0.1, "highs_s": 0.3, "status": "optimal",
             "ours_rel_err": err, "time_ratio": ratio, "mem_ratio": mem_ratio}
            for m in (1000, 10_000)]
    _, found, _ = report_accuracy.render_accuracy({"random_lp": rows}, str(tmp_path))
    assert [verdicts.word(v["ok"]) for v in found] == words


def test_section_and_summary_show_the_same_words():
    items = [verdicts.verdict("t1", "m1", True), verdicts.verdict("t2", "m2", False),
             verdicts.verdict("t3", "m3", None)]
    sec = report_html.section("b", "title", "claim", [], items, [], [], 1.0)
    top = report_html.summary({"b": items})
    for ok, word in verdicts.WORDS.items():
        assert f"'>{word}</td>" in sec and f">{word}</td>" in top
        assert verdicts.css_class(ok) in sec


def test_engine_section_rules_and_render(tmp_path):
    """Section (h): the rules from given numbers, and a render of a few rows."""
    from benchmarks.report import engine_section as sec
    assert sec.loss_time_ok([0.05, 0.09], 0.1) and not sec.loss_time_ok([0.05, 0.2], 0.1)
    assert sec.loss_time_ok([], 0.1) is None and sec.loss_time_ok([math.nan], 0.1) is None
    assert sec.bytes_ok([2000.0]) and not sec.bytes_ok([2100.0]) and sec.bytes_ok([]) is None
    assert sec.batched_ok(1.0, 6.0, 2.0) and not sec.batched_ok(1.0, 4.0, 2.0)
    assert not sec.batched_ok(3.0, 60.0, 2.0)  # slower than HiGHS's forward
    assert sec.batched_ok(1.0, math.nan, 2.0) is None
    assert sec.batched_ok(3.0, math.nan, 2.0) is False
    assert sec.batched_ok(math.nan, 6.0, 2.0) is None
    loss_rows = [{"loss": loss, "dtype": "float32", "batch": b, "status": st, "time_s": t,
                  "peak_mib": 1.0, "bytes_per_sample": 1500.0}
                 for loss, b, st, t in (("fscore", 4096, "OPTIMAL", 0.05),
                                        ("fscore", 65536, "OPTIMAL", 1.0),
                                        ("precision-at-recall", 4096, "ITERATION_LIMIT", 0.3))]
    batched = [{"method": m, "batch": 128, "n": 100, "status": "ok", "forward_s": f,
                "backward_s": 0.1, "total_s": f + 0.1, "obj_err": 0.0, "fd_err": 1e-7}
               for m, f in (("ours", 1.0), ("highs", 4.0), ("cvxpylayers", 10.0))]
    body, verdicts, _ = sec.render_engine({"loss_scaling": loss_rows, "batched_lp": batched},
                                          str(tmp_path))
    ok = {v["target"]: v["ok"] for v in verdicts}
    assert ok["every solve of the coupled losses certified OPTIMAL"] is False
    assert ok["forward + backward <= 0.1 s at 4,096"] is False  # PaR 0.3 s
    assert ok["forward + backward <= 2 s at 65,536"] is True
    assert ok["peak memory <= 2 KiB a sample at 65,536"] is True
    assert [v for v in verdicts if v["target"].startswith("128 LPs")][0]["ok"] is True
    assert (tmp_path / "engine_losses.png").exists() and (tmp_path / "engine_batched.png").exists()
    body, verdicts, _ = sec.render_engine({}, str(tmp_path))
    assert body == [] and all(v["ok"] is None for v in verdicts)
