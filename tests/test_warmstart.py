"""Warm starts: ``solve(..., warm_start=)``, ``lp_solve``/``LPLayer`` and the losses.

A warm start changes the iterations, never the answer: every answer is compared with
HiGHS, and the iteration counts with those of a cold start.
"""
from __future__ import annotations

import pytest
import torch

from sparselp import (FScoreLoss, LinearProgram, LPLayer, MultiClassAUCLoss,
                      PrecisionAtRecallLoss, Status, WarmStart, lp_solve, solve)

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
        solve(LinearProgram(**p), warm_start=sol.x.numpy())
    with pytest.raises(ValueError, match="warm_start, a primal start, has shape"):
        solve(LinearProgram(**p), warm_start=sol.x[:2])
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


def test_loss_warm_start_matches_a_cold_start():
    """MultiClassAUCLoss(warm_start=True) (a loss without a closed-form start): the next
    minibatch starts from the last one's solution, with a cold start's answer."""
    g = torch.Generator().manual_seed(0)
    s = torch.randn(48, 3, generator=g, dtype=F64)
    y = torch.arange(48) % 3
    warm, cold = MultiClassAUCLoss(3, warm_start=True), MultiClassAUCLoss(3)
    warm(s, y)
    n_cold = warm.warm_start.solution.nit
    s2 = (s + 1e-3 * torch.randn(48, 3, generator=g, dtype=F64)).requires_grad_()
    s_ref = s2.detach().clone().requires_grad_()
    loss = warm(s2, y)
    assert warm.warm_start.used and warm.warm_start.solution.nit <= n_cold
    loss_ref = cold(s_ref, y)
    torch.testing.assert_close(loss, loss_ref, rtol=1e-6, atol=1e-7)
    loss.backward()
    loss_ref.backward()
    torch.testing.assert_close(s2.grad, s_ref.grad, rtol=1e-5, atol=1e-6)
    # Another batch size changes the LP's shape: a cold start, the same answer.
    torch.testing.assert_close(warm(s[:40], y[:40]), cold(s[:40], y[:40]), rtol=1e-6,
                               atol=1e-7)
    assert not warm.warm_start.used


def _args(lp):
    eq = lp.A_eq is not None
    return (lp.c[0], lp.A.to_scipy(0), lp.b[0], lp.A_eq.to_scipy(0) if eq else None,
            lp.b_eq[0] if eq else None)


def _highs_of(lp):
    return highs(*_args(lp))


def _matches(sol, lp, ref):
    assert_matches_highs(sol, *_args(lp), ref=ref)


@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", ["fscore", "precision-at-recall"])
def test_closed_form_primal_start_is_certified_without_a_newton_step(kind, dtype):
    """The ratio LPs' closed-form optimum as a primal start: the active set and the
    multipliers follow from it (degenerate vertices included: clipped ramps, scores on a
    kink), the answer is HiGHS's and the solve takes no Newton step; poor primal starts
    (zeros, a shifted point) still end at the same certified answer."""
    from sparselp.formulations import fscore_data, precision_at_recall_data

    g = torch.Generator().manual_seed(7)
    for n in (40, 300):
        s = (torch.randn(n, generator=g, dtype=F64) * 1.5).to(dtype)
        s[:4] = torch.tensor([2.0, -2.0, 1.0, -1.0], dtype=dtype)  # clipped, on the kinks
        y = (torch.rand(n, generator=g) < 0.3).long()
        y[:4] = torch.tensor([1, 0, 0, 1])
        d = fscore_data(s, y) if kind == "fscore" else precision_at_recall_data(s, y, 0.7)
        lp = d.problem()
        sol = solve(lp, warm_start=d.start)
        assert sol.status == Status.OPTIMAL and sol.nit == 0 and bool(sol.polished)
        ref = _highs_of(lp)
        _matches(sol, lp, ref)
        for start in (torch.zeros_like(d.start), d.start + 0.3 * d.start.abs().max()):
            _matches(solve(lp, warm_start=start), lp, ref)


def test_ratio_losses_solve_from_their_closed_form(monkeypatch):
    """FScoreLoss and PrecisionAtRecallLoss hand their closed-form optimum to the solver
    (whatever warm_start says): every solve of a call certified at 0 Newton steps."""
    import sparselp.solver as solver_mod

    seen = []
    real = solver_mod.solve

    def spy(*args, **kw):
        sol = real(*args, **kw)
        seen.append((sol.nit, sol.status))
        return sol
    monkeypatch.setattr(solver_mod, "solve", spy)
    g = torch.Generator().manual_seed(3)
    s = torch.randn(200, generator=g, dtype=torch.float32, requires_grad=True)
    y = (torch.rand(200, generator=g) < 0.2).long()
    for loss in (FScoreLoss(closed_form=False), PrecisionAtRecallLoss(closed_form=False),
                 FScoreLoss(warm_start=True, closed_form=False)):
        loss(s, y).backward()
        assert loss.last_path == "solver"
    assert seen == [(0, [Status.OPTIMAL])] * 3
    # by default the closed form is certified without the solver
    for loss in (FScoreLoss(), PrecisionAtRecallLoss()):
        loss(s, y).backward()
        assert loss.last_path == "closed-form"
    assert len(seen) == 3
