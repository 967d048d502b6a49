"""Stacked constraint rows and their Ruiz equilibration (:mod:`sparselp.scaling`).

``build_rows`` must stack ``[A; A_eq; -I_L; I_U]`` with ``[b; b_eq; -lb_L; ub_U]``;
``equilibrate`` must return ``diag(r) K diag(s)`` with unit rows and balanced columns,
and its scaled LP, solved by HiGHS and mapped back by ``x = k_scale s x_hat`` and
``v = c_scale r v_hat``, must be the original LP's solution.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sparselp import LinearProgram
from sparselp.scaling import build_rows, equilibrate

from lpcheck import highs, random_lp

F64 = torch.float64


def dense_of(op, B, n):
    """The (B, m, n) matrices of an operator, from its products with the unit vectors."""
    eye = torch.eye(n, dtype=F64)
    return torch.stack([op.mv(eye[j].expand(B, n).contiguous()) for j in range(n)], -1)


def _lp(batch=None, layout="strided", m=30, n=6, seed=0, scale_rows=True):
    """A random LP with rows and columns of wildly different norms, equalities and bounds."""
    p = random_lp(m, n, seed, batch=batch, eq=2, box=0.8)
    g = torch.Generator().manual_seed(seed + 100)
    if scale_rows:  # row norms over 6 decades, column norms over 4
        R = 10 ** (6 * torch.rand(m, 1, generator=g, dtype=F64) - 3)
        C = 10 ** (4 * torch.rand(n, generator=g, dtype=F64) - 2)
        p["A"], p["b"] = R * p["A"] * C, R.squeeze(-1) * p["b"]
        p["A_eq"], p["c"] = p["A_eq"] * C, p["c"] * C
        p["lb"], p["ub"] = p["lb"] / C, p["ub"] / C
    if layout == "coo":
        p["A"] = p["A"].to_sparse_coo()
    return p


def test_build_rows_stacks_every_constraint():
    p = _lp()
    p["lb"][1] = -torch.inf  # a variable without a lower bound has no -I row
    S = build_rows(LinearProgram(**p))
    lb_idx = [0, 2, 3, 4, 5]
    assert S.sizes == (30, 2, 5, 6)
    assert S.lb_idx.tolist() == lb_idx and S.ub_idx.tolist() == list(range(6))
    eye = torch.eye(6, dtype=F64)
    K = torch.cat([p["A"], p["A_eq"], -eye[lb_idx], eye])
    torch.testing.assert_close(dense_of(S.K, 1, 6)[0], K, rtol=0, atol=0)
    k = torch.cat([p["b"], p["b_eq"], -p["lb"][lb_idx], p["ub"]])
    torch.testing.assert_close(S.k[0], k, rtol=0, atol=0)
    assert S.eq.tolist() == [False] * 30 + [True] * 2 + [False] * 11


@pytest.mark.parametrize("layout", ["strided", "coo"])
@pytest.mark.parametrize("batch", [None, 2])
def test_ruiz_unit_rows_and_balanced_columns(layout, batch):
    p = _lp(batch=batch, layout=layout)
    lp = LinearProgram(**p)
    S0 = build_rows(lp)
    S = equilibrate(S0, 10)
    B, n = lp.batch_size, lp.n
    K0, K = dense_of(S0.K, B, n), dense_of(S.K, B, n)
    # The scaled operator is diag(r) K diag(s), and the vectors are scaled as documented.
    torch.testing.assert_close(K, S.r.unsqueeze(-1) * K0 * S.s.unsqueeze(-2))
    torch.testing.assert_close(S.c, S.s * S0.c / S.c_scale)
    torch.testing.assert_close(S.k, S.r * S0.k / S.k_scale)
    # The objective's extreme entries are equally far from 1 where they span more than
    # COST_SPREAD, else the largest is 1; k is at most 1.
    from sparselp.scaling import COST_SPREAD
    c = S.c.abs()
    hi, lo = c.amax(-1), c.masked_fill(c == 0, torch.inf).amin(-1)
    wide = hi > COST_SPREAD * lo
    torch.testing.assert_close(torch.where(wide, hi * lo, hi), torch.ones(B, dtype=F64))
    assert float(S.k.abs().amax()) <= 1.0
    rows, cols = K.norm(dim=-1), K.norm(dim=-2)
    torch.testing.assert_close(rows, torch.ones_like(rows))
    # Ruiz's 2-norm fixed point has unit rows and columns of norm sqrt(m / n); the raw
    # column norms differ by more than a factor 10, the scaled ones stay within 1.5 of it.
    target = (K.shape[-2] / n) ** 0.5
    spread0 = K0.norm(dim=-2).amax(-1) / K0.norm(dim=-2).amin(-1)
    assert float(spread0.min()) > 10
    assert float((cols / target).amax()) < 1.5 and float((cols / target).amin()) > 1 / 1.5


def _scaled_highs(S, b=0):
    """HiGHS on the scaled LP of batch element b (rows as they are stacked, x free)."""
    K = dense_of(S.K, S.c.shape[0], S.c.shape[1])[b].numpy()
    eq, k, c = S.eq.numpy(), S.k[b].numpy(), S.c[b].numpy()
    return highs(c, K[~eq], k[~eq], K[eq], k[eq])


@pytest.mark.parametrize("seed", range(3))
def test_scaled_solution_maps_back_to_the_original(seed):
    p = _lp(seed=seed)
    S = equilibrate(build_rows(LinearProgram(**p)), 10)
    hat = _scaled_highs(S)
    ref = highs(**p)
    assert hat.status == ref.status == 0
    x = S.k_scale[0].item() * S.s[0].numpy() * hat.x
    c = p["c"].numpy()
    # c^T x = c_scale k_scale c_hat^T x_hat: the optimal values agree ...
    assert c @ x == pytest.approx(ref.fun, rel=1e-9, abs=1e-9)
    assert S.c_scale.item() * S.k_scale.item() * hat.fun == pytest.approx(ref.fun, rel=1e-9)
    # ... and, at this generic (unique) optimum, so do the points and the duals.
    np.testing.assert_allclose(x, ref.x, rtol=1e-7, atol=1e-9 * np.abs(ref.x).max())
    m, m_eq = S.sizes[:2]
    v_hat = np.concatenate([-hat.ineqlin.marginals, -hat.eqlin.marginals])
    eq = S.eq.numpy()
    order = np.concatenate([np.flatnonzero(~eq), np.flatnonzero(eq)])
    v = np.empty_like(v_hat)
    v[order] = v_hat
    v = S.c_scale.item() * S.r[0].numpy() * v
    scale = np.abs(ref.ineqlin.marginals).max()
    np.testing.assert_allclose(v[:m], -ref.ineqlin.marginals, atol=1e-7 * scale)
    np.testing.assert_allclose(v[m:m + m_eq], -ref.eqlin.marginals, atol=1e-7 * scale)


def test_row_separable_matrix_gets_unit_rows_without_column_passes():
    g = torch.Generator().manual_seed(3)
    n = 8
    cols = torch.arange(n).repeat(3)
    vals = 10 ** (4 * torch.rand(cols.numel(), generator=g, dtype=F64) - 2)
    A = torch.zeros(cols.numel(), n, dtype=F64)
    A[torch.arange(cols.numel()), cols] = vals * torch.sign(torch.randn(cols.numel(), generator=g,
                                                                      dtype=F64))
    lp = LinearProgram(torch.randn(n, generator=g, dtype=F64), A.to_sparse_coo(),
                       torch.rand(cols.numel(), generator=g, dtype=F64), lb=-1.0)
    S0 = build_rows(lp)
    S = equilibrate(S0, 10)
    K = dense_of(S.K, 1, n)[0]
    # Every entry is +-1 with its sign kept, and the columns are not rescaled.
    torch.testing.assert_close(K.abs(), (K0 := dense_of(S0.K, 1, n)[0]).ne(0).to(F64))
    assert torch.equal(torch.sign(K), torch.sign(K0))
    torch.testing.assert_close(S.s, torch.ones_like(S.s))


def test_no_scaling_is_the_identity():
    p = _lp()
    S0 = build_rows(LinearProgram(**p))
    S = equilibrate(S0, 0)
    for t in (S.r, S.s, S.c_scale, S.k_scale):
        assert torch.equal(t, torch.ones_like(t))
    torch.testing.assert_close(dense_of(S.K, 1, 6), dense_of(S0.K, 1, 6), rtol=0, atol=0)




def test_geometric_passes_only_on_the_elements_that_span_wide(monkeypatch):
    # Element 0's entries span 12 decades, element 1's a few: the geometric candidate is
    # formed for element 0 alone; element 1 keeps Ruiz's scaling.
    import sparselp.scaling as scaling
    p = _lp(batch=2, scale_rows=False)
    p["A"] = p["A"].clone()
    p["A"][0] = p["A"][0] * 10 ** torch.linspace(-6, 6, 6, dtype=F64)
    lp = LinearProgram(**p)
    sizes, geometric = [], scaling._geometric_
    monkeypatch.setattr(scaling, "_geometric_",
                        lambda G, r, s: sizes.append(s.shape[0]) or geometric(G, r, s))
    S = equilibrate(build_rows(lp), 10)
    assert sizes == [1]
    monkeypatch.setattr(scaling, "_GEOM_RANGE", float("inf"))
    R = equilibrate(build_rows(lp), 10)  # Ruiz's alone
    torch.testing.assert_close(S.s[1], R.s[1], rtol=0, atol=0)
