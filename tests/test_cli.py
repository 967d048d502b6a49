"""The ``sparselp`` command line (the LP file readers: tests/test_io.py)."""
from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace

import pytest
from scipy.optimize import linprog as scipy_linprog
from test_io import AFIRO, SMALL_MPS, needs_netlib, small_reference

import sparselp.cli
from benchmarks import cli
from sparselp import Status

UNBOUNDED_MPS = ("NAME U\nROWS\n N obj\n L r\nCOLUMNS\n x obj -1 r 1\n y r -1\nRHS\n RHS r 1\n"
                 "ENDATA\n")  # min -x s.t. x - y <= 1, x, y >= 0: x = y -> inf
INFEASIBLE_MPS = ("NAME INF\nROWS\n N obj\n L r\nCOLUMNS\n x obj 1 r 1\nRHS\n RHS r -1\n"
                  "ENDATA\n")  # x >= 0 and x <= -1


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
    assert "--sections takes letters from 'abcdefgh'" in capsys.readouterr().err


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
    f = tmp_path / "inf.mps"
    f.write_text(INFEASIBLE_MPS)
    assert cli.main(["solve", str(f)]) == 1
    assert "infeasible" in capsys.readouterr().out


def _fake_result(status: Status, fun: float):
    """What ``linprog`` returns, reduced to the fields ``sparselp solve`` prints."""
    return SimpleNamespace(status=int(status), fun=fun, message="fake", primal_residual=0.0,
                           dual_residual=0.0, gap=0.0, nit=3)


@pytest.mark.parametrize("main", [cli.main, sparselp.cli.main], ids=["sparselp", "library"])
@pytest.mark.parametrize("status, fun, code", [
    (Status.OPTIMAL, 1.5, 0),
    (Status.OPTIMAL, math.nan, 1),        # optimal without a finite objective is not success
    (Status.OPTIMAL, math.inf, 1),
    (Status.ITERATION_LIMIT, 1.5, 1),
    (Status.INFEASIBLE, math.nan, 1),
    (Status.UNBOUNDED, -math.inf, 1),
    (Status.NUMERICAL_ERROR, math.nan, 1),
])
def test_solve_exit_code_of_each_status(tmp_path, capsys, monkeypatch, main, status, fun, code):
    f = tmp_path / "small.mps"
    f.write_text(SMALL_MPS)
    monkeypatch.setattr(sparselp.cli, "linprog", lambda **kw: _fake_result(status, fun))
    assert main(["solve", str(f)]) == code
    assert f"status    {status.name.lower()} (fake)" in capsys.readouterr().out


@pytest.mark.parametrize("text, args, code, word", [
    (SMALL_MPS, [], 0, "status    optimal"),
    (SMALL_MPS, ["--max-iter", "1"], 1, "status    iteration_limit"),
    (INFEASIBLE_MPS, [], 1, "status    infeasible"),
    (UNBOUNDED_MPS, [], 1, "status    unbounded"),
    (SMALL_MPS, ["--linear-solver", "bogus"], 2, "linear_solver must be"),
    (SMALL_MPS, ["--tol", "-1"], 2, "tol must be in (0, 1)"),
    ("NAME X\nROWS\n N obj\n", [], 2, "no ENDATA"),
])
def test_solve_exit_codes_of_real_solves(tmp_path, capsys, text, args, code, word):
    f = tmp_path / "lp.mps"
    f.write_text(text)
    assert cli.main(["solve", str(f), *args]) == code
    captured = capsys.readouterr()
    assert word in captured.out + captured.err


@pytest.mark.parametrize("argv, code", [
    ([], 2), (["frobnicate"], 2), (["solve"], 2), (["solve", "/nonexistent.mps"], 2),
    (["bench", "nosuch"], 2), (["report", "--sections", ""], 2), (["--help"], 0),
])
def test_usage_exit_codes(argv, code):
    assert cli.main(argv) == code


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


# A generous timeout: the child imports torch, which takes seconds on a loaded machine.
@pytest.mark.parametrize("module", ["benchmarks.cli", "sparselp.cli"])
def test_console_entry_runs_as_module(module):
    proc = subprocess.run([sys.executable, "-m", module, "solve", "/nonexistent.npz"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr


def test_report_command_writes_index(tmp_path, capsys):
    rc = cli.main(["report", "--quick", "--sections", "c", "--out", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    assert "report written to" in capsys.readouterr().out
    assert (tmp_path / "index.html").exists() and (tmp_path / "runtime.csv").exists()
