"""The accuracy-versus-reduction benchmark runs in --quick mode and writes CSV and plots."""
import csv
import math
import os

from benchmarks import tradeoff


def test_tradeoff_quick(tmp_path):
    out = tmp_path / "tradeoff.csv"
    rows = tradeoff.main(["--quick", "--out", str(out)])
    with open(out) as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) > 0
    assert set(tradeoff.COLUMNS) <= set(table[0])
    datasets = {r["dataset"] for r in rows}
    assert {"random_dense", "breast_cancer_precision_at_recall"} <= datasets
    for ds in datasets:
        assert os.path.getsize(tmp_path / f"tradeoff_{ds}.png") > 1000
    grid = tradeoff.QUICK_GRID
    for r in rows:
        assert r["cv_choice"] in grid or r["cv_choice"] is None
        assert r["smallest_ok"] in grid or r["smallest_ok"] is None
        # A reduced LP may lose feasibility or boundedness (a finding of the study), but
        # no solve may fail; failures are counted over the quick mode's 2 minibatches.
        statuses = set(r["status"].split("/"))
        assert statuses <= {"optimal", "unbounded", "infeasible"}, r["status"]
        assert (r["n_failed"] == 0) == (statuses == {"optimal"})
        assert (r["n_failed"] == 2) == ("optimal" not in statuses)
        if "optimal" in statuses:
            assert -1 - 1e-12 <= r["grad_cos"] <= 1 + 1e-12 and r["obj_rel_err"] >= 0
        else:  # no optimal reduced LP: cosine counted as 0, no error to average
            assert r["grad_cos"] == 0 and math.isnan(r["obj_rel_err"])
        assert r["bytes_reduced"] > 0 and r["time_reduced"] > 0
    # With one group per sample the SDR projection permutes the rows: nothing is lost.
    exact = [r for r in rows if r["projection"] == "SDR-SIR" and r["grid_ratio"] == 1.0]
    assert exact and all(math.isclose(r["grad_cos"], 1.0, abs_tol=1e-6) for r in exact)
    assert all(r["obj_rel_err"] < 1e-6 for r in exact)
