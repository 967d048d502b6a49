"""benchmarks/batched_lp.py in small: every method agrees with HiGHS and with finite
differences; the active-set gradient it uses for the HiGHS loop is right."""
import numpy as np
import pytest
import torch

from benchmarks import batched_lp


def test_quick_batched_lp(tmp_path):
    rows = batched_lp.main(["--quick", "--out", str(tmp_path / "b.csv")])
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["method"] for r in ok} >= {"ours", "highs"}
    for r in ok:
        assert r["obj_err"] < 1e-4, r  # cvxpylayers (SCS) is the loosest
        assert r["fd_err"] < 1e-5, r
        assert r["forward_s"] > 0 and r["backward_s"] >= 0
    ours = [r for r in ok if r["method"] == "ours"]
    assert all(r["obj_err"] < 1e-8 for r in ours)
    assert {r["device"] for r in rows} == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_quick_batched_lp_on_cuda():
    rows = batched_lp.run(quick=True, methods=("ours", "highs"), device="cuda")
    ours = [r for r in rows if r["method"] == "ours"]
    assert all(r["status"] == "ok" and r["device"] == "cuda" for r in ours), ours
    assert all(r["obj_err"] < 1e-8 and r["fd_err"] < 1e-5 for r in ours)


def test_active_set_gradient_matches_finite_differences():
    c, A, b, w = batched_lp.make_batch(1, 6, seed=3)
    x = batched_lp._highs_one(c[0], A[0], b[0]).x
    g = batched_lp._active_grad(A[0], b[0], x, w)
    assert np.abs(g).max() > 0  # some row is tight
    err = batched_lp._fd_error(c, A, b, w, g[None], k=12)
    assert err < 1e-6
    assert batched_lp._fd_error(c, A, b, w, 0 * g[None] + 1.0, k=12) > 1e-3
