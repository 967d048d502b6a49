r"""Feasible random LPs with a known optimum, in the manner of Mangasarian (2004).

.. math::

    \min_x \; c^T x \quad \text{s.t.} \quad A x \le b ,

built backwards from a chosen primal-dual pair: ``A`` random (Gaussian, dense, or sparse
with the given density), ``x*`` uniform in ``[-1, 1]^n``, a dual ``v* >= 0`` that is
positive on ``k`` random rows (``k = n`` by default, uniform in ``[0.5, 1.5]``) and zero
elsewhere; then

- ``b_i = a_i^T x*`` on the rows with ``v*_i > 0`` (binding),
- ``b_i = a_i^T x* + slack_i``, ``slack_i ~ U(0.1, 1) ||a_i||``, elsewhere,
- ``c = -A^T v*``.

The KKT conditions (feasibility, ``v* >= 0``, ``c + A^T v* = 0``, complementary
slackness) hold by construction, so ``x*`` is optimal and ``f* = c^T x*``. With ``k = n``
binding rows in general position the optimum is a nondegenerate vertex, hence unique.

This is the sketching benchmark's own small generator (``benchmarks/random_lp.py`` did not
exist when it was written); the signature matches the one planned there.

References
----------
O. L. Mangasarian, "A Newton method for linear programming", JOTA 121 (2004), Sec. 5.
"""
from __future__ import annotations

import torch
from torch import Tensor

from sparselp.operators import coo_tensor

__all__ = ["mangasarian_lp"]


def mangasarian_lp(m: int, n: int, density: float | None = None, seed: int = 0,
                   dtype: torch.dtype = torch.float64, n_binding: int | None = None
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Random feasible, bounded LP ``min c^T x, A x <= b`` with known solution ``x_star``.

    Parameters
    ----------
    m, n : int
        Rows and columns of ``A``; ``m >= n_binding``.
    density : float in (0, 1], optional
        Fraction of nonzeros of a sparse ``A`` (COO); dense Gaussian when omitted.
    seed : int
    dtype : torch.dtype
    n_binding : int, optional
        Number of rows with a positive dual (default ``n``).

    Returns
    -------
    c : tensor (n,)
    A : tensor (m, n), dense or sparse COO
    b : tensor (m,)
    x_star : tensor (n,), an optimal solution; the optimal value is ``c @ x_star``.
    """
    k = n if n_binding is None else n_binding
    if not (isinstance(m, int) and isinstance(n, int) and m >= 1 and n >= 1):
        raise ValueError(f"m and n must be positive integers, got m={m!r}, n={n!r}")
    if not 1 <= k <= m:
        raise ValueError(f"n_binding must be in [1, m={m}], got {k}")
    if density is not None and not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    g = torch.Generator().manual_seed(seed)
    if density is None:
        A = torch.randn(m, n, generator=g, dtype=dtype)
        Ax_fn = lambda x: A @ x  # noqa: E731
        row_norm = A.norm(dim=1)
    else:
        nnz = max(1, round(density * m * n))
        flat = torch.randperm(m * n, generator=g)[:nnz]
        idx = torch.stack([flat // n, flat % n])
        vals = torch.randn(nnz, generator=g, dtype=dtype)
        A = coo_tensor(idx, vals, (m, n)).coalesce()
        Ax_fn = lambda x: torch.sparse.mm(A, x.unsqueeze(-1)).squeeze(-1)  # noqa: E731
        row_norm = torch.zeros(m, dtype=dtype).index_add_(0, idx[0], vals * vals).sqrt()
    x_star = 2 * torch.rand(n, generator=g, dtype=dtype) - 1
    binding = torch.randperm(m, generator=g)[:k]
    v_star = torch.zeros(m, dtype=dtype)
    v_star[binding] = 0.5 + torch.rand(k, generator=g, dtype=dtype)
    slack = (0.1 + 0.9 * torch.rand(m, generator=g, dtype=dtype)) * row_norm
    slack[binding] = 0
    b = Ax_fn(x_star) + slack
    if density is None:
        c = -(A.T @ v_star)
    else:
        c = -torch.sparse.mm(A.t(), v_star.unsqueeze(-1)).squeeze(-1)
    return c, A, b, x_star
