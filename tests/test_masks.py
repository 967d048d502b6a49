"""The bool-free checks and masks of :mod:`sparselp.operators.masks`, the products with
stacked identity tiles, and the unit-row shortcut of :func:`sparselp.scaling.equilibrate`:
each must give exactly (bit for bit) what the plain form gives, NaN and infinities
included, since the chunked AUC loss relies on them for values equal to the unchunked
solve's."""
from __future__ import annotations

import math
import subprocess
import sys

import torch

from sparselp.operators import (SelectionOperator, SparseOperator, StackedOperator, all_finite,
                                all_true, any_neginf, any_nonzero, any_true, as_float,
                                finite_rows, float_mask, is_expanded_scalar, rows_all)
from sparselp.scaling import _unit_rows, build_rows, equilibrate, unit_scale
from sparselp.formulations._base import separable_constraints
from sparselp.problem import LinearProgram, as_operator

INF, NAN = math.inf, math.nan


def _vectors():
    """Float rows with and without NaN, +-inf and zeros, in (B, n) and (n,), and empty."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(3, 50, generator=g)
    out = [base, base.abs(), torch.zeros(2, 7), torch.zeros(2, 0), torch.zeros(0)]
    for special in (NAN, INF, -INF, 0.0, -0.0):
        t = base.clone()
        t[1, 7] = special
        out += [t, t[1], t[:, 7:8]]
    both = base.clone()
    both[0, 3], both[2, 4] = NAN, -INF
    out += [both, torch.full((1, 1), -INF).expand(1, 9), torch.full((1, 1), 2.0).expand(4, 9)]
    return out + [t.double() for t in out[:6]]


def test_tests_on_floats_equal_their_bool_forms():
    for t in _vectors():
        assert all_finite(t) == bool(torch.isfinite(t).all())
        assert any_nonzero(t) == bool(t.ne(0).any())
        assert any_neginf(t) == bool(torch.isneginf(t).any())
        if t.dim():
            assert torch.equal(finite_rows(t), torch.isfinite(t).all(-1))


def test_masks_equal_their_bool_forms():
    for t in _vectors():
        for compare in (torch.le, torch.lt, torch.gt, torch.ge, torch.ne):
            for other in (0.0, t.flip(-1) if t.dim() else t, t[..., :1] if t.dim() else t):
                want = compare(t, other).to(t.dtype)
                got = float_mask(compare, t, other)
                assert got.dtype == t.dtype and torch.equal(got, want)
        mask = t > 0
        assert all_true(mask) == bool(mask.all()) and any_true(mask) == bool(mask.any())
        assert torch.equal(as_float(mask, t.dtype), mask.to(t.dtype))
        if t.dim():
            assert torch.equal(rows_all(mask), mask.all(-1))
    assert float_mask(torch.gt, torch.ones(3, 1), torch.zeros(1, 4)).shape == (3, 4)


def test_a_bound_of_one_number_with_a_batch_of_one_is_an_expanded_scalar():
    assert is_expanded_scalar(torch.full((1, 1), -INF).expand(1, 5))
    assert is_expanded_scalar(torch.full((1, 1), -INF).expand(3, 5))
    assert not is_expanded_scalar(torch.ones(1, 5)) and not is_expanded_scalar(torch.ones(1))


def test_float_mask_does_not_import_sympy():
    """torch.broadcast_shapes imports sympy, ~12 MiB of heap that then fragments the
    memory of the chunked loss (+35 MiB of peak RSS, measured)."""
    code = ("import sys, torch\nfrom sparselp.operators import float_mask\n"
            "float_mask(torch.le, torch.ones(2, 3), torch.zeros(3))\n"
            "assert 'sympy' not in sys.modules, 'sympy imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def _tiles(vals: torch.Tensor, n: int, k: int) -> SparseOperator:
    """``k`` stacked n x n identity tiles with the given values, as the hinge LPs hold them."""
    crow = torch.arange(k * n + 1, dtype=torch.int32)
    cols = torch.arange(n, dtype=torch.int32).repeat(k)
    return SparseOperator.from_csr(crow, cols, vals, k * n, n)


def test_products_with_identity_tiles_are_those_of_the_repeat_and_the_sum():
    g = torch.Generator().manual_seed(1)
    for dt in (torch.float32, torch.float64):
        for k in (2, 3):
            n = 11
            vals = torch.randn(k * n, generator=g, dtype=dt)
            op = _tiles(vals, n, k)
            assert op._pattern.tiles() == k
            for B in (1, 3):
                x = torch.randn(B, n, generator=g, dtype=dt)
                y = torch.randn(B, k * n, generator=g, dtype=dt)
                assert torch.equal(op.mv(x), x.repeat(1, k) * vals)
                assert torch.equal(op.sq_mv(x), x.repeat(1, k) * vals * vals)
                assert torch.equal(op.rmv(y), (y * vals).reshape(B, k, n).sum(1))
                assert torch.equal(op.sq_rmv(y), (y * vals * vals).reshape(B, k, n).sum(1))


def test_rows_of_one_entry_plus_or_minus_one_take_r_one_and_are_not_copied():
    P = 9
    gap = torch.linspace(-1, 1, P, dtype=torch.float64)
    data = separable_constraints(gap, torch.full((P,), 0.5, dtype=torch.float64))
    rows = build_rows(data.problem())
    sys_ = equilibrate(rows, 20)
    assert unit_scale(sys_.r) and sys_.K is rows.K
    # what the passes compute on the same rows: the unit rows of K with s = 1
    r = _unit_rows(rows.K.squared(cache=False), torch.ones(1, P, dtype=torch.float64))
    assert torch.equal(r, torch.ones_like(r))
    assert torch.equal(sys_.k, (r * rows.k) / sys_.k_scale)
    # one entry of 2, or mixed signs in a part: the general path, a real row scaling
    A = data.A.to_dense()
    for change in ((0, 0, -2.0), (P, 0, 1.0)):
        A2 = A.clone()
        A2[change[0], change[1]] = change[2]
        lp = LinearProgram(data.c, A2.to_sparse_csr(), data.b)
        out = equilibrate(build_rows(lp), 20)
        assert not unit_scale(out.r) and out.K is not lp.A
    bounds = StackedOperator([as_operator(data.A, "A", P, 1, torch.float64, torch.device("cpu")),
                              SelectionOperator(torch.arange(P), P, -1.0, 1, torch.float64,
                                                torch.device("cpu"))])
    from sparselp.scaling import _unit_entries
    assert _unit_entries(bounds)
