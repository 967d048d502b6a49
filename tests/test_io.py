"""LP files (``sparselp.io``): the MPS reader and writer, the Netlib ``.npz`` reader."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog as scipy_linprog

from sparselp.io import LPData, LPFileError, read_lp, read_mps, read_npz, write_mps

NETLIB = Path(os.environ.get("SPARSELP_NETLIB")
              or Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "netlib")
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


# Each message names the file, and where a line is at fault its number and section.
@pytest.mark.parametrize("text, match", [
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1\n", r"bad\.mps: no ENDATA"),
    ("NAME X\nROWS\n N obj\n Q r\nENDATA\n", r"bad\.mps:4: ROWS: ROWS entries are 'TYPE NAME'"),
    ("NAME X\nROWS\n N obj\n N obj\nENDATA\n", r"bad\.mps:4: ROWS: row 'obj' defined twice"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x nope 1\nENDATA\n",
     r"bad\.mps:5: COLUMNS: column 'x' refers to unknown row 'nope'"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj one\nENDATA\n",
     r"bad\.mps:5: COLUMNS: expected a number, got 'one'"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj nan\nENDATA\n",
     r"bad\.mps:5: COLUMNS: NaN is not a valid coefficient"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1 obj\nENDATA\n",
     r"bad\.mps:5: COLUMNS: COLUMNS entries are 'COLUMN ROW VALUE"),
    ("NAME X\nROWS\n N obj\n L r\nCOLUMNS\n x obj 1\nRHS\n RHS q 1\nENDATA\n",
     r"bad\.mps:8: RHS: RHS refers to unknown row 'q'"),
    ("NAME X\nROWS\n N obj\n L r\nCOLUMNS\n x obj 1\nRANGES\n RNG r 1 r 2 x\nENDATA\n",
     r"bad\.mps:8: RANGES: RANGES entries are '\[SET\] ROW VALUE"),
    ("NAME X\nROWS\n L r\nCOLUMNS\n x r 1\nENDATA\n", "ROWS: no objective row"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\nENDATA\n", "COLUMNS: no COLUMNS entries"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1\nBOUNDS\n UP BND y 1\nENDATA\n",
     r"bad\.mps:7: BOUNDS: bound on unknown column 'y'"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1\nBOUNDS\n XX BND x 1\nENDATA\n",
     r"bad\.mps:7: BOUNDS: unknown bound type 'XX'"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1\nBOUNDS\n UP BND x 1 2\nENDATA\n",
     r"bad\.mps:7: BOUNDS: BOUNDS entry 'UP BND x 1 2' has the wrong number of fields"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1\nBOUNDS\n SC BND x 1\nENDATA\n",
     r"bad\.mps:7: BOUNDS: semi-continuous bounds \(SC\) are not LP"),
    ("NAME X\nROWS\n N obj\nCOLUMNS\n x obj 1\nBOUNDS\n LO BND x 2\n UP BND x 1\nENDATA\n",
     "BOUNDS: column 'x' has lower bound 2.0 above its upper bound 1.0"),
    ("NAME X\nFOO\nENDATA\n", r"bad\.mps:2: unknown section 'FOO'"),
    (" x obj 1\n", r"bad\.mps:1: data before the first section header"),
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


def test_non_ascii_mps_is_a_clear_error(tmp_path):
    f = tmp_path / "bad.mps"
    f.write_bytes("NAME Ä\nENDATA\n".encode("latin-1"))
    with pytest.raises(LPFileError, match="not a text MPS file"):
        read_mps(f)


def rich_lp() -> LPData:
    """An LP with every kind of row and bound the writer must carry: inequality and
    equality rows (one of them all zero), free, fixed, upper-only, lower-only, boxed and
    default bounds (a negative upper-only bound among them), negative and zero costs and
    coefficients, a column with no constraint entry, a MAX sense and a constant."""
    A_ub = np.array([[1.0, -2.0, 0.0, 0.5, 0.0, 0.0, 0.0],
                     [0.0, 3.0, -1.0, 0.0, 1.0, 0.0, 0.0],
                     [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                     [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.25]])
    b_ub = np.array([4.0, 5.0, 1.0, -0.5])
    A_eq = np.array([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                     [0.0, -1.0, 0.0, 2.0, 0.0, 0.0, 0.0]])
    b_eq = np.array([2.0, -1.0 / 3.0])
    inf = np.inf
    #        free  fixed upper-only lower-only boxed default no-rows (boxed)
    lb = np.array([-inf, 0.75, -inf, -2.5, -1.0, 0.0, 0.0])
    ub = np.array([inf, 0.75, -0.125, inf, 3.0, inf, 7.0])
    c = np.array([0.1, -1.0, 0.0, 2.0, -3.5, 0.0, 1e-17])
    return LPData("RICH", c, sp.csr_array(A_ub), b_ub, sp.csr_array(A_eq), b_eq, lb, ub,
                  offset=-2.75, col_names=[f"v{j}" for j in range(7)], sense=-1.0)


def test_mps_round_trip_is_exact(tmp_path):
    lp = rich_lp()
    f = tmp_path / "rich.mps"
    write_mps(lp, f)
    back = read_lp(f)
    for key in ("c", "b_ub", "b_eq", "lb", "ub"):
        np.testing.assert_array_equal(getattr(back, key), getattr(lp, key), err_msg=key)
    for key in ("A_ub", "A_eq"):
        assert getattr(back, key).shape == getattr(lp, key).shape, key
        np.testing.assert_array_equal(getattr(back, key).toarray(), getattr(lp, key).toarray(),
                                      err_msg=key)
    assert (back.name, back.offset, back.sense, back.col_names) == \
        (lp.name, lp.offset, lp.sense, lp.col_names)
    ref = scipy_linprog(**lp.linprog_args(), method="highs")
    got = scipy_linprog(**back.linprog_args(), method="highs")
    assert ref.status == 0 and got.status == 0, (ref.message, got.message)
    assert got.fun == ref.fun and back.objective(got.fun) == lp.objective(ref.fun)
    np.testing.assert_array_equal(got.x, ref.x)


def test_mps_round_trip_of_the_hand_written_lp(tmp_path):
    """The reader's own output, written and read again, is unchanged (ranges included)."""
    f = tmp_path / "small.mps"
    f.write_text(SMALL_MPS)
    first = read_mps(f)
    write_mps(first, tmp_path / "again.mps")
    second = read_mps(tmp_path / "again.mps")
    for key in ("c", "b_ub", "b_eq", "lb", "ub", "offset", "sense"):
        np.testing.assert_array_equal(getattr(second, key), getattr(first, key), err_msg=key)
    np.testing.assert_array_equal(second.A_ub.toarray(), first.A_ub.toarray())
    np.testing.assert_array_equal(second.A_eq.toarray(), first.A_eq.toarray())


def test_write_mps_invents_names_where_the_lps_cannot_stand_in_mps(tmp_path):
    lp = rich_lp()
    lp.col_names = ["a b"] + [f"v{j}" for j in range(1, 7)]  # a space: not an MPS name
    write_mps(lp, tmp_path / "x.mps")
    assert read_mps(tmp_path / "x.mps").col_names == [f"x{j}" for j in range(7)]


@pytest.mark.parametrize("change, match", [
    (lambda lp: lp.lb.__setitem__(1, 1.0), "bounds \\(1.0, 0.75\\) do not define an interval"),
    (lambda lp: lp.ub.__setitem__(0, -np.inf), "do not define an interval"),
    (lambda lp: lp.b_ub.__setitem__(0, np.nan), "NaN in c, b_ub, b_eq, A_ub or A_eq"),
])
def test_write_mps_rejects_what_no_mps_file_reads_back_to(tmp_path, change, match):
    lp = rich_lp()
    change(lp)
    with pytest.raises(ValueError, match=match):
        write_mps(lp, tmp_path / "x.mps")
