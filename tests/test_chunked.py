"""Chunked AUC: the same value and gradient as the one-shot LP, block by block."""
import pytest
import torch

from sparselp.chunked import BlockwiseSum, chunked_auc_loss, positive_blocks
from sparselp.losses import AUCLoss

F64 = torch.float64


def _batch(n, pos_frac, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, generator=g, dtype=F64).to(dtype)
    y = torch.zeros(n, dtype=torch.long)
    y[torch.randperm(n, generator=g)[: max(1, round(n * pos_frac))]] = 1
    return s, y


def _value_and_grad(loss, s, y):
    s = s.clone().requires_grad_(True)
    v = loss(s, y)
    v.backward()
    return v.detach(), s.grad


@pytest.mark.parametrize("surrogate,eps", [("paper", 0.05), ("hinge", 0.3)])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
# one positive per block (block < |N|), a prime that cuts no row evenly, more than all pairs
@pytest.mark.parametrize("block_size", [1, 7, 97, 10**9])
def test_chunked_matches_the_one_shot_loss(surrogate, eps, dtype, tol, block_size):
    s, y = _batch(41, 0.3, seed=block_size % 5, dtype=dtype)
    v0, g0 = _value_and_grad(AUCLoss(eps=eps, surrogate=surrogate), s, y)
    v1, g1 = _value_and_grad(AUCLoss(eps=eps, surrogate=surrogate, block_size=block_size),
                             s, y)
    assert abs(float(v1) - float(v0)) <= tol
    assert float((g1 - g0).abs().max()) <= tol
    assert v1.dtype == v0.dtype and g1.dtype == g0.dtype
    # the gradient is not trivially zero: some pairs lie inside the margin
    assert float(g0.abs().max()) > 0


def test_chunked_path_is_the_one_taken():
    """block_size smaller than the pair count goes through BlockwiseSum, one solve a block."""
    s, y = _batch(30, 0.5, 0, F64)
    calls = []
    import sparselp.chunked as ch
    real = ch.binary_auc_pairs_data

    def spy(scores, pos, neg, eps, weight, *rest):
        calls.append((pos.numel(), neg.numel()))
        return real(scores, pos, neg, eps, weight, *rest)

    ch.binary_auc_pairs_data = spy
    try:
        AUCLoss(eps=0.1, block_size=40)(s, y)
    finally:
        ch.binary_auc_pairs_data = real
    # 15 negatives: 40 // 15 = 2 positives a block, 15 positives -> 8 blocks
    assert calls == [(2, 15)] * 7 + [(1, 15)]


def test_positive_blocks_cover_every_positive_once():
    pos = torch.arange(10, 23)
    for size, n_neg in [(1, 5), (5, 5), (11, 5), (1000, 5), (3, 0)]:
        blocks = positive_blocks(pos, n_neg, size)
        assert torch.equal(torch.cat(blocks), pos)
        assert all(b.numel() >= 1 for b in blocks)
        assert all(b.numel() * n_neg <= max(size, n_neg) for b in blocks)


def test_blockwise_sum_gradcheck():
    """BlockwiseSum as an autograd Function: float64 gradcheck against finite differences
    (a smooth block function, so that the check is meaningful everywhere)."""
    w = torch.linspace(0.5, 2.0, 9, dtype=F64)

    def block_fn(x, idx):
        return (w[idx] * x[idx].sin() * x[idx]).sum() + x[idx].prod()

    blocks = [torch.tensor([0, 1, 2]), torch.tensor([3]), torch.tensor([4, 5, 6, 7, 8]),
              torch.tensor([0, 4])]  # blocks may overlap: the sum is what counts
    x = torch.randn(9, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: BlockwiseSum.apply(t, block_fn, blocks), (x,))
    expected = sum(block_fn(x, b) for b in blocks)
    assert float(BlockwiseSum.apply(x, block_fn, blocks).detach()) == pytest.approx(float(expected.detach()),
                                                                            rel=1e-14)


def test_chunked_auc_loss_gradcheck_hinge():
    """The chunked hinge loss against finite differences, with gaps clear of the kinks."""
    s = torch.tensor([0.9, 0.1, 0.7, 0.35, 0.55, 0.05], dtype=F64, requires_grad=True)
    y = torch.tensor([1, 0, 1, 0, 0, 1])
    assert torch.autograd.gradcheck(
        lambda t: chunked_auc_loss(t, y, 0.3, "hinge", 2, {}), (s,), atol=1e-6)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_block_size_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="block_size"):
        AUCLoss(block_size=bad)


def test_chunked_missing_class_still_gives_the_zero_loss():
    s = torch.rand(8, dtype=F64, requires_grad=True)
    with pytest.warns(UserWarning, match="no positive"):
        v = AUCLoss(block_size=2)(s, torch.zeros(8, dtype=torch.long))
    v.backward()
    assert float(v.detach()) == 0.0 and torch.equal(s.grad, torch.zeros(8, dtype=F64))


def test_chunked_passes_the_layer_options_to_every_block(monkeypatch):
    """strict=, options= and backend= reach each block's solve (the layer's tests cover
    what they do there)."""
    import sparselp.chunked as ch
    seen = []
    real = ch.lp_solve

    def spy(*args, **kwargs):
        seen.append({k: kwargs.get(k) for k in ("strict", "options", "backend")})
        return real(*args, **kwargs)

    monkeypatch.setattr(ch, "lp_solve", spy)
    s, y = _batch(20, 0.5, 1, F64)
    AUCLoss(eps=0.1, block_size=10, strict=True, options={"tol": 1e-9})(s, y)
    assert len(seen) == 10
    assert all(k == {"strict": True, "options": {"tol": 1e-9}, "backend": "sparselp"}
               for k in seen)
