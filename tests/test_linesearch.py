"""The line searches of :mod:`sparselp.linesearch` against dense brute-force references.

Along a direction the solver's objective is the piecewise quadratic
``phi(t) = lin0 t + lin1 t^2 / 2 + ||Pi(u + t s)||^2 / (2 sigma)``, whose derivative is
piecewise linear and nondecreasing. The reference here walks its breakpoints in float64
numpy, one batch element (or one coordinate) at a time, and solves the linear piece that
holds the root: the exact minimiser, computed without the library. A fine grid of ``phi``
checks the reference itself.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sparselp.breakpoints import _per_element, breakpoint_step
from sparselp.linesearch import RowKinds, armijo_step, exact_step, separable_step
from sparselp.operators import SparseOperator

DTYPES = [torch.float64, torch.float32]
# Relative accuracy of a step: float64 to near round-off, float32 to its precision.
T_RTOL = {torch.float64: 1e-9, torch.float32: 2e-4}


def _dphi(t, lin0, lin1, u, s, eq, inv_sigma):
    v = u + t * s
    p = np.where(eq, v, np.maximum(v, 0.0))
    return lin0 + t * lin1 + inv_sigma * (p * s).sum()


def _phi(t, lin0, lin1, u, s, eq, inv_sigma):
    v = u + t * s
    p = np.where(eq, v, np.maximum(v, 0.0))
    return lin0 * t + 0.5 * lin1 * t * t + 0.5 * inv_sigma * (p * p).sum()


def ref_root(lin0, lin1, u, s, eq, inv_sigma):
    """The root t >= 0 of the nondecreasing piecewise-linear phi' (0 if phi'(0) >= 0)."""
    fin = np.isfinite(u)  # switched-off rows (u = -inf) never turn active
    u, s, eq = u[fin], s[fin], eq[fin]
    args = (lin0, lin1, u, s, eq, inv_sigma)
    if _dphi(0.0, *args) >= 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kinks = np.where(~eq & (s != 0), -u / s, -1.0)
    pts = np.concatenate([[0.0], np.sort(kinks[kinks > 0])])
    vals = np.array([_dphi(t, *args) for t in pts])
    k = np.flatnonzero(vals < 0).max()  # phi' < 0 at pts[k], >= 0 at pts[k + 1] if any
    a = pts[k]
    mid = 0.5 * (a + pts[k + 1]) if k + 1 < pts.size else a + 1.0
    act = eq | (u + mid * s > 0)
    slope = lin1 + inv_sigma * (s[act] ** 2).sum()
    return a - vals[k] / slope


def _problems(B, m, dtype, seed, with_eq=True, switched_off=True):
    """Batched data of a descent direction: phi'(0) < 0 and lin1 > 0 (or eq rows)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(B, m, generator=g, dtype=dtype)
    s = torch.randn(B, m, generator=g, dtype=dtype) * 2
    eq = (torch.rand(m, generator=g) < 0.2) if with_eq else torch.zeros(m, dtype=torch.bool)
    if switched_off:  # inequality rows only: an equality row cannot be switched off
        u[:, -2:] = -torch.inf
        eq[-2:] = False
    sigma = (0.5 + torch.rand(B, 1, generator=g, dtype=dtype)) * 3
    lin1 = torch.rand(B, generator=g, dtype=dtype) * 0.5
    p0 = torch.where(eq, u, u.clamp_min(0))
    s_fin = torch.where(torch.isfinite(u), s, torch.zeros_like(s))
    # lin0 makes phi'(0) = -(1 + |.|) < 0 whatever the rows contribute at t = 0.
    lin0 = -(p0.nan_to_num(neginf=0.0) * s_fin).sum(-1) / sigma.squeeze(-1) \
        - 1.0 - 5 * torch.rand(B, generator=g, dtype=dtype)
    return u, s, eq, lin0, lin1, sigma


# The exact searches: the iteration (large LPs), the sorted breakpoints (small ones,
# batched in torch) and the same per element in numpy (a CPU batch of a few LPs).
EXACT = [exact_step, breakpoint_step, _per_element]
EXACT_IDS = ["iterate", "sort", "sort-numpy"]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("with_eq", [False, True], ids=["ineq", "eq"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("search", EXACT, ids=EXACT_IDS)
def test_exact_step_is_the_exact_minimiser(dtype, with_eq, seed, search):
    B, m = 8, 40
    u, s, eq, lin0, lin1, sigma = _problems(B, m, dtype, seed, with_eq)
    todo = torch.ones(B, dtype=torch.bool)
    todo[3] = False
    t = search(u, s, eq, lin0, lin1, sigma, todo)
    assert t.shape == (B,) and t.dtype == dtype
    assert float(t[3]) == 0.0  # not in todo: no step
    f = [a.double().numpy() for a in (u, s, lin0, lin1, sigma)]
    for b in range(B):
        if b == 3:
            continue
        args = (f[2][b], f[3][b], f[0][b], f[1][b], eq.numpy(), 1.0 / f[4][b, 0])
        ref = ref_root(*args)
        assert ref > 0
        assert abs(float(t[b]) - ref) <= T_RTOL[dtype] * ref, (b, float(t[b]), ref)
        # The reference is the minimiser of phi on a fine grid around it.
        grid = np.linspace(0, 3 * ref, 3001)
        fin = np.isfinite(args[2])
        gargs = (args[0], args[1], args[2][fin], args[3][fin], args[4][fin], args[5])
        best = min(_phi(z, *gargs) for z in grid)
        assert _phi(ref, *gargs) <= best + 1e-12 * (1 + abs(best))


@pytest.mark.parametrize("search", EXACT, ids=EXACT_IDS)
def test_exact_step_without_proximal_term(search):
    """lin1 = 0 (the penalty method): only the rows give phi' its slope."""
    B, m = 5, 30
    u, s, eq, lin0, _, sigma = _problems(B, m, torch.float64, 11, with_eq=True)
    lin1 = torch.zeros(B, dtype=torch.float64)
    t = search(u, s, eq, lin0, lin1, sigma, torch.ones(B, dtype=torch.bool))
    for b in range(B):
        ref = ref_root(lin0[b].item(), 0.0, u[b].numpy(), s[b].numpy(), eq.numpy(),
                       1.0 / sigma[b, 0].item())
        assert abs(float(t[b]) - ref) <= 1e-9 * ref



@pytest.mark.parametrize("first", [1, 2, 3])
def test_numpy_search_sorting_only_the_first_events(monkeypatch, first):
    """The numpy search sorts the first ``FIRST_EVENTS`` events, all of them when the root
    lies beyond: the same roots either way, and both ways taken here."""
    from sparselp import breakpoints
    monkeypatch.setattr(breakpoints, "FIRST_EVENTS", first)
    beyond, orig = [], breakpoints._on_pieces

    def spy(*args):
        t = orig(*args)
        beyond.append(t is None)
        return t
    monkeypatch.setattr(breakpoints, "_on_pieces", spy)
    B, m = 12, 40
    u, s, eq, lin0, lin1, sigma = _problems(B, m, torch.float64, 21, with_eq=True)
    t = _per_element(u, s, eq, lin0, lin1, sigma, torch.ones(B, dtype=torch.bool))
    for b in range(B):
        ref = ref_root(lin0[b].item(), lin1[b].item(), u[b].numpy(), s[b].numpy(),
                       eq.numpy(), 1.0 / sigma[b, 0].item())
        assert abs(float(t[b]) - ref) <= 1e-12 * ref, (b, float(t[b]), ref)
    assert any(beyond) and not all(beyond)


@pytest.mark.parametrize("search", [breakpoint_step, _per_element], ids=EXACT_IDS[1:])
def test_breakpoint_step_edge_cases(search):
    """Ties, rows on their kink, no descent and no bound, each against the reference."""
    f64 = torch.float64
    eq = torch.zeros(4, dtype=torch.bool)
    sigma = torch.ones(4, 1, dtype=f64)
    # 0: two rows with the same breakpoint (t = 1) and a row on its kink turning on;
    # 1: phi'(0) >= 0, no step; 2: no proximal term and every row switching off, so
    # phi' stays negative (+inf: no finite minimiser); 3: the root on the last piece.
    u = torch.tensor([[-1.0, -2.0, 0.0, 5.0], [1.0, 0.0, 0.0, 0.0],
                      [1.0, 2.0, -1.0, -1.0], [-1.0, -3.0, 2.0, 0.5]], dtype=f64)
    s = torch.tensor([[1.0, 2.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0],
                      [-1.0, -1.0, -2.0, -1.0], [1.0, 1.0, -1.0, 3.0]], dtype=f64)
    lin0 = torch.tensor([-4.0, 2.0, -1.0, -20.0], dtype=f64)
    lin1 = torch.tensor([0.5, 1.0, 0.0, 0.1], dtype=f64)
    t = search(u, s, eq, lin0, lin1, sigma, torch.ones(4, dtype=torch.bool))
    assert float(t[1]) == 0.0 and float(t[2]) == float("inf")
    for b in (0, 3):
        ref = ref_root(lin0[b].item(), lin1[b].item(), u[b].numpy(), s[b].numpy(),
                       eq.numpy(), 1.0)
        assert abs(float(t[b]) - ref) <= 1e-12 * ref, (b, float(t[b]), ref)


def _phi_x(x, c, A, k, eq, sigma, xk, tau):
    """phi(x) of the ALM subproblem for a batch of points x (B, n), dense A (m, n)."""
    u = sigma * (x @ A.T - k)
    p = torch.where(eq, u, u.clamp_min(0))
    return (c * x).sum(-1) + (p * p).sum(-1) / (2 * sigma.squeeze(-1)) \
        + ((x - xk) ** 2).sum(-1) / (2 * tau)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_armijo_step_is_the_first_halving_with_sufficient_decrease(dtype):
    g = torch.Generator().manual_seed(4)
    B, m, n, c1, tau = 6, 25, 5, 1e-4, 10.0
    A = torch.randn(m, n, generator=g, dtype=dtype)
    k = torch.randn(m, generator=g, dtype=dtype)
    eq = torch.rand(m, generator=g) < 0.2
    c = torch.randn(B, n, generator=g, dtype=dtype)
    sigma = torch.full((B, 1), 50.0, dtype=dtype)  # stiff: full steps overshoot
    x = torch.randn(B, n, generator=g, dtype=dtype)
    xk = x.clone()

    def phi(z):
        return _phi_x(z, c, A, k, eq, sigma, xk, tau)
    xr = x.clone().requires_grad_()
    grad, = torch.autograd.grad(phi(xr).sum(), xr)
    d = -grad  # steepest descent: phi decreases for small t
    val, slope = phi(x), (grad * d).sum(-1)
    todo = torch.ones(B, dtype=torch.bool)
    todo[1] = False
    t, accepted = armijo_step(phi, x, d, val, slope, todo, c1)
    assert bool(accepted.all()) and float(t[1]) == 0.0
    for b in range(B):
        if b == 1:
            continue
        # Brute force: the first of 1, 1/2, 1/4, ... meeting the Armijo condition.
        ref = next(0.5 ** j for j in range(40)
                   if float(phi(x + 0.5 ** j * d)[b]) <= float(val[b] + c1 * 0.5 ** j * slope[b])
                   + 1e-14 * abs(float(val[b])))
        assert float(t[b]) == ref
    assert float(t[todo].min()) < 1  # at least one element had to backtrack


def test_armijo_step_reports_no_acceptable_step():
    """An ascent direction passed as if it descended: nothing is accepted, t = 0."""
    def phi(z):
        return (z * z).sum(-1)
    x = torch.ones(2, 3, dtype=torch.float64)
    d = x.clone()  # phi grows along d
    t, accepted = armijo_step(phi, x, d, phi(x), torch.full((2,), -1.0, dtype=torch.float64),
                              torch.tensor([True, False]), 1e-4, max_halvings=10)
    assert accepted.tolist() == [False, True] and t.tolist() == [0.0, 0.0]


def _separable_K(n, per_col, g, dtype):
    cols = torch.arange(n).repeat_interleave(per_col)
    m = cols.numel()
    vals = torch.randn(m, generator=g, dtype=dtype)
    return SparseOperator(torch.arange(m), cols, vals, m, n, 1, shared=True), cols, vals


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("with_eq", [False, True], ids=["ineq", "eq"])
def test_separable_step_each_coordinate_at_its_minimiser(dtype, with_eq):
    g = torch.Generator().manual_seed(5 + with_eq)
    B, n, per_col, tau = 3, 12, 4, 2.0
    K, cols, vals = _separable_K(n, per_col, g, dtype)
    m = K.m
    eq = (torch.rand(m, generator=g) < 0.25) if with_eq else torch.zeros(m, dtype=torch.bool)
    eq[5] = False
    rows = RowKinds(eq, dtype)
    u = torch.randn(B, m, generator=g, dtype=dtype)
    u[:, 5] = -torch.inf  # a switched-off (inequality) row
    sigma = torch.tensor([[1.0], [4.0], [20.0]], dtype=dtype)
    c = torch.randn(B, n, generator=g, dtype=dtype)
    x = torch.randn(B, n, generator=g, dtype=dtype)
    xk = x + 0.3 * torch.randn(B, n, generator=g, dtype=dtype)
    gradient = c + (x - xk) / tau + K.rmv(rows.proj(u).nan_to_num(neginf=0.0))
    d = -gradient * (0.5 + torch.rand(B, n, generator=g, dtype=dtype))
    d[0, 2] = 0.0  # a coordinate that does not move
    lin0, lin1 = c * d + (x - xk) * d / tau, d * d / tau
    todo = torch.tensor([True, True, False])
    t, v = separable_step(K, u, sigma, rows, d, gradient * d, lin0, lin1, todo)
    assert t.shape == (B, n) and float(t[0, 2]) == 0.0 and bool((t[2] == 0).all())
    torch.testing.assert_close(v[:2], u[:2] + sigma[:2] * K.mv(t * d)[:2])
    f = lambda a: a.double().numpy()  # noqa: E731
    for b in range(2):
        for j in range(n):
            if j == 2 and b == 0:
                continue
            r = (cols == j).numpy()
            s = f(sigma)[b, 0] * f(vals)[r] * f(d)[b, j]
            ref = ref_root(f(lin0)[b, j], f(lin1)[b, j], f(u)[b][r], s, eq.numpy()[r],
                           1.0 / f(sigma)[b, 0])
            assert abs(float(t[b, j]) - ref) <= T_RTOL[dtype] * max(ref, 1e-3), \
                (b, j, float(t[b, j]), ref)


@pytest.mark.parametrize("with_eq", [False, True], ids=["ineq", "eq"])
def test_row_kinds_projection_and_active_rows(with_eq):
    g = torch.Generator().manual_seed(8)
    u = torch.randn(4, 30, generator=g, dtype=torch.float64)
    u[:, 3] = 0.0  # exactly on the kink: not active unless an equality
    eq = (torch.rand(30, generator=g) < 0.3) if with_eq else torch.zeros(30, dtype=torch.bool)
    eq[3] = with_eq
    rows = RowKinds(eq, torch.float64)
    p = rows.proj(u)
    assert torch.equal(p, torch.where(eq, u, u.clamp_min(0)))
    expected = ((p > 0) | eq).to(torch.float64)
    assert torch.equal(rows.active(p), expected)
    assert torch.equal(rows.active(p.clone(), inplace=True), expected)
