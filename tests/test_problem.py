"""Input cleaning: every bad input gets a clear error naming the argument."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sparselp import LinearProgram, linprog, solve

f64 = dict(dtype=torch.float64)


def ok():
    return torch.ones(3, **f64), torch.ones(4, 3, **f64), torch.ones(4, **f64)


def test_accepts_all_matrix_types_without_densifying():
    c, A, b = ok()
    for M in (A, A.to_sparse_coo(), A.to_sparse_csr(), sp.csr_matrix(A.numpy()),
              sp.coo_array(A.numpy()), A.numpy()):
        lp = LinearProgram(c, M, b)
        assert lp.m == 4 and lp.n == 3
    assert LinearProgram(c, A.to_sparse_csr(), b).A.is_sparse
    assert LinearProgram(c, sp.csr_matrix(A.numpy()), b).A.is_sparse


def test_wrong_shapes():
    c, A, b = ok()
    with pytest.raises(ValueError, match=r"A must have as many columns as c has entries: "
                                         r"expected 3 columns, got shape \(4, 2\)"):
        LinearProgram(c, torch.ones(4, 2, **f64), b)
    with pytest.raises(ValueError, match=r"b must have shape \(4,\) or \(1, 4\) to match A"):
        LinearProgram(c, A, torch.ones(5, **f64))
    with pytest.raises(ValueError, match=r"c must have shape \(n,\) or \(B, n\)"):
        LinearProgram(torch.ones(2, 2, 2, **f64), A, b)
    with pytest.raises(ValueError, match="A must have two dimensions"):
        LinearProgram(c, torch.ones(2, 2, 2, 3, **f64), b)
    with pytest.raises(ValueError, match="A and b must be given together"):
        LinearProgram(c, A)
    with pytest.raises(ValueError, match=r"lb must be a scalar or have shape \(3,\)"):
        LinearProgram(c, A, b, lb=torch.zeros(2, **f64))
    with pytest.raises(ValueError, match="A has batch size 2, but c has batch size 3"):
        LinearProgram(torch.ones(3, 3, **f64), torch.ones(2, 4, 3, **f64), b)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite(bad):
    c, A, b = ok()
    c2 = c.clone(); c2[0] = bad
    with pytest.raises(ValueError, match="c contains NaN or Inf"):
        LinearProgram(c2, A, b)
    A2 = A.clone(); A2[1, 1] = bad
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        LinearProgram(c, A2, b)
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        LinearProgram(c, A2.to_sparse(), b)
    with pytest.raises(ValueError, match="A_eq contains NaN or Inf"):
        LinearProgram(c, A_eq=A2, b_eq=b)


def test_nan_rhs_and_infinite_rhs():
    c, A, b = ok()
    b2 = b.clone(); b2[0] = float("nan")
    with pytest.raises(ValueError, match="b contains NaN or -Inf"):
        LinearProgram(c, A, b2)
    b2[0] = float("inf")  # documented: +inf switches the row off
    assert LinearProgram(c, A, b2).m == 4
    with pytest.raises(ValueError, match="b_eq contains Inf"):
        LinearProgram(c, A_eq=A, b_eq=b2)


def test_mixed_dtypes_and_devices():
    c, A, b = ok()
    with pytest.raises(TypeError, match="A has dtype torch.float32, but c has dtype torch.float64"):
        LinearProgram(c, A.float(), b)
    with pytest.raises(TypeError, match="b has dtype torch.float32, but c has dtype torch.float64"):
        LinearProgram(c, A, b.float())
    with pytest.raises(TypeError, match="c must be float32 or float64"):
        LinearProgram(c.half(), A.half(), b.half())
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="A is on device cuda"):
            LinearProgram(c, A.cuda(), b)
    else:
        with pytest.raises(ValueError, match="A is on device meta, but c is on cpu"):
            LinearProgram(c, A.to("meta"), b)


def test_empty_problem():
    with pytest.raises(ValueError, match="c must have at least one entry"):
        LinearProgram(torch.ones(0, **f64))
    with pytest.raises(ValueError, match="c must be given"):
        LinearProgram(None)
    with pytest.raises(ValueError, match="batch dimension of size 0"):
        LinearProgram(torch.ones(0, 3, **f64))


def test_bounds_crossed():
    c, A, b = ok()
    with pytest.raises(ValueError, match=r"lower bound above upper bound: lb\[1\] = 2 > ub\[1\] = 1"):
        LinearProgram(c, A, b, lb=torch.tensor([0.0, 2.0, 0.0], **f64), ub=1.0)



@pytest.mark.parametrize("bounds", [[(0, 1), (3, 2)], [(0, 1), (np.inf, np.inf)],
                                    [(-np.inf, -np.inf), (0, 1)]])
def test_linprog_reports_empty_bounds_as_infeasible_like_scipy(bounds):
    """linprog answers as scipy does (status 2), where LinearProgram raises (above)."""
    from scipy.optimize import linprog as highs
    res = linprog(np.ones(2), bounds=bounds)
    ref = highs(np.ones(2), bounds=bounds, method="highs")
    assert res.status == ref.status == 2 and not res.success
    assert res.x is None and res.fun is None and "hold no value" in res.message
    with pytest.raises(ValueError, match="c must be one-dimensional"):  # still checked
        linprog(np.ones((2, 2)), bounds=bounds)


def test_linprog_messages_follow_scipy():
    with pytest.raises(ValueError, match="A_ub must have exactly two dimensions, and the number "
                                         "of columns in A_ub must be equal to the size of c"):
        linprog(np.ones(3), A_ub=np.ones((2, 2)), b_ub=np.ones(2))
    with pytest.raises(ValueError, match=r"b_ub must have shape \(2,\)"):
        linprog(np.ones(2), A_ub=np.ones((2, 2)), b_ub=np.ones(3))
    with pytest.raises(ValueError, match="bounds must be one"):
        linprog(np.ones(3), bounds=[(0, 1), (0, 1)])


def test_solve_rejects_non_problem():
    with pytest.raises(TypeError, match="problem must be a LinearProgram"):
        solve({"c": 1})


def test_one_cleaner_for_problem_layer_and_linprog():
    """The layer and linprog reject what LinearProgram rejects, with the same message."""
    from sparselp.layer import lp_solve
    from sparselp.problem import clean_problem

    c, A, b = ok()
    b2 = b.clone(); b2[0] = float("nan")
    for build in (LinearProgram, lp_solve):
        with pytest.raises(ValueError, match="b contains NaN or -Inf"):
            build(c, A, b2)
        with pytest.raises(ValueError, match=r"lower bound above upper bound: lb\[0\] = 1"):
            build(c, A, b, lb=1.0, ub=torch.zeros(3, **f64))
    with pytest.raises(ValueError, match="b_ub contains NaN or -Inf"):
        linprog(np.ones(3), A_ub=np.ones((4, 3)), b_ub=b2.numpy())
    with pytest.raises(ValueError, match="A_ub and b_ub must be given together"):
        clean_problem(c, A, names={"A": "A_ub", "b": "b_ub"})
    # The batch may come from any of the layer's arguments; disagreement names both sides.
    with pytest.raises(ValueError, match="batch sizes of the arguments disagree: b has "
                                         "batch size 3, but c has batch size 2"):
        lp_solve(c.expand(2, 3), A, b.expand(3, 4))
