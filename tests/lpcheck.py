"""The one shared assertion helper: compare a sparselp answer with scipy's HiGHS."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog as scipy_linprog

import torch

# sparselp status names by scipy linprog code
_CODES = {0: "OPTIMAL", 1: "ITERATION_LIMIT", 2: "INFEASIBLE", 3: "UNBOUNDED", 4: "NUMERICAL_ERROR"}


def _np(a):
    if a is None:
        return None
    if isinstance(a, torch.Tensor):
        if a.layout != torch.strided:
            a = a.to_sparse_coo().coalesce()
            i = a.indices().cpu().numpy()
            return sp.csr_array((a.values().detach().cpu().double().numpy(), (i[0], i[1])),
                                shape=tuple(a.shape))
        return a.detach().cpu().double().numpy()
    return a


def highs(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, bounds=(None, None)):
    return scipy_linprog(_np(c), A_ub=_np(A_ub), b_ub=_np(b_ub), A_eq=_np(A_eq),
                         b_eq=_np(b_eq), bounds=bounds, method="highs")


def assert_matches_highs(sol, c, A_ub=None, b_ub=None, A_eq=None, b_eq=None,
                         bounds=(None, None), rtol=1e-6, check_x=False, ref=None):
    """Assert that ``sol`` (a sparselp Solution) agrees with HiGHS on status and objective.

    On failure the message shows both statuses and messages and the residuals.
    """
    ref = ref if ref is not None else highs(c, A_ub, b_ub, A_eq, b_eq, bounds)
    status = sol.status.name
    info = (f"\n  sparselp: status={status} message={sol.message!r} fun={float(sol.fun):.10g} "
            f"nit={sol.nit} primal_res={float(sol.primal_residual):.2e} "
            f"dual_res={float(sol.dual_residual):.2e} gap={float(sol.gap):.2e}"
            f"\n  HiGHS:    status={ref.status} message={ref.message!r} "
            f"fun={getattr(ref, 'fun', None)}")
    expected = _CODES[ref.status]
    assert status == expected, "status differs from HiGHS" + info
    if expected == "OPTIMAL":
        err = abs(float(sol.fun) - ref.fun) / max(1.0, abs(ref.fun))
        assert err <= rtol, f"objective differs from HiGHS by {err:.2e} > {rtol:.0e}" + info
        if check_x:
            x = sol.x.detach().cpu().double().numpy()
            np.testing.assert_allclose(x, ref.x, rtol=0, atol=100 * rtol * max(1, np.abs(ref.x).max()),
                                       err_msg="x differs from HiGHS" + info)
    return ref
