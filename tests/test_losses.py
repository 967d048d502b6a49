"""Losses: equal to the paper's construction and to closed forms; edge cases."""
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from sparselp.losses import AUCLoss, FScoreLoss, MultiClassAUCLoss, PrecisionAtRecallLoss

F64 = torch.float64


def _binary(n=24, seed=0, margin=None):
    """Scores whose pair gaps avoid 0 and eps (nondegenerate LPs), and balanced labels."""
    g = torch.Generator().manual_seed(seed)
    if margin is None:
        s = torch.rand(n, generator=g, dtype=F64)
    else:  # every pair gap a multiple of `margin`
        s = torch.randperm(n, generator=g).to(F64) * margin
    y = torch.zeros(n, dtype=torch.long)
    y[torch.randperm(n, generator=g)[: n // 3]] = 1
    return s, y


def _hinge(s, y, eps):
    pos, neg = s[y == 1], s[y == 0]
    return (eps - (pos[:, None] - neg[None, :])).clamp_min(0)


def test_auc_loss_equals_the_papers_construction():
    s, y = _binary()
    eps = 0.05
    z = _hinge(s, y, eps)  # the closed-form LP solution z_ij = max(0, eps - (s_i - s_j))
    expected = 1 - (eps - z).clamp_min(0).mean() / eps
    assert float(AUCLoss(eps=eps, surrogate="paper")(s, y)) == pytest.approx(float(expected),
                                                                         rel=1e-10)
    assert float(AUCLoss(eps=eps, surrogate="hinge")(s, y)) == pytest.approx(
        float(z.mean()), rel=1e-10)


def test_auc_loss_is_one_minus_sklearn_auc_with_clear_margins():
    eps = 0.01
    s, y = _binary(n=40, seed=1, margin=2 * eps)
    assert float(AUCLoss(eps=eps, surrogate="paper")(s, y)) == pytest.approx(
        1 - roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("surrogate", ["paper", "hinge"])
def test_auc_loss_gradcheck_and_closed_form_gradient(surrogate):
    s, y = _binary(n=12, seed=2)
    eps = 0.3
    loss = AUCLoss(eps=eps, surrogate=surrogate)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (s.clone().requires_grad_(),))
    t = s.clone().requires_grad_()
    loss(t, y).backward()
    t2 = s.clone().requires_grad_()
    z = _hinge(t2, y, eps)
    ref = 1 - (eps - z).clamp_min(0).mean() / eps if surrogate == "paper" else z.mean()
    ref.backward()
    torch.testing.assert_close(t.grad, t2.grad, rtol=1e-9, atol=1e-12)


def test_multiclass_auc_loss_closed_form_and_gradcheck():
    g = torch.Generator().manual_seed(3)
    S = torch.randn(12, 3, generator=g, dtype=F64)
    Y = torch.arange(12) % 3
    eps = 0.4
    expected = 0.0
    for i in range(3):
        for j in range(i + 1, 3):
            u = S[:, i] - S[:, j]
            expected += (eps - (u[Y == i][:, None] - u[Y == j][None, :])).clamp_min(0).mean() / 3
    loss = MultiClassAUCLoss(3, eps=eps)
    assert float(loss(S, Y)) == pytest.approx(float(expected), rel=1e-9)
    assert torch.autograd.gradcheck(lambda t: loss(t, Y), (S.clone().requires_grad_(),),
                                    fast_mode=True)


def test_fscore_loss_closed_form_f1_and_gradcheck():
    g = torch.Generator().manual_seed(4)
    s = torch.randn(20, generator=g, dtype=F64) * 0.4
    y = (torch.rand(20, generator=g) < 0.5).long()
    u = torch.clamp(0.5 + s / 2, min=0.0, max=1.0)  # the ramp relaxation, eps = 1
    F = 2 * u[y == 1].sum() / (u.sum() + (y == 1).sum())
    loss = FScoreLoss(eps=1.0, surrogate="ramp")
    assert float(loss(s, y)) == pytest.approx(1 - float(F), rel=1e-9)
    assert torch.autograd.gradcheck(lambda t: loss(t, y), (s.clone().requires_grad_(),))
    clear = s + torch.sign(s) * 1.0
    assert float(loss(clear, y)) == pytest.approx(1 - f1_score(y, clear > 0), abs=1e-9)


def test_precision_at_recall_loss_gradcheck_and_backends_agree():
    s, y = _binary(n=16, seed=5)
    s = s * 3
    loss = PrecisionAtRecallLoss(recall=0.7, eps=0.5)
    ref = PrecisionAtRecallLoss(recall=0.7, eps=0.5, backend="highs")
    assert float(loss(s, y)) == pytest.approx(float(ref(s, y)), rel=1e-7)
    assert torch.autograd.gradcheck(lambda t: ref(t, y), (s.clone().requires_grad_(),))


LOSSES = [(AUCLoss, {}), (FScoreLoss, {}), (PrecisionAtRecallLoss, {})]


@pytest.mark.parametrize("cls,kw", LOSSES)
@pytest.mark.parametrize("labels,which", [([1, 1, 1, 1], "negative"), ([0, 0, 0, 0], "positive")])
def test_missing_class_warns_and_returns_graph_keeping_zero(cls, kw, labels, which):
    s = torch.randn(4, dtype=F64, requires_grad=True)
    with pytest.warns(UserWarning, match=f"no {which}"):
        loss = cls(**kw)(s, torch.tensor(labels))
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(s.grad, torch.zeros_like(s))


def test_multiclass_missing_class_zero_or_skip():
    S = torch.randn(6, 3, dtype=F64, requires_grad=True)
    Y = torch.tensor([0, 1, 0, 1, 0, 1])
    with pytest.warns(UserWarning, match=r"no sample of class\(es\) \[2\]"):
        loss = MultiClassAUCLoss(3)(S, Y)
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    loss.backward()
    with pytest.warns(UserWarning, match="left out"):
        skipped = MultiClassAUCLoss(3, missing="skip")(S, Y)
    assert float(skipped.detach()) > 0


@pytest.mark.parametrize("cls,kw", LOSSES + [(MultiClassAUCLoss, {"num_classes": 2})])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_scores_raise(cls, kw, bad):
    s = torch.tensor([0.1, 0.5, bad, 0.2], dtype=F64)
    if cls is MultiClassAUCLoss:
        s = torch.stack([s, -s], 1)
    with pytest.raises(ValueError, match="NaN or Inf"):
        cls(**kw)(s, torch.tensor([0, 1, 0, 1]))


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cls,kw", LOSSES)
def test_half_precision_is_computed_in_float32(cls, kw, half):
    s, y = _binary(n=12, seed=6)
    s16 = s.to(half).requires_grad_()
    loss = cls(**kw)(s16, y)
    assert loss.dtype == torch.float32
    ref = cls(**kw)(s16.detach().float(), y)
    assert float(loss.detach()) == pytest.approx(float(ref), rel=1e-5, abs=1e-6)
    loss.backward()
    assert s16.grad.dtype == half
    with pytest.warns(UserWarning):
        zero = cls(**kw)(s16, torch.ones(12, dtype=torch.long))
    assert zero.dtype == torch.float32


def test_bad_loss_arguments():
    with pytest.raises(ValueError, match="surrogate must be"):
        AUCLoss(surrogate="ramp")
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        MultiClassAUCLoss(1)
    with pytest.raises(ValueError, match="scores must have 3 columns"):
        MultiClassAUCLoss(3)(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        MultiClassAUCLoss(3)(torch.randn(4, 3), torch.tensor([0, 1, 3, 1]))


@pytest.mark.parametrize("strict", [False, True])
def test_uncertified_solve_warns_with_residuals_or_raises_when_strict(strict):
    """An LP stopped by its iteration limit never passes silently."""
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(40, generator=g, dtype=torch.float64, requires_grad=True)
    labels = (torch.arange(40) % 5 == 0).long()
    loss = FScoreLoss(options={"max_iter": 1, "polish": False}, strict=strict,
                      closed_form=False)  # the solver, not the certified closed form
    if strict:
        with pytest.raises(RuntimeError, match="strict.*ITERATION_LIMIT.*residual"):
            loss(scores, labels)
        return
    with pytest.warns(RuntimeWarning, match="ITERATION_LIMIT.*residual"):
        value = loss(scores, labels)
    value.backward()
    assert torch.isfinite(scores.grad).all()
    # The certified solve of the same loss is silent.
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FScoreLoss()(scores.detach(), labels)


def test_layer_strict_option():
    from sparselp.layer import LPLayer
    c = torch.tensor([1.0, 1.0], dtype=torch.float64)
    A = -torch.eye(2, dtype=torch.float64)
    b = torch.tensor([-1.0, -2.0], dtype=torch.float64)
    # One Newton step from a soft start (sigma0 = 1): not certified. (From the default
    # start, 10/tol in float64, one step certifies this LP.)
    with pytest.raises(RuntimeError, match="strict"):
        LPLayer(strict=True, options={"max_iter": 1, "polish": False, "sigma0": 1.0})(c, A, b)
    torch.testing.assert_close(LPLayer(strict=True)(c, A, b), torch.tensor([1.0, 2.0],
                                                                            dtype=torch.float64))


@pytest.mark.parametrize("cls,kw", LOSSES)
def test_binary_losses_take_n_by_1_scores_and_labels(cls, kw):
    """A network's single output (n, 1) is the (n,) column: same value and gradient; (n, 2)
    is still refused, naming the shapes."""
    s, y = _binary(n=12, seed=3)
    col = s[:, None].clone().requires_grad_()
    flat = s.clone().requires_grad_()
    a, b = cls(**kw)(col, y[:, None]), cls(**kw)(flat, y)
    torch.testing.assert_close(a, b)
    a.backward(), b.backward()
    torch.testing.assert_close(col.grad[:, 0], flat.grad)
    with pytest.raises(ValueError, match=r"scores must have shape \(n,\) or \(n, 1\)"):
        cls(**kw)(torch.randn(12, 2, dtype=F64), y)
