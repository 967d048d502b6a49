"""benchmarks/scale.py (``sparselp bench scale``) in small, and the rules of section (g)."""
import math

from benchmarks import scale
from benchmarks.report import scale_section as sec


def test_scale_quick_planner_and_refusal(tmp_path):
    out = tmp_path / "scale.csv"
    rows = scale.main(["--quick", "--parts", "planner,refusal", "--out", str(out)])
    assert out.exists()
    plan_rows = [r for r in rows if r["part"] == "planner"]
    assert len(plan_rows) == len(scale.QUICK_GRID)
    for r in plan_rows:
        assert r["status"] == "ok"
    # The interpreter's first-call cost C0 depends on the environment (16 MiB in one
    # checkout, 26 MiB in a fresh clone of the same code on the same machine): take this
    # environment's from the tiniest configuration (64 samples, 1,024 pairs: nothing but
    # C0) and hold the model's own part to the planner's target, 25%.
    from sparselp.memory_model import C0
    tiny = plan_rows[0]
    assert tiny["batch"] == 64
    c0_here = tiny["measured_mb"] - (tiny["predicted_mb"] - C0 / 2**20)
    assert 5 < c0_here < 40, c0_here
    for r in plan_rows[1:]:
        pred = r["predicted_mb"] - C0 / 2**20 + c0_here
        assert 0.75 <= pred / r["measured_mb"] <= 1.25, (r, c0_here)
    ref = [r for r in rows if r["part"] == "refusal"][0]
    assert ref["status"] == "refused" and ref["measured_mb"] < 50


def test_section_rules():
    assert sec.planner_ok([0.8, 1.2]) and not sec.planner_ok([0.8, 1.3])
    assert sec.planner_ok([]) is None
    assert sec.chunked_ok(400, 25) and not sec.chunked_ok(400, 31)
    assert not sec.chunked_ok(600, 10) and sec.chunked_ok(math.nan, 1) is None
    assert sec.floor_ok(1.4) and not sec.floor_ok(1.6) and sec.floor_ok(math.nan) is None
    assert sec.refusal_ok(20) and not sec.refusal_ok(60)
    assert sec.sharding_ok([1.1, 0.85]) and not sec.sharding_ok([1.3])


def test_section_renders_rows_and_says_what_is_missing(tmp_path):
    rows = [
        {"part": "planner", "loss": "auc", "batch": 1000, "status": "ok",
         "predicted_mb": 80.0, "measured_mb": 78.0, "ratio": 80 / 78},
        {"part": "chunked", "loss": "auc", "batch": 20000, "pairs": 1e8, "status": "ok",
         "block_size": 250000, "measured_mb": 95.0, "total_s": 36.0},
        {"part": "refusal", "loss": "multiclass-auc", "batch": 10**6, "status": "refused",
         "measured_mb": 12.0},
        {"part": "strong x1", "loss": "auc", "batch": 6325, "status": "ok",
         "measured_mb": 1000.0},
        {"part": "strong x2", "loss": "auc", "batch": 6325, "status": "ok",
         "measured_mb": 520.0}]
    body, verdicts, notes = sec.render_scale({"scale": rows}, str(tmp_path))
    by = {v["target"].split(":")[0].split(" (")[0]: v for v in verdicts}
    ok = {k: v["ok"] for k, v in by.items()}
    assert ok["planner within 25% of the measured peak, every configuration"] is True
    chunk = [v for v in verdicts if v["target"].startswith("chunked AUCLoss")][0]
    assert chunk["ok"] is False and "36.0 s" in chunk["measured"]  # 36 s > 30 s
    assert [v for v in verdicts if "refused" in v["target"]][0]["ok"] is True
    assert [v for v in verdicts if "1/world" in v["target"]][0]["measured"] == "1.04"
    assert (tmp_path / "scale_planner.png").exists()
    body, verdicts, notes = sec.render_scale({}, str(tmp_path))
    assert verdicts[0]["ok"] is None and "missing" in verdicts[0]["measured"]
