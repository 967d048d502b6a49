"""The optional torch_sparse.SparseTensor input path (runs when the extra is installed)."""
import pytest
import torch

torch_sparse = pytest.importorskip(
    "torch_sparse", reason="optional extra not installed: `make sparse-extra` builds "
                           "torch-scatter and torch-sparse from source")

from sparselp import LinearProgram, solve  # noqa: E402
from lpcheck import assert_matches_highs  # noqa: E402


def test_sparse_tensor_input_matches_highs():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(30, 8, generator=g, dtype=torch.float64)
    A = A * (torch.rand(30, 8, generator=g, dtype=torch.float64) < 0.4)
    b = A @ torch.rand(8, generator=g, dtype=torch.float64) + 1
    c = torch.randn(8, generator=g, dtype=torch.float64)
    st = torch_sparse.SparseTensor.from_dense(A)
    lp = LinearProgram(c, st, b, lb=-2.0, ub=2.0)
    assert lp.A.is_sparse and lp.A.nnz == int((A != 0).sum())
    assert_matches_highs(solve(lp), c, A, b, bounds=(-2, 2))
