"""The F-score LP with hinge bounds (``surrogate="hinge"`` / ``"hinge-negatives"``): its
optimum against scipy's HiGHS and the closed form, samples on the wrong side included; the
gradient the ramp does not give; the bound where it is negative (``TP_l < 0``, ``t =
t_min``); gradcheck. The sharded
closed form is also run by test_sharded.py and test_distributed.py."""
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from sparselp.solver import solve
from sparselp.formulations import fscore, fscore_data
from sparselp.losses import FScoreLoss
from lpcheck import assert_matches_highs

F64 = torch.float64
HINGES = ["hinge", "hinge-negatives"]


def _batch(n, scale, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, generator=g, dtype=F64) * scale
    y = (torch.rand(n, generator=g) < 0.3).long()
    y[:2] = torch.tensor([0, 1])
    return s + shift * y, y


def _bounds_f(s, y, eps, surrogate):
    """The hinge F-score written out: TP_l = sum_P min(1, h) (the ramp clip(h, 0, 1) on the
    positives for hinge-negatives), FP_u = sum_N max(0, h): 2 TP_l / (TP_l + FP_u + |P|),
    and 2 TP_l / (2 |P| + FP_u) where TP_l < 0 (t at its floor)."""
    h = 0.5 + s / (2 * eps)
    p = h[y == 1].clamp(max=1.0) if surrogate == "hinge" else h[y == 1].clamp(0.0, 1.0)
    tp, fp = float(p.sum()), float(h[y == 0].clamp(min=0.0).sum())
    npos = int(y.sum())
    return 2 * tp / (2 * npos + fp) if tp < 0 else 2 * tp / (tp + fp + npos)


def _linprog(lp):
    return linprog(lp.c[0].numpy(), A_ub=lp.A.to_scipy(0), b_ub=lp.b[0].numpy(),
                   A_eq=lp.A_eq.to_scipy(0), b_eq=lp.b_eq[0].numpy(), bounds=(None, None),
                   method="highs")


@pytest.mark.parametrize("surrogate", HINGES)
@pytest.mark.parametrize("scale,shift", [(0.5, 0.0), (3.0, 2.0), (3.0, 0.0), (2.0, -6.0)])
def test_hinge_lp_optimum_is_highs_and_the_bound_fraction(surrogate, scale, shift):
    """Scores inside the kinks, beyond them on either side, positives far on the wrong
    side (TP_l < 0 for the hinge, t = t_min, at the last two settings but for one seed): the
    start (the closed form) is HiGHS's optimum, and so is the engine's solve."""
    eps = 0.7
    for seed in range(3):
        s, y = _batch(30, scale, seed, shift)
        lp = fscore(s, y, eps, surrogate)
        ref = _linprog(lp)
        assert ref.status == 0
        assert -ref.fun == pytest.approx(_bounds_f(s, y, eps, surrogate), abs=1e-9)
        d = fscore_data(s, y, eps, surrogate)
        assert float(d.c @ d.start) == pytest.approx(ref.fun, abs=1e-12)
        assert_matches_highs(solve(lp), lp.c[0], lp.A.to_scipy(0), lp.b[0],
                             A_eq=lp.A_eq.to_scipy(0), b_eq=lp.b_eq[0], bounds=(None, None),
                             ref=ref)


def test_nonzeros_and_the_ramp_unchanged():
    s, y = _batch(25, 2.0, 0)
    p = int(y.sum())
    nnz = {sur: fscore_data(s, y, 1.0, sur).A._nnz() for sur in ("ramp", "hinge",
                                                                 "hinge-negatives")}
    assert nnz == {"ramp": 4 * 25 + 1 - p, "hinge": 3 * 25 + 1 + p, "hinge-negatives": 3 * 25 + 1}
    u = (0.5 + s / 2).clamp(0, 1)
    f = 2 * u[y == 1].sum() / (u.sum() + p)
    assert float(FScoreLoss(surrogate="ramp")(s, y)) == pytest.approx(1 - float(f), rel=1e-12)
    assert FScoreLoss().surrogate == "hinge"  # the default (README, "Training")


@pytest.mark.parametrize("surrogate", HINGES)
def test_hinge_gives_a_gradient_to_samples_far_on_the_wrong_side(surrogate):
    """The ramp gives none to a positive at s = -3 or a negative at s = 5 (eps 1); the
    hinge gives the negative one, and (``"hinge"``) the positive too."""
    s = torch.tensor([-3.0, 0.9, 2.0, 5.0, -0.2, -3.0], dtype=F64, requires_grad=True)
    y = torch.tensor([1, 1, 1, 0, 0, 0])
    FScoreLoss(surrogate="ramp")(s, y).backward()
    assert float(s.grad[0]) == 0 and float(s.grad[3]) == 0
    s.grad = None
    loss = FScoreLoss(surrogate=surrogate)
    loss(s, y).backward()
    assert loss.last_path == "closed-form"
    assert float(s.grad[3]) > 0                     # the false positive pushed down
    assert (float(s.grad[0]) < 0) == (surrogate == "hinge")  # the positive pushed up
    assert float(s.grad[2]) == 0 and float(s.grad[5]) == 0  # right side beyond the kink


@pytest.mark.parametrize("surrogate", HINGES)
@pytest.mark.parametrize("closed_form", [True, False])
def test_hinge_loss_gradcheck_and_solver_agree(surrogate, closed_form):
    s, y = _batch(14, 1.5, 3)
    s = s + 0.05 * torch.sign(s)  # away from the kinks: a differentiable point
    loss = FScoreLoss(eps=0.8, surrogate=surrogate, closed_form=closed_form)
    ref = 1 - _bounds_f(s, y, 0.8, surrogate)
    assert float(loss(s, y)) == pytest.approx(ref, abs=1e-9)
    assert loss.last_path == ("closed-form" if closed_form else "solver")
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (s.clone().requires_grad_(),))


@pytest.mark.parametrize("closed_form", [True, False])
def test_negative_hinge_bound_keeps_a_gradient(closed_form):
    """TP_l < 0: the optimum is at t = t_min = 1/(2|P| + FP_u), F* = 2 TP_l t_min < 0
    (HiGHS agrees), so the loss is above 1 and its gradient raises every positive below
    s = eps (the two far below included) on either path; it warns of nothing. Without the
    floor of t the optimum would be F* = 0 at t = 0, flat: no gradient at all."""
    s = torch.tensor([-9.0, -7.0, 0.5, -1.5, 2.0], dtype=F64, requires_grad=True)
    y = torch.tensor([1, 1, 1, 0, 0])
    tp, fp = -4.0 - 3.0 + 0.75, 1.5  # h = 1/2 + s/2: -4, -3, 0.75 | -0.25, 1.5
    want = 2 * tp / (2 * 3 + fp)
    assert -_linprog(fscore(s.detach(), y, 1.0, "hinge")).fun == pytest.approx(want, abs=1e-12)
    loss = FScoreLoss(surrogate="hinge", closed_form=closed_form)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = loss(s, y)
    v.backward()
    assert float(v.detach()) == pytest.approx(1 - want, abs=1e-9)
    # d(1 - 2 TP_l t_min)/ds_i = -2 t_min (1/2) on each positive with h_i < 1; on a
    # negative with h_j > 0, through t_min: 2 TP_l t_min^2 (1/2), which raises it too
    t_min = 1 / (2 * 3 + fp)
    assert s.grad[:3].tolist() == pytest.approx([-t_min] * 3, abs=1e-9)
    assert s.grad[3:].tolist() == pytest.approx([0.0, tp * t_min ** 2], abs=1e-9)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (s.detach().clone().requires_grad_(),))


def test_surrogate_is_checked():
    s, y = _batch(6, 1.0, 0)
    with pytest.raises(ValueError, match="surrogate must be one of"):
        FScoreLoss(surrogate="logistic")
    with pytest.raises(ValueError, match="surrogate must be one of"):
        fscore(s, y, 1.0, "Hinge")
    np.testing.assert_equal(fscore(s, y, 1.0).c[0].numpy(),
                            fscore(s, y, 1.0, "hinge").c[0].numpy())


def test_train_losses_pick_the_surrogate():
    from benchmarks.train_objectives import LOSSES, make_objective
    for name, sur in [("fscore", "ramp"), ("fscore-hinge", "hinge"),
                      ("fscore-hinge-negatives", "hinge-negatives")]:
        assert name in LOSSES
        fn = make_objective(name, eps=0.5).loss_fn
        assert isinstance(fn, FScoreLoss) and (fn.surrogate, fn.eps) == (sur, 0.5)
    # the hinge trains at the validation-chosen eps 0.5 (DEFAULT_EPS), the ramp at the
    # class default 1
    assert make_objective("fscore-hinge").loss_fn.eps == 0.5
    assert make_objective("fscore").loss_fn.eps == 1.0


def test_float32_start_through_the_solver_certified_at_once():
    """The closed-form start of the hinge LP in float32 (4,096 scores) is certified without
    a Newton step. A positive's w <= t, tight at the start only by the tightness test's
    absolute floor beside its binding w <= a t (a just below 1), once displaced the binding
    row in the start's polish (7 Newton steps followed); the answer is float64's."""
    from sparselp import LinearProgram, Status
    g = torch.Generator().manual_seed(0)
    s = torch.rand(4096, generator=g, dtype=torch.float32)
    y = torch.zeros(4096, dtype=torch.long)
    y[:819] = 1
    funs = []
    for dt in (torch.float32, torch.float64):
        d = fscore_data(s.to(dt), y, 0.5, "hinge")
        lp = LinearProgram(c=d.c, A=d.A, b=d.b, A_eq=d.A_eq, b_eq=d.b_eq)
        sol = solve(lp, warm_start=d.start, linear_solver="structured")
        assert sol.status == Status.OPTIMAL and sol.nit == 0, (dt, sol.nit)
        funs.append(float(sol.fun))
    assert funs[0] == pytest.approx(funs[1], rel=1e-5)
