"""Small real problems from the Netlib set (../shared/data/netlib) against HiGHS."""
import pytest

from benchmarks.netlib_data import load_index, load_problem, netlib_root
from sparselp import linprog

try:
    ROOT = netlib_root()
    INDEX = {r["name"]: r for r in load_index(ROOT)}
except FileNotFoundError as e:  # pragma: no cover - the data ships beside the repo
    ROOT, INDEX = None, {}
    REASON = str(e)

pytestmark = pytest.mark.skipif(ROOT is None, reason="Netlib data folder not found")

SMALL_FEASIBLE = ["AFIRO", "SC50A", "SC105", "ADLITTLE", "BLEND", "SHARE2B", "SC205"]
SMALL_INFEASIBLE = ["galenet", "itest6", "bgprtr", "forest6", "ex73a", "box1"]


@pytest.mark.parametrize("name", SMALL_FEASIBLE)
def test_feasible_small(name):
    row = INDEX[name]
    p = load_problem(ROOT / "feasible" / f"{name}.npz")
    p.pop("obj")
    res = linprog(**p)
    ref = float(row["highs_objective"])
    err = abs(res.fun - ref) / max(1.0, abs(ref))
    assert res.status == 0, res.message
    assert err <= 1e-6, f"{name}: objective {res.fun} vs HiGHS {ref} (rel err {err:.1e})"
    assert res.primal_residual <= 1e-6


@pytest.mark.parametrize("name", SMALL_INFEASIBLE)
def test_infeasible_never_optimal(name):
    if name not in INDEX:
        pytest.skip(f"{name} not in this copy of the Netlib set")
    p = load_problem(ROOT / "infeasible" / f"{name}.npz")
    p.pop("obj")
    res = linprog(**p, options={"max_iter": 1500})
    assert res.status != 0, f"{name} is infeasible but was reported optimal"
