"""Small real problems from the Netlib set (benchmarks/data/netlib, shipped in the
repository; ``$SPARSELP_NETLIB`` points at another copy) against HiGHS."""
import pytest

from benchmarks.netlib_data import load_index, load_problem, netlib_root
from sparselp import Status, linprog

ROOT = netlib_root()  # the in-repo copy always exists: a missing one is a failure, not a skip
INDEX = {r["name"]: r for r in load_index(ROOT)}

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
def test_infeasible_detected(name):
    assert INDEX[name]["highs_status"] == "infeasible"
    p = load_problem(ROOT / "infeasible" / f"{name}.npz")
    p.pop("obj")
    res = linprog(**p, options={"max_iter": 1500})
    assert res.status == Status.INFEASIBLE, f"{name}: status {res.status} ({res.message})"


def _dense_layout_copy(src, dst):
    """``src`` written in SciPy's dense layout (dense matrices, object bounds with None)."""
    import numpy as np

    from benchmarks.netlib_data import read_arrays
    a = read_arrays(src)
    bounds = np.array([[None if np.isinf(lo) else lo, None if np.isinf(hi) else hi]
                       for lo, hi in zip(a["lb"], a["ub"])], dtype=object)
    np.savez(dst, c=a["c"], A_ub=a["A_ub"].toarray(), b_ub=a["b_ub"], A_eq=a["A_eq"].toarray(),
             b_eq=a["b_eq"], bounds=bounds[None], obj=np.float64(a["obj"]))


def test_other_copy_in_either_layout(tmp_path, monkeypatch):
    """$SPARSELP_NETLIB wins over the in-repo copy; SciPy's dense files load the same."""
    import numpy as np

    # VTP-BASE has a free, a bounded and a default variable: every case of the bounds.
    (tmp_path / "feasible").mkdir()
    (tmp_path / "index.csv").write_text("name,kind,nnz\nVTP-BASE,feasible,908\n")
    _dense_layout_copy(ROOT / "feasible" / "VTP-BASE.npz", tmp_path / "feasible" / "VTP-BASE.npz")
    monkeypatch.setenv("SPARSELP_NETLIB", str(tmp_path))
    assert netlib_root() == tmp_path
    assert [r["name"] for r in load_index()] == ["VTP-BASE"]
    got = load_problem(tmp_path / "feasible" / "VTP-BASE.npz")
    want = load_problem(ROOT / "feasible" / "VTP-BASE.npz")
    assert got["bounds"] == want["bounds"]
    assert {(lo is None, hi is None) for lo, hi in want["bounds"]} >= {(True, True), (False, False),
                                                                      (False, True)}
    for key in ("A_ub", "A_eq"):
        assert (got[key] != want[key]).nnz == 0 and got[key].shape == want[key].shape
    for key in ("c", "b_ub", "b_eq", "obj"):
        np.testing.assert_array_equal(got[key], want[key])


def test_in_repo_files_load_without_pickle():
    import numpy as np

    from benchmarks.netlib_data import DATA
    index = load_index(DATA)
    assert len(index) == 80 and sum(r["kind"] == "infeasible" for r in index) == 19
    for r in index:
        with np.load(DATA / r["kind"] / f"{r['name']}.npz") as d:  # allow_pickle=False
            assert all(d[k].dtype != object for k in d.files)


def test_missing_copy_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSELP_NETLIB", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="SPARSELP_NETLIB"):
        netlib_root()


def test_malformed_sparse_file_is_a_clear_error(tmp_path):
    import numpy as np

    from sparselp.io import LPFileError, read_lp
    from benchmarks.netlib_data import read_arrays, write_sparse
    a = read_arrays(ROOT / "infeasible" / "galenet.npz")
    write_sparse(tmp_path / "ok.npz", a)
    assert read_lp(tmp_path / "ok.npz").A_ub.shape == a["A_ub"].shape == (6, 8)
    with np.load(tmp_path / "ok.npz") as d:
        arrays = dict(d)
    np.savez(tmp_path / "shape.npz", **{**arrays, "b_ub": np.ones(5)})
    with pytest.raises(LPFileError, match=r"shape.npz: A_ub_shape is \(6, 8\), expected \(5, 8\)"):
        read_lp(tmp_path / "shape.npz")
    np.savez(tmp_path / "csr.npz", **{**arrays, "A_eq_indices": arrays["A_eq_indices"] + 8})
    with pytest.raises(LPFileError, match="csr.npz: A_eq is not a valid CSR matrix"):
        read_lp(tmp_path / "csr.npz")
    np.savez(tmp_path / "keys.npz", **{k: v for k, v in arrays.items() if k != "lb"})
    with pytest.raises(LPFileError, match=r"missing key\(s\) \['lb'\]"):
        read_lp(tmp_path / "keys.npz")


def test_pilot_we_solved_once_hard_inner_solves_shorten_the_proximal_step(monkeypatch):
    """PILOT-WE's inner solves run out of Newton steps; growing sigma and tau there made
    the outer loop diverge (residuals to 1e4, not solved in 60 s). The elements whose
    inner solve ran out keep sigma and take a shorter proximal step (about 8 s here)."""
    from sparselp.schedule import ALMSchedule
    shortened = []
    update = ALMSchedule.update

    def spy(self, sigma, tau, res, unfinished=None, shorten=False):
        shortened.append(bool(shorten and unfinished is not None and unfinished.any()))
        return update(self, sigma, tau, res, unfinished, shorten)
    monkeypatch.setattr(ALMSchedule, "update", spy)
    p = load_problem(ROOT / "feasible" / "PILOT-WE.npz")
    p.pop("obj")
    res = linprog(**p, options={"time_limit": 120.0, "max_iter": 20_000})
    ref = float(INDEX["PILOT-WE"]["highs_objective"])
    assert res.status == 0, res.message
    assert abs(res.fun - ref) / max(1.0, abs(ref)) <= 1e-6
    assert res.primal_residual <= 1e-6
    assert any(shortened)
