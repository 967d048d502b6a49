"""The runtime benchmark: the blackbox (HiGHS) baseline, cvxpylayers, and the rows it writes."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from benchmarks import runtime
from benchmarks.runtime import blackbox_auc_loss, closed_form_auc_loss

HAS_CVXPYLAYERS = importlib.util.find_spec("cvxpylayers") is not None


def _clear_margin_scores(n_pos=5, n_neg=6, seed=0):
    """Scores whose pair gaps all stay at least 0.05 away from the kink at eps = 1, so the
    LP value is differentiable there and finite differences are meaningful."""
    g = torch.Generator().manual_seed(seed)
    while True:
        s = torch.randn(n_pos + n_neg, generator=g, dtype=torch.float64)
        gaps = s[:n_pos, None] - s[None, n_pos:]
        if ((gaps - 1.0).abs() > 0.05).all():
            break
    y = torch.cat([torch.ones(n_pos), torch.zeros(n_neg)]).long()
    return s, y


def _value_and_grad(fn, s, y):
    s = s.clone().requires_grad_(True)
    v = fn(s, y)
    v.backward()
    return float(v.detach()), s.grad


def test_blackbox_value_and_gradient_equal_closed_form():
    s, y = _clear_margin_scores()
    (v1, g1), (v2, g2) = (_value_and_grad(f, s, y) for f in (blackbox_auc_loss,
                                                              closed_form_auc_loss))
    assert v1 == pytest.approx(v2, rel=1e-9, abs=1e-12)
    torch.testing.assert_close(g1, g2, rtol=1e-8, atol=1e-10)


def test_blackbox_loss_passes_gradcheck():
    # The value -b^T v*(b) is smooth away from the kinks; the perturbed-solve backward must
    # reproduce its exact derivative for 0 < lam < 1.
    s, y = _clear_margin_scores(3, 4, seed=1)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: blackbox_auc_loss(t, y), (s,), eps=1e-6,
                                    atol=1e-7)


def test_blackbox_backward_performs_one_perturbed_solve(monkeypatch):
    calls = []
    real = runtime._highs_dual

    def counting(c, A, b):
        calls.append(b.copy())
        return real(c, A, b)
    monkeypatch.setattr(runtime, "_highs_dual", counting)
    s, y = _clear_margin_scores(3, 3)
    s.requires_grad_(True)
    blackbox_auc_loss(s, y, lam=0.5).backward()
    assert len(calls) == 2
    torch.testing.assert_close(torch.as_tensor(calls[1]), 0.5 * torch.as_tensor(calls[0]))


def test_blackbox_rejects_lambda_outside_unit_interval():
    s, y = _clear_margin_scores(2, 2)
    with pytest.raises(ValueError, match=r"lam must lie in \(0, 1\)"):
        blackbox_auc_loss(s, y, lam=1.5)


@pytest.mark.skipif(not HAS_CVXPYLAYERS, reason="cvxpylayers is not installed")
def test_cvxpylayers_matches_closed_form_loosely():
    s, y = _clear_margin_scores(4, 4)
    fn = runtime._cvxpy_loss_factory(16, 1.0)
    (v1, g1), (v2, g2) = (_value_and_grad(f, s, y) for f in (fn, closed_form_auc_loss))
    # A conic interior-point solver: accurate to its own tolerance, not to machine precision.
    assert v1 == pytest.approx(v2, rel=1e-4, abs=1e-6)
    torch.testing.assert_close(g1, g2, rtol=1e-3, atol=1e-4)


def test_run_rows_cover_every_method_with_reasons():
    rows = runtime.run(batches=(8, 12), repeats=1, max_cvxpy_pairs=16, progress=False)
    assert [r["batch"] for r in rows] == [8] * 4 + [12] * 4
    by = {(r["method"], r["batch"]): r for r in rows}
    for b in (8, 12):
        assert by[("closed", b)]["status"] == "ok"
        assert by[("blackbox", b)]["status"] == "ok"
        assert by[("blackbox", b)]["grad_rel_err"] < 1e-8
        assert by[("blackbox", b)]["forward_s"] > 0 and by[("blackbox", b)]["backward_s"] > 0
    # 36 pairs at batch 12 > max_cvxpy_pairs = 16: skipped with the reason.
    assert by[("cvxpylayers", 12)]["status"] == ("skipped" if HAS_CVXPYLAYERS else
                                                 "unavailable")
    if HAS_CVXPYLAYERS:
        assert "max_cvxpy_pairs" in by[("cvxpylayers", 12)]["error"]
        assert by[("cvxpylayers", 8)]["grad_rel_err"] < 1e-3
    ours = by[("ours", 8)]
    assert ours["status"] == "ok", ours["error"]
    assert ours["loss_rel_err"] < 1e-5 and ours["grad_rel_err"] < 1e-4


def test_ratios_are_relative_to_ours():
    rows = [{"method": "ours", "batch": 128, "status": "ok", "total_s": 0.5},
            {"method": "blackbox", "batch": 128, "status": "ok", "total_s": 5.0},
            {"method": "cvxpylayers", "batch": 128, "status": "skipped"}]
    assert runtime.ratios(rows, 128) == {"blackbox": 10.0}
    assert runtime.ratios(rows[1:], 128) == {}


def test_main_writes_csv(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert runtime.main(["--batches", "6", "--methods", "closed", "blackbox", "--repeats", "1",
                         "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert out.read_text().count("\n") == 3  # header and two rows
