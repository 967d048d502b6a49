"""benchmarks/fuzz_lp.py in small: every family, both dtypes, against HiGHS."""
import numpy as np
import pytest
from scipy.optimize import linprog as highs

from benchmarks import fuzz_lp


def test_quick_fuzz_has_no_false_optimal_and_float64_agrees(tmp_path):
    rows = fuzz_lp.main(["--quick", "--out", str(tmp_path / "fuzz.csv")])
    assert len(rows) == 36 and {r["family"] for r in rows} == set(fuzz_lp.FAMILIES)
    assert not [r for r in rows if r["false_optimal"]]
    f64 = [r for r in rows if r["dtype"] == "float64"]
    assert f64 and all(r["agree"] for r in f64), [r for r in f64 if not r["agree"]]
    total = fuzz_lp.summarise(rows)[-1]
    assert total["family"] == "all" and total["lps"] == 36


@pytest.mark.parametrize("family,status", [("dense", 0), ("infeasible", 2),
                                           ("unbounded", 3), ("empty_rows", 0),
                                           ("fixed_free", 0), ("equality", 0)])
def test_families_are_what_they_say(family, status):
    for seed in range(5):
        assert highs(method="highs", **fuzz_lp.make_lp(family, seed)).status == status


def test_false_optimal_is_detected():
    """A wrong answer must count: feed check_one's rule an x that violates a row."""
    lp = fuzz_lp.make_lp("dense", 0)
    x = np.full(len(lp["c"]), 2.0)  # outside the box [0, 1]
    assert fuzz_lp._primal_residual(lp, x) > 0.1
    with pytest.raises(ValueError, match="family"):
        fuzz_lp.make_lp("nonsense", 0)


def test_a_disagreement_is_excused_only_by_our_certificate():
    """The badly scaled LP on which HiGHS's vertex violates a row: our duals prove our
    answer optimal, so it is not counted; zero duals prove nothing."""
    from types import SimpleNamespace as NS
    row = fuzz_lp.check_one("badly_scaled", 993, "float64")
    assert row["agree"] and not row["false_optimal"] and "ours certified" in row["why"]
    lp = fuzz_lp.make_lp("dense", 1)
    ref = highs(method="highs", **lp)
    m, n = len(lp["b_ub"]), len(lp["c"])
    fake = NS(x=ref.x, ineqlin=NS(marginals=np.zeros(m)), eqlin=NS(marginals=np.zeros(0)),
              lower=NS(marginals=np.zeros(n)), upper=NS(marginals=np.zeros(n)))
    dual_res, gap = fuzz_lp._certificate(lp, fake, 1e-8, False)
    assert dual_res > 1e-3
    # Term-scaled (float32's certificate) zero duals prove nothing either: no terms.
    assert fuzz_lp._certificate(lp, fake, 1e-5, True)[0] > 1e-3
    good = NS(x=ref.x, ineqlin=ref.ineqlin, eqlin=NS(marginals=np.zeros(0)),
              lower=ref.lower, upper=ref.upper)
    assert max(fuzz_lp._certificate(lp, good, 1e-8, False)) < 1e-8
