"""Warm starts: ``solve(..., warm_start=)``, ``lp_solve``/``LPLayer`` and the losses.

A warm start changes the iterations, never the answer: every answer is compared with
HiGHS, and the iteration counts with those of a cold start.
"""
from __future__ import annotations

import pytest
import torch

from sparselp import (FScoreLoss, LinearProgram, LPLayer, PrecisionAtRecallLoss, Status,
                      WarmStart, lp_solve, solve)

from lpcheck import assert_matches_highs, element, highs, random_lp

F64 = torch.float64


def _box_batch(seed=0, batch=6, m=30, n=15):
    return random_lp(m=m, n=n, seed=seed, batch=batch, box=(1.0,), cost="random",
                     interior="uniform")


def _perturbed(p, scale=1e-3, seed=1):
    g = torch.Generator().manual_seed(seed)
    q = dict(p)
    q["b"] = p["b"] + scale * torch.rand(p["b"].shape, generator=g, dtype=p["b"].dtype)
    return q


def test_same_lp_is_certified_without_a_newton_step():
    p = _box_batch()
    cold = solve(LinearProgram(**p))
    warm = solve(LinearProgram(**p), warm_start=cold)
    assert cold.nit > 0 and warm.nit == 0
    assert warm.status == [Status.OPTIMAL] * 6
    for i in range(6):
        assert_matches_highs(warm[i], **element(p, i))


@pytest.mark.parametrize("batched", [True, False])
def test_nearby_lp_takes_fewer_iterations_and_matches_highs(batched):
    p = _box_batch(seed=3)
    if not batched:
        p = element(p, 0)
    q = _perturbed(p)
    first = solve(LinearProgram(**p))
    cold = solve(LinearProgram(**q))
    warm = solve(LinearProgram(**q), warm_start=first)
    assert warm.nit < cold.nit
    for i in range(6 if batched else 1):
        assert_matches_highs(warm[i] if batched else warm, **(element(q, i) if batched else q))


def test_warm_start_of_another_shape_is_an_error_naming_it():
    p = _box_batch(batch=3)
    sol = solve(LinearProgram(**p))
    with pytest.raises(ValueError, match="warm_start"):
        solve(LinearProgram(**_box_batch(batch=2)), warm_start=sol)
    with pytest.raises(TypeError, match="warm_start"):
        solve(LinearProgram(**p), warm_start=sol.x)
    with pytest.raises(TypeError, match="warm_start"):
        lp_solve(p["c"], p["A"], p["b"], lb=-1.0, ub=1.0, warm_start=True)


def test_presolve_uses_the_warm_start_only_when_nothing_was_removed():
    p = element(_box_batch(seed=4), 0)
    first = solve(LinearProgram(**p))
    again = solve(LinearProgram(**p), warm_start=first, presolve=True)
    assert again.nit == 0
    assert_matches_highs(again, **p)


def test_layer_warm_start_gives_cold_answers_and_falls_back_on_a_shape_change():
    p = _box_batch(seed=5)
    layer = LPLayer(warm_start=True)
    layer(p["c"], p["A"], p["b"], lb=-1.0, ub=1.0)
    n_cold = layer.warm_start.solution.nit
    assert not layer.warm_start.used
    q = _perturbed(p)
    x = layer(q["c"], q["A"], q["b"], lb=-1.0, ub=1.0)
    assert layer.warm_start.used and layer.warm_start.solution.nit < n_cold
    for i in range(6):
        ref = highs(**element(q, i))
        torch.testing.assert_close(x[i], torch.from_numpy(ref.x), rtol=0, atol=1e-7)
    r = element(q, 0)  # unbatched: another shape, a cold start
    x0 = layer(r["c"], r["A"], r["b"], lb=-1.0, ub=1.0)
    assert not layer.warm_start.used
    torch.testing.assert_close(x0, x[0], rtol=0, atol=1e-7)


def test_layer_gradcheck_with_warm_starts():
    """gradcheck's perturbed calls each start from the previous call's solution."""
    p = random_lp(m=9, n=4, seed=1, eq=1, box=0.7)
    layer = LPLayer(warm_start=True)
    args = tuple(p[k].detach().clone().requires_grad_() for k in ("A", "b", "b_eq"))

    def f(A, b, b_eq):
        return layer(p["c"], A, b, p["A_eq"], b_eq, p["lb"], p["ub"])
    assert torch.autograd.gradcheck(f, args, fast_mode=True)
    assert layer.warm_start.used


def test_explicit_solution_and_holder_in_lp_solve():
    p = _box_batch(seed=6, batch=2)
    sol = solve(LinearProgram(**p))
    x = lp_solve(p["c"], p["A"], p["b"], lb=-1.0, ub=1.0, warm_start=sol)
    torch.testing.assert_close(x, sol.x, rtol=0, atol=1e-8)
    holder = WarmStart()
    lp_solve(p["c"], p["A"], p["b"], lb=-1.0, ub=1.0, warm_start=holder)
    assert holder.solution is not None and not holder.used
    lp_solve(p["c"], p["A"], p["b"], lb=-1.0, ub=1.0, warm_start=holder)
    assert holder.used and holder.solution.nit == 0


@pytest.mark.parametrize("cls", [FScoreLoss, PrecisionAtRecallLoss])
def test_loss_warm_start_matches_highs_in_fewer_iterations(cls):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(48, generator=g, dtype=F64)
    y = (torch.rand(48, generator=g) < 0.3).long()
    warm, ref = cls(warm_start=True), cls(backend="highs")
    warm(s, y)
    n_cold = warm.warm_start.solution.nit
    s2 = (s + 1e-3 * torch.randn(48, generator=g, dtype=F64)).requires_grad_()
    s_ref = s2.detach().clone().requires_grad_()
    loss = warm(s2, y)
    assert warm.warm_start.used and warm.warm_start.solution.nit < n_cold
    loss_ref = ref(s_ref, y)
    torch.testing.assert_close(loss, loss_ref, rtol=1e-6, atol=1e-7)
    loss.backward()
    loss_ref.backward()
    torch.testing.assert_close(s2.grad, s_ref.grad, rtol=1e-5, atol=1e-6)
    # Another batch size changes the LP's shape: a cold start, the same answer.
    torch.testing.assert_close(warm(s[:40], y[:40]), ref(s[:40], y[:40]), rtol=1e-6,
                               atol=1e-7)
    assert not warm.warm_start.used
