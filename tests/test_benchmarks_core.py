"""Small versions of the core benchmarks, so that they never rot."""
import csv

from benchmarks import netlib, random_lp


def test_netlib_quick(tmp_path):
    out = tmp_path / "netlib.csv"
    rows = netlib.main(["--quick", "--names", "AFIRO", "SC50A", "galenet", "itest6",
                        "--out", str(out)])
    assert {r["name"] for r in rows} == {"AFIRO", "SC50A", "galenet", "itest6"}
    s = netlib.summarize(rows)
    assert s["solved"] == s["feasible"] == 2
    assert s["infeasible_reported_optimal"] == []
    assert len(list(csv.DictReader(open(out)))) == 4


def test_random_lp_quick(tmp_path):
    out = tmp_path / "random_lp.csv"
    rows = random_lp.main(["--sizes", "3000", "--out", str(out)])
    assert [r["kind"] for r in rows] == ["dense", "sparse"]
    for r in rows:
        assert r["status"] == "OPTIMAL" and r["ours_rel_err"] < 1e-6
        assert r["highs_status"] == 0
    assert rows[1]["mem_ratio"] > 0  # measured in a subprocess
    assert len(list(csv.DictReader(open(out)))) == 2
