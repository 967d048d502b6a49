"""Row-sharded coupled LPs (sparselp.sharded, formulations.ratio_shards), in one process:
the shards' proposed optimum against HiGHS, the partition of value and gradient over the
shards, gradcheck, and the certificate refusing wrong proposals. The multi-process runs are
in test_distributed.py."""
import pytest
import torch

from sparselp.formulations import fscore, precision_at_recall
from sparselp.formulations.ratio_shards import fscore_shard, precision_at_recall_shard
from sparselp.losses import FScoreLoss, PrecisionAtRecallLoss
from sparselp.reference import highs_solve
from sparselp.sharded import certify, lagrangian_partial

F64 = torch.float64


def _batch(n, scale, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    s = ((torch.rand(n, generator=g, dtype=F64) - 0.5) * scale).to(dtype)
    y = (torch.rand(n, generator=g) < 0.3).long()
    y[:2] = torch.tensor([0, 1])
    return s, y


# (name, shard builder, whole LP, loss, constant added to the LP's value by the loss)
CASES = {
    "fscore": (lambda s, y, lo, hi: fscore_shard(s, y, 0.5, lo, hi),
               lambda s, y: fscore(s, y, 0.5), FScoreLoss(eps=0.5, surrogate="ramp"), 1.0),
    "fscore-hinge": (lambda s, y, lo, hi: fscore_shard(s, y, 0.5, lo, hi, "hinge"),
                     lambda s, y: fscore(s, y, 0.5, "hinge"),
                     FScoreLoss(eps=0.5, surrogate="hinge"), 1.0),
    "fscore-hinge-negatives": (
        lambda s, y, lo, hi: fscore_shard(s, y, 0.5, lo, hi, "hinge-negatives"),
        lambda s, y: fscore(s, y, 0.5, "hinge-negatives"),
        FScoreLoss(eps=0.5, surrogate="hinge-negatives"), 1.0),
    "precision": (lambda s, y, lo, hi: precision_at_recall_shard(s, y, 0.7, 0.5, lo, hi),
                  lambda s, y: precision_at_recall(s, y, 0.7, 0.5),
                  PrecisionAtRecallLoss(recall=0.7, eps=0.5), 0.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("scale", [0.6, 3.0])  # inside the ramps; clipped on both sides
def test_one_shard_is_the_whole_lp_certified_at_highs_optimum(name, scale):
    shard, whole, _, _ = CASES[name]
    for seed in range(3):
        s, y = _batch(37, scale, seed)
        sh = shard(s, y, 0, 37)
        cert = certify(sh)
        assert cert.worst <= 1e-13, cert
        ref = highs_solve(whole(s, y))
        assert cert.objective == pytest.approx(ref.fun[0], abs=1e-9)


@pytest.mark.parametrize("name", sorted(CASES))
def test_shards_partition_value_and_gradient_of_the_loss(name):
    shard, _, loss, const = CASES[name]
    s, y = _batch(41, 2.0, 4)
    t = s.clone().requires_grad_(True)
    ref = loss(t, y)
    ref.backward()
    bounds = [(0, 10), (10, 10), (10, 29), (29, 41)]  # an empty shard among them
    total, grad = 0.0, torch.zeros_like(s)
    for lo, hi in bounds:
        u = s.clone().requires_grad_(True)
        sh = shard(u, y, lo, hi)
        assert sh.b.numel() == 2 * (hi - lo)  # only this shard's rows
        part = lagrangian_partial(sh, F64, len(bounds))
        part.backward()
        total += float(part.detach())
        grad += u.grad
        assert float(u.grad[:lo].abs().sum()) == 0  # its own samples only
        assert float(u.grad[hi:].abs().sum()) == 0
    assert total + const == pytest.approx(float(ref.detach()), abs=1e-13)
    assert float((grad - t.grad).abs().max()) <= 1e-13
    assert float(t.grad.abs().max()) > 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck_of_the_sharded_value(name):
    shard, _, _, _ = CASES[name]
    s, y = _batch(12, 0.6, 2)

    def value(t):
        return sum(lagrangian_partial(shard(t, y, lo, hi), F64, 2)
                   for lo, hi in [(0, 5), (5, 12)])
    assert torch.autograd.gradcheck(value, (s.clone().requires_grad_(True),))


@pytest.mark.parametrize("name", sorted(CASES))
def test_certificate_refuses_a_wrong_proposal(name):
    shard, _, _, _ = CASES[name]
    s, y = _batch(30, 1.0, 6)
    sh = shard(s, y, 0, 30)
    tol = 1e-8
    assert certify(sh).worst <= tol
    x = sh.x.clone()
    x[-1] *= 1.01  # the shared column moved: rows or the global row violated
    assert certify(sh._replace(x=x)).primal > tol
    assert certify(sh._replace(mu=sh.mu * 0.9)).dual > tol
    v = sh.v.clone()
    v[torch.argmax(v)] *= -1  # a negative multiplier
    assert certify(sh._replace(v=v)).dual > tol
    assert certify(sh._replace(v=sh.v * 1.1)).worst > tol


def test_float32_shards_match_the_float32_loss():
    s, y = _batch(300, 2.0, 8, torch.float32)
    for name, (shard, _, loss, const) in CASES.items():
        sh = shard(s, y, 0, 300)
        # float32 entries, the proposal in float64: within float32's round-off of the data
        assert certify(sh).worst <= 1e-7
        part = lagrangian_partial(sh, torch.float32, 1)
        assert part.dtype == torch.float32
        assert float(part) + const == pytest.approx(float(loss(s, y)), abs=1e-6), name


def test_shard_range_and_recall_validation():
    s, y = _batch(8, 1.0, 0)
    for lo, hi in [(-1, 3), (4, 3), (0, 9), (0.0, 3)]:
        with pytest.raises(ValueError, match="lo, hi must be"):
            fscore_shard(s, y, 1.0, lo, hi)
    with pytest.raises(ValueError, match="recall must be"):
        precision_at_recall_shard(s, y, 1.5, 1.0, 0, 8)
    with pytest.raises(ValueError, match="eps must be"):
        fscore_shard(s, y, 0.0, 0, 8)


def _value_and_grad(loss, s, y):
    t = s.clone().requires_grad_(True)
    v = loss(t, y)
    v.backward()
    return float(v.detach()), t.grad


@pytest.mark.parametrize("cls,kw", [(FScoreLoss, dict(eps=0.5, surrogate="ramp")),
                                    (FScoreLoss, dict(eps=0.5, surrogate="hinge")),
                                    (FScoreLoss, dict(eps=0.5, surrogate="hinge-negatives")),
                                    (PrecisionAtRecallLoss, dict(recall=0.7, eps=0.5)),
                                    (PrecisionAtRecallLoss, dict(recall=1.0, eps=0.2))])
def test_closed_form_loss_equals_the_solved_loss(cls, kw):
    """The default path (the certified closed form, no solve) gives the value and the
    gradient of the solver's path (``closed_form=False``), clipped ramps included; in
    float32 it is the float64 answer rounded, where the solver's float32 answer may take
    a row within its round-off of tight as active (a gradient on a slack sample)."""
    for n, scale, seed in [(9, 0.6, 0), (200, 3.0, 1), (2000, 1.0, 2)]:
        s, y = _batch(n, scale, seed)
        fast, slow = cls(**kw), cls(closed_form=False, **kw)
        (v0, g0), (v1, g1) = _value_and_grad(fast, s, y), _value_and_grad(slow, s, y)
        assert fast.last_path == "closed-form" and slow.last_path == "solver"
        assert v0 == pytest.approx(v1, abs=1e-12) and float((g0 - g1).abs().max()) <= 1e-12
        s32 = s.float()
        v32, g32 = _value_and_grad(fast, s32, y)
        v64, g64 = _value_and_grad(fast, s32.double(), y)
        assert v32 == pytest.approx(v64, rel=1e-6)
        assert float((g32 - g64).abs().max()) <= 1e-6 * float(g64.abs().max())
        # the float32 solve is certified to tol 1e-5: its relative gap puts its value
        # within 1e-5 (1 + |p| + |d|) of the optimum, p ~ d the LP's objective (-F* for
        # the F-score, the loss less 1)
        p = v32 - (cls is FScoreLoss)
        assert v32 == pytest.approx(_value_and_grad(slow, s32, y)[0],
                                    abs=1e-5 * (1 + 2 * abs(p)))


def test_other_backends_and_modes_solve():
    s, y = _batch(30, 1.0, 3)
    for kw in (dict(backend="highs"), dict(mode="unrolled"), dict(closed_form=False)):
        loss = FScoreLoss(**kw)
        loss(s, y)
        assert loss.last_path == "solver", kw
    assert FScoreLoss().closed_form_allowed()
