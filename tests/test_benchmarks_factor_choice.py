"""Small version of benchmarks/factor_choice.py: the Newton systems of one Netlib solve,
replayed through the LDL^T analysed once and through SuperLU."""
from __future__ import annotations

import math
import sys

import pytest

from benchmarks import factor_choice
from benchmarks.cli import BENCHMARKS
from sparselp.factor import have_qdldl


@pytest.mark.skipif(not have_qdldl(), reason="qdldl not installed")
def test_replay_of_one_solve(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cholespy", None)  # an absent package is a NaN column
    monkeypatch.setattr(factor_choice, "DENSE_REPLAY_FLOPS", 0.0)  # replayed here too
    out = tmp_path / "fc.csv"
    rows = factor_choice.main(["--names", "AFIRO", "SC50A", "--out", str(out)])
    assert [r["name"] for r in rows] == ["AFIRO", "SC50A"] and out.exists()
    for r in rows:
        assert r["steps"] > 5 and r["auto"] == "ldl" and 0 < r["ldl_flops"] < 1e5
        # both direct solves solve the recorded systems (to the conditioning of the last
        # ALM steps, sigma ~ 1e10: a wrong factor would leave residuals of order one)
        assert r["ldl_res"] < 1e-4 and r["scipy_res"] < 1e-4 and r["dense-side_res"] < 1e-4
        assert r["ldl_s"] > 0 and r["scipy_s"] > 0 and r["dense-side_s"] > 0
        assert math.isnan(r["cholespy_s"])
    assert BENCHMARKS["factor-choice"] == "benchmarks.factor_choice"
