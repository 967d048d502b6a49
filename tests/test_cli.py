"""The ``sparselp`` command line and the LP file readers (MPS, Netlib .npz)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog as scipy_linprog

from benchmarks import cli
from benchmarks.lpfile import LPData, LPFileError, read_lp, read_mps, read_npz

NETLIB = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "netlib"
AFIRO = NETLIB / "feasible" / "AFIRO.npz"
needs_netlib = pytest.mark.skipif(not AFIRO.exists(), reason=f"Netlib data not found at {NETLIB}")

# A small LP exercising every section: a MAX objective with a constant, L/G/E rows, ranges on
# a G and an E row, and UP/LO/FR/MI/FX/BV bounds.
SMALL_MPS = """\
* comment line
NAME          SMALL
OBJSENSE
    MAX
ROWS
 N  obj
 L  lim1
 G  lim2
 E  myeqn
 G  rng
COLUMNS
    x1  obj  1.0  lim1  1.0
    x1  lim2  1.0
    MARKER  'MARKER'  'INTORG'
    x2  obj  2.0  lim1  1.0
    MARKER  'MARKER'  'INTEND'
    x2  myeqn  -1.0
    x3  obj  -1.0  myeqn  1.0
    x3  rng  1.0
    x4  obj  0.5  rng  1.0
    x5  obj  1.0  lim1  1.0
RHS
    RHS  obj  -3.0
    RHS  lim1  4.0  lim2  1.0
    RHS  myeqn  7.0
    RHS  rng  8.0
RANGES
    RNG  rng  2.5
BOUNDS
 UP BND  x1  4.0
 LO BND  x2  -1.0
 UP BND  x2  1.0
 MI BND  x3
 UP BND  x3  10
 FX BND  x4  0.75
 BV BND  x5
ENDATA
"""


def small_reference():
    """SMALL_MPS written out by hand in linprog form (minimising the negated objective)."""
    c = -np.array([1.0, 2.0, -1.0, 0.5, 1.0])
    A_ub = np.array([[1, 1, 0, 0, 1],      # lim1 <= 4
                     [-1, 0, 0, 0, 0],     # lim2 >= 1
                     [0, 0, 1, 1, 0],      # rng <= 8 + 2.5
                     [0, 0, -1, -1, 0]],   # rng >= 8
                    dtype=float)
    b_ub = np.array([4.0, -1.0, 10.5, -8.0])
    A_eq, b_eq = np.array([[0, -1.0, 1, 0, 0]]), np.array([7.0])
    bounds = [(0, 4), (-1, 1), (None, 10), (0.75, 0.75), (0, 1)]
    return c, A_ub, b_ub, A_eq, b_eq, bounds


def write_mps(d: LPData, path: Path) -> None:
    """Write ``d`` as free MPS (L rows and E rows only); a test helper for round trips."""
    A_ub, A_eq = sp.csc_array(d.A_ub), sp.csc_array(d.A_eq)
    lines = [f"NAME {d.name}", "ROWS", " N obj"]
    lines += [f" L u{i}" for i in range(A_ub.shape[0])] + [f" E e{i}" for i in range(A_eq.shape[0])]
    lines.append("COLUMNS")
    for j in range(d.n):
        if d.c[j]:
            lines.append(f" x{j} obj {float(d.c[j])!r}")
        for prefix, M in (("u", A_ub), ("e", A_eq)):
            col = M[:, [j]].tocoo()
            lines += [f" x{j} {prefix}{i} {float(v)!r}" for i, v in zip(col.row, col.data)]
    lines.append("RHS")
    lines += [f" RHS u{i} {float(v)!r}" for i, v in enumerate(d.b_ub)]
    lines += [f" RHS e{i} {float(v)!r}" for i, v in enumerate(d.b_eq)]
    lines.append("BOUNDS")
    for j, (lo, hi) in enumerate(zip(d.lb, d.ub)):
        if np.isinf(lo) and np.isinf(hi):
            lines.append(f" FR BND x{j}")
            continue
        if lo != 0:
            lines.append(f" MI BND x{j}" if np.isinf(lo) else f" LO BND x{j} {float(lo)!r}")
        if not np.isinf(hi):
            lines.append(f" UP BND x{j} {float(hi)!r}")
    lines.append("ENDATA")
    path.write_text("\n".join(lines) + "\n")


def test_read_mps_matches_hand_written_lp(tmp_path):
    f = tmp_path / "small.mps"
    f.write_text(SMALL_MPS)
    d = read_mps(f)
    c, A_ub, b_ub, A_eq, b_eq, bounds = small_reference()
    ref = scipy_linprog(c, A_ub, b_ub, A_eq, b_eq, bounds, method="highs")
    got = scipy_linprog(**d.linprog_args(), method="highs")
    assert ref.status == 0 and got.status == 0, (ref.message, got.message)
    assert got.fun == pytest.approx(ref.fun, abs=1e-9)
    # The file's own sense: MAX, with the constant +3 (RHS on the objective row is -3).
    assert d.objective(got.fun) == pytest.approx(-ref.fun + 3.0, abs=1e-9)
    assert d.sense == -1.0 and d.n == 5 and d.A_eq.shape == (1, 5)
    assert d.col_names == ["x1", "x2", "x3", "x4", "x5"]


@needs_netlib
def test_mps_round_trip_of_netlib_problem(tmp_path):
    d = read_npz(AFIRO)
    f = tmp_path / "afiro.mps"
    write_mps(d, f)
    back = read_lp(f)
    res = scipy_linprog(**back.linprog_args(), method="highs")
    assert res.status == 0, res.message
    assert res.fun == pytest.approx(-464.7531428571, rel=1e-9)


@pytest.mark.parametrize("text, match", [
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1\n", "no ENDATA"),
    ("NAME X\nROWS\n N obj\n Q r\nENDATA\n", "ROWS entries are 'TYPE NAME'"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x nope 1\nENDATA\n", "unknown row 'nope'"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj one\nENDATA\n", "expected a number, got 'one'"),
    ("NAME X\nROWS\n L r\nCOLUMNS\n x r 1\nENDATA\n", "no objective row"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1\nBOUNDS\n UP BND y 1\nENDATA\n",
     "unknown column 'y'"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1\nBOUNDS\n XX BND x 1\nENDATA\n",
     "unknown bound type 'XX'"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1\nBOUNDS\n LO BND x 2\n UP BND x 1\nENDATA\n",
     "lower bound 2.0 above its upper bound 1.0"),
    ("NAME X\nFOO\nENDATA\n", "unknown section 'FOO'"),
    (" x obj 1\n", "data before the first section header"),
])
def test_malformed_mps_is_a_clear_error(tmp_path, text, match):
    f = tmp_path / "bad.mps"
    f.write_text(text)
    with pytest.raises(LPFileError, match=match):
        read_mps(f)


def test_negative_upper_bound_follows_mps_convention(tmp_path):
    f = tmp_path / "neg.mps"
    f.write_text("NAME N\nROWS\n N obj\n G r\nCOLUMNS\n x obj 1 r 1\nRHS\n RHS r -5\n"
                 "BOUNDS\n UP BND x -2\nENDATA\n")
    with pytest.warns(UserWarning, match="negative UP bound"):
        d = read_mps(f)
    assert d.lb[0] == -np.inf and d.ub[0] == -2.0


def test_read_lp_rejects_missing_directory_and_extension(tmp_path):
    with pytest.raises(LPFileError, match="no such file"):
        read_lp(tmp_path / "none.mps")
    with pytest.raises(LPFileError, match="is a directory"):
        read_lp(tmp_path)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(LPFileError, match="unknown extension"):
        read_lp(tmp_path / "x.txt")


def test_malformed_npz_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "nokeys.npz", c=np.ones(3))
    with pytest.raises(LPFileError, match=r"missing key\(s\)"):
        read_npz(tmp_path / "nokeys.npz")
    np.savez(tmp_path / "shape.npz", c=np.ones(3), A_ub=np.ones(4), b_ub=np.ones(1),
             A_eq=np.zeros(0), b_eq=np.zeros(0))
    with pytest.raises(LPFileError, match="not a multiple of n = 3"):
        read_npz(tmp_path / "shape.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(LPFileError, match="not a readable .npz"):
        read_npz(tmp_path / "junk.npz")


def test_help_lists_commands_and_exit_codes(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for word in ("report", "bench", "solve", "exit codes", "malformed input file"):
        assert word in text
    assert cli.main(["solve", "--help"]) == 0
    assert "Netlib layout" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    assert cli.main([]) == 2
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["bench", "nosuch"]) == 2
    assert cli.main(["report", "--sections", "xyz"]) == 2
    assert "--sections takes letters from 'abcde'" in capsys.readouterr().err


def test_solve_missing_and_malformed_file_exit_2(tmp_path, capsys):
    assert cli.main(["solve", str(tmp_path / "nope.mps")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.mps"
    bad.write_text("NAME X\nROWS\n N obj\n")
    assert cli.main(["solve", str(bad)]) == 2
    assert "no ENDATA" in capsys.readouterr().err


def _printed_objective(text: str) -> float:
    line = next(l for l in text.splitlines() if l.startswith("objective"))
    return float(line.split()[1])


def test_solve_mps_prints_status_objective_residuals_time(tmp_path, capsys):
    f = tmp_path / "small.mps"
    f.write_text(SMALL_MPS)
    rc = cli.main(["solve", str(f), "--highs"])
    out = capsys.readouterr().out
    assert rc == 0, out
    c, A_ub, b_ub, A_eq, b_eq, bounds = small_reference()
    ref = scipy_linprog(c, A_ub, b_ub, A_eq, b_eq, bounds, method="highs")
    assert _printed_objective(out) == pytest.approx(-ref.fun + 3.0, rel=1e-6)
    for word in ("status    optimal", "residuals primal", "dual", "gap", "time", "highs"):
        assert word in out


@needs_netlib
def test_solve_netlib_npz(capsys):
    assert cli.main(["solve", str(AFIRO)]) == 0
    out = capsys.readouterr().out
    assert _printed_objective(out) == pytest.approx(-464.7531428571, rel=1e-6)


def test_solve_infeasible_exits_1(tmp_path, capsys):
    f = tmp_path / "inf.mps"  # x >= 0 and x <= -1
    f.write_text("NAME INF\nROWS\n N obj\n L r\nCOLUMNS\n x obj 1 r 1\nRHS\n RHS r -1\n"
                 "ENDATA\n")
    assert cli.main(["solve", str(f)]) == 1
    assert "infeasible" in capsys.readouterr().out


def test_bench_missing_module_exits_3(monkeypatch, capsys):
    monkeypatch.setitem(cli.BENCHMARKS, "memory", "benchmarks.no_such_module")
    assert cli.main(["bench", "memory"]) == 3
    assert "not available" in capsys.readouterr().err


def test_bench_passes_arguments_through(tmp_path):
    out = tmp_path / "rt.csv"
    rc = cli.main(["bench", "runtime", "--batches", "8", "--methods", "closed", "blackbox",
                   "--repeats", "1", "--out", str(out)])
    assert rc == 0
    text = out.read_text()
    assert text.startswith("method,batch,pairs,status") and "blackbox,8,16,ok" in text


def test_console_entry_runs_as_module():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cli", "solve", "/nonexistent.npz"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr


def test_report_command_writes_index(tmp_path, capsys):
    rc = cli.main(["report", "--quick", "--sections", "c", "--out", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    assert "report written to" in capsys.readouterr().out
    assert (tmp_path / "index.html").exists() and (tmp_path / "runtime.csv").exists()
