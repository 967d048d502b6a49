"""Statistics and contracts of the sketch operators (in the manner of sklearn's
test_random_projection.py: test the distribution, not exact values)."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from sketching.gaussian import GaussianSketch
from sketching.sampling import RowSampler, leverage_scores
from sketching.sparse import CountSketch, SparseSignSketch
from sketching.srht import SRHTSketch, fwht, hadamard_rows

DT = torch.float64




def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _lev_probs(m, seed=123):
    X = torch.randn(m, 3, generator=_gen(seed), dtype=DT)
    X[0] *= 30  # one high-leverage row
    lev = leverage_scores(X, method="exact")
    return lev / lev.sum() + 1.0 / m  # skewed, but no row rarer than 1/(2m)


SKETCHES = {
    "gaussian": lambda s, m, g: GaussianSketch(s, m, generator=g),
    "srht": lambda s, m, g: SRHTSketch(s, m, generator=g),
    "countsketch": lambda s, m, g: CountSketch(s, m, generator=g),
    "sparse_sign": lambda s, m, g: SparseSignSketch(s, m, generator=g, nnz_per_col=4),
    "uniform": lambda s, m, g: RowSampler(s, m, generator=g),
    "weighted": lambda s, m, g: RowSampler(s, m, generator=g, probabilities=_lev_probs(m)),
}
KINDS = sorted(SKETCHES)


@pytest.mark.parametrize("kind", KINDS)
def test_expectation_of_gram_is_identity(kind):
    """E[S^T S] = I: the mean over many draws is within 5 standard errors entrywise."""
    s, m, draws = 8, 24, 500
    g = _gen(0)
    grams = torch.stack([(lambda D: D.T @ D)(SKETCHES[kind](s, m, g).to_dense())
                         for _ in range(draws)])
    mean = grams.mean(0)
    se = grams.std(0) / math.sqrt(draws)
    assert float(se.max()) < 0.15, "too noisy to say anything"
    err = (mean - torch.eye(m, dtype=DT)).abs()
    assert bool((err <= 5 * se + 1e-10).all()), f"max |E[S^T S] - I| = {float(err.max()):.3g}"


def _distortion(S, U):
    sv = torch.linalg.svdvals(S @ U)
    return float(torch.maximum(sv.max() - 1, 1 - sv.min()))


@pytest.mark.parametrize("kind", KINDS)
def test_subspace_embedding_of_random_subspaces(kind):
    """Singular values of S U in [1 - eps, 1 + eps] for s a modest multiple of dim U."""
    m, d, eps = 2000, 5, 0.5
    g = _gen(1)
    ok = 0
    dist_small, dist_big = [], []
    for _ in range(10):
        U, _ = torch.linalg.qr(torch.randn(m, d, generator=g, dtype=DT))
        dist_big.append(_distortion(SKETCHES[kind](40 * d, m, g), U))
        dist_small.append(_distortion(SKETCHES[kind](4 * d, m, g), U))
        ok += dist_big[-1] <= eps
    assert ok >= 9, f"{kind}: only {ok}/10 draws within eps={eps}: {dist_big}"
    # More rows, less distortion (sqrt(d/s) scaling: 10x more rows, ~3x less distortion).
    assert np.median(dist_big) < 0.6 * np.median(dist_small)


def test_leverage_sampling_embeds_a_coherent_subspace_where_uniform_fails():
    """A subspace containing e_0 has leverage 1 on row 0: uniform sampling misses it."""
    m, d, s = 4000, 4, 80
    g = _gen(2)
    U, _ = torch.linalg.qr(torch.randn(m, d, generator=g, dtype=DT))
    U[:, 0] = 0
    U[0, 0] = 1
    U, _ = torch.linalg.qr(U)
    uni = [_distortion(RowSampler(s, m, generator=g), U) for _ in range(10)]
    lev = [_distortion(RowSampler.from_leverage_scores(U, s, generator=g, method=meth), U)
           for meth in ("exact", "approx") for _ in range(5)]
    assert min(uni) > 0.9  # row 0 sampled with probability ~2%: sigma_min ~ 0
    assert max(lev) < 0.6


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layout", ["dense", "coo", "csr", "vector"])
def test_application_matches_dense_matrix(kind, layout):
    m, s, k = 300, 20, 4
    S = SKETCHES[kind](s, m, _gen(3))
    D = S.to_dense()
    assert D.shape == (s, m)
    X = torch.randn(m, k, generator=_gen(4), dtype=DT)
    X[torch.rand(m, generator=_gen(5)) < 0.6] = 0
    if layout == "vector":
        X = X[:, 0]
    Xin = {"dense": X, "vector": X, "coo": X.to_sparse() if X.dim() == 2 else X,
           "csr": X.to_sparse_csr() if X.dim() == 2 else X}[layout]
    out = S @ Xin
    assert out.layout == torch.strided
    assert out.shape == ((s, k) if X.dim() == 2 else (s,))
    torch.testing.assert_close(out, D @ X, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_dtype_follows_input_and_seed_fixes_the_sketch(kind):
    m, s = 100, 10
    X = torch.randn(m, 3, generator=_gen(6), dtype=DT)
    a = SKETCHES[kind](s, m, _gen(7)) @ X
    b = SKETCHES[kind](s, m, _gen(7)) @ X
    c = SKETCHES[kind](s, m, _gen(8)) @ X
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    S = SKETCHES[kind](s, m, _gen(7))
    out32 = S @ X.float()
    assert out32.dtype == torch.float32
    if kind != "gaussian":  # the Gaussian entries are drawn in the input's dtype
        torch.testing.assert_close(out32.double(), a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_apply_rows_equals_sketch_of_selected_weighted_rows(kind):
    M, k = 500, 3
    X = torch.randn(M, k, generator=_gen(9), dtype=DT)
    rows = torch.randperm(M, generator=_gen(10))[:200]
    w = torch.rand(200, generator=_gen(11), dtype=DT)
    S = SKETCHES[kind](30, 200, _gen(12))
    torch.testing.assert_close(S.apply_rows(X, rows, w), S @ (w[:, None] * X[rows]),
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"rows must have shape \(200,\)"):
        S.apply_rows(X, rows[:10])


def test_gaussian_sparse_input_across_column_blocks():
    S = GaussianSketch(8192, 1500, generator=_gen(13))  # block of 512 columns: 3 blocks
    assert S.block < 1500
    X = torch.randn(1500, 3, generator=_gen(14), dtype=DT)
    X[torch.rand(1500, generator=_gen(15)) < 0.8] = 0
    X[512:1024] = 0  # an empty block
    torch.testing.assert_close(S @ X.to_sparse(), S @ X, rtol=1e-12, atol=1e-10)


def test_fwht_is_the_sylvester_hadamard_transform():
    for M in (1, 2, 16, 64):
        H = torch.from_numpy(scipy.linalg.hadamard(M)).to(DT)
        X = torch.randn(M, 3, generator=_gen(16), dtype=DT)
        torch.testing.assert_close(fwht(X), H @ X)
        torch.testing.assert_close(hadamard_rows(torch.arange(M), M), H)
        Y = X.clone()
        fwht(Y, inplace=True)
        torch.testing.assert_close(Y, H @ X)
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(torch.zeros(6, 2))


def test_srht_is_padded_hadamard_with_signs_and_sampled_rows():
    m, s = 100, 12
    S = SRHTSketch(s, m, generator=_gen(17))
    M = S.padded
    assert M == 128
    H = torch.from_numpy(scipy.linalg.hadamard(M)).to(DT)[:, :m]
    expected = H[S.rows] * S.signs.to(DT) / math.sqrt(s)
    torch.testing.assert_close(S.to_dense(), expected)
    assert len(set(S.rows.tolist())) == s  # without replacement


def test_sparse_sign_columns_have_exactly_p_nonzeros_in_distinct_rows():
    S = SparseSignSketch(30, 200, generator=_gen(18), nnz_per_col=7).to_dense()
    assert bool(((S != 0).sum(0) == 7).all())
    torch.testing.assert_close((S * S).sum(0), torch.ones(200, dtype=DT))
    C = CountSketch(30, 200, generator=_gen(19)).to_dense()
    assert bool(((C != 0).sum(0) == 1).all())


def test_leverage_scores_exact_and_approximate():
    g = _gen(20)
    X = torch.randn(3000, 6, generator=g, dtype=DT) * torch.logspace(0, 2, 6, dtype=DT)
    X[:, 5] = X[:, 0] + X[:, 1]  # rank 5
    exact = leverage_scores(X, method="exact")
    Q, _ = torch.linalg.qr(X[:, :5])
    torch.testing.assert_close(exact, (Q ** 2).sum(1))
    assert abs(float(exact.sum()) - 5) < 1e-8
    approx = leverage_scores(X, method="approx", generator=g)
    ratio = approx / exact
    assert 0.25 < float(ratio.min()) and float(ratio.max()) < 4
    assert abs(float(approx.sum()) - 5) < 1.5
    torch.testing.assert_close(leverage_scores(X.to_sparse_csr(), "exact"), exact)


@pytest.mark.parametrize("bad, match", [
    (dict(sketch_size=0), "sketch_size must be a positive integer"),
    (dict(sketch_size=2.5), "sketch_size must be a positive integer"),
    (dict(n_rows=-3), "n_rows must be a positive integer"),
])
@pytest.mark.parametrize("cls", [GaussianSketch, SRHTSketch, CountSketch, SparseSignSketch,
                                 RowSampler])
def test_bad_sizes_are_rejected(cls, bad, match):
    kw = dict(sketch_size=4, n_rows=10) | bad
    with pytest.raises(ValueError, match=match):
        cls(kw["sketch_size"], kw["n_rows"], generator=0)


def test_bad_arguments_name_the_argument():
    S = CountSketch(4, 10, generator=0)
    with pytest.raises(ValueError, match="n_rows=10 rows; got X of shape \\(9, 2\\)"):
        S @ torch.zeros(9, 2)
    with pytest.raises(ValueError, match="shape \\(n_rows,\\) or \\(n_rows, k\\)"):
        S @ torch.zeros(10, 2, 2)
    with pytest.raises(TypeError, match="floating-point"):
        S @ torch.zeros(10, 2, dtype=torch.long)
    with pytest.raises(TypeError, match="generator must be"):
        CountSketch(4, 10, generator="seed")
    with pytest.raises(ValueError, match="padded length"):
        SRHTSketch(17, 16, generator=0)
    with pytest.raises(ValueError, match="nnz_per_col must be"):
        SparseSignSketch(4, 10, generator=0, nnz_per_col=5)
    with pytest.raises(ValueError, match="probabilities must have shape"):
        RowSampler(4, 10, generator=0, probabilities=torch.ones(9))
    with pytest.raises(ValueError, match="probabilities must be finite, nonnegative"):
        RowSampler(4, 10, generator=0, probabilities=-torch.ones(10))
    with pytest.raises(ValueError, match="uniform_mix must be"):
        RowSampler.from_leverage_scores(torch.ones(10, 2), 4, uniform_mix=2.0)
    with pytest.raises(ValueError, match="method must be 'approx' or 'exact'"):
        leverage_scores(torch.ones(10, 2), method="qr")
    with pytest.raises(ValueError, match="to_dense\\(\\) would allocate"):
        CountSketch(2 ** 14, 2 ** 14, generator=0).to_dense()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_matches_cpu(kind):
    S = SKETCHES[kind](16, 200, _gen(21))
    X = torch.randn(200, 3, generator=_gen(22), dtype=DT)
    out = S @ X.cuda()
    assert out.device.type == "cuda"
    if kind != "gaussian":  # Gaussian entries depend on the device's generator
        torch.testing.assert_close(out.cpu(), S @ X)
