r"""Row sampling sketches: uniform, or by (approximate) leverage scores.

``S`` picks ``s`` rows i.i.d. with replacement, row ``i`` with probability :math:`p_i`,
and rescales the picked row by :math:`1/\sqrt{s p_i}`:

.. math::

    S = \operatorname{diag}\big((s p_{i_t})^{-1/2}\big)_{t} \, E_{i_1,\dots,i_s}^T ,
    \qquad \mathbb{E}[S^T S] = \sum_i s p_i \frac{e_i e_i^T}{s p_i} = I_m .

Uniform probabilities are cheap but need ``s`` of order ``m \cdot \max_i \ell_i`` (the
coherence) to embed a subspace; sampling by the leverage scores :math:`\ell_i` of the
matrix being sketched needs only ``s = O(d \log d / \varepsilon^2)`` (Drineas, Mahoney &
Muthukrishnan 2006).

Leverage scores (:func:`leverage_scores`):

- ``method="exact"``: squared row norms of ``U`` from a thin SVD of ``X``, singular
  values below ``rcond * sigma_max`` dropped; costs ``O(m d^2)``, as much as the Gram matrix.
- ``method="approx"`` (Drineas, Magdon-Ismail, Mahoney & Woodruff 2012): a sparse sign
  sketch ``S_1 X`` (``8 d + 16`` rows) gives ``R`` with ``X R^{-1}`` well conditioned; a
  Gaussian ``G`` of ``r = 32`` columns then gives :math:`\ell_i \approx \|(X R^{-1} G)_i\|^2 / r`
  in ``O(nnz(X) + m d r)``. Constant-factor accurate with high probability.

:meth:`RowSampler.from_leverage_scores` mixes the scores with the uniform distribution,
:math:`p = (1 - \alpha)\ell/\sum\ell + \alpha/m` (``alpha = 0.1``), so that every
probability is positive and ``E[S^T S] = I`` holds even where an approximate score is 0.

References
----------
P. Drineas, M. W. Mahoney and S. Muthukrishnan, "Sampling algorithms for l2 regression
and applications", SODA 2006.
P. Drineas, M. Magdon-Ismail, M. W. Mahoney and D. P. Woodruff, "Fast approximation of
matrix coherence and statistical leverage", JMLR 13 (2012).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import Sketch, _as_generator, _seed_from
from .sparse import SparseSignSketch

__all__ = ["RowSampler", "leverage_scores"]


class RowSampler(Sketch):
    """Sample ``sketch_size`` rows with replacement, rescaled so that ``E[S^T S] = I``.

    Parameters
    ----------
    sketch_size : int
    n_rows : int
    generator : torch.Generator or int or None
    probabilities : tensor of shape (n_rows,), optional
        Nonnegative sampling weights (normalised internally); uniform when omitted. Rows
        with zero probability are never sampled, so ``E[S^T S] = I`` then fails on them.
    """

    def __init__(self, sketch_size: int, n_rows: int, generator=None,
                 probabilities: Tensor | None = None):
        super().__init__(sketch_size, n_rows, generator)
        g, dev = self.generator, self.generator.device
        if probabilities is None:
            self.index = torch.randint(0, n_rows, (sketch_size,), generator=g, device=dev)
            self.scale = torch.full((sketch_size,), (n_rows / sketch_size) ** 0.5,
                                    dtype=torch.float64, device=dev)
            self.probabilities = None
            return
        p = torch.as_tensor(probabilities).detach()
        if p.shape != (n_rows,):
            raise ValueError(f"probabilities must have shape (n_rows,) = ({n_rows},), "
                             f"got {tuple(p.shape)}")
        p = p.to(device=dev, dtype=torch.float64)
        if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or not p.sum() > 0:
            raise ValueError("probabilities must be finite, nonnegative and not all zero")
        p = p / p.sum()
        self.probabilities = p
        self.index = torch.multinomial(p, sketch_size, replacement=True, generator=g)
        self.scale = (sketch_size * p[self.index]).rsqrt()

    @classmethod
    def from_leverage_scores(cls, X: Tensor, sketch_size: int, generator=None,
                             method: str = "approx", uniform_mix: float = 0.1) -> "RowSampler":
        """A sampler for the rows of ``X`` by its leverage scores (see module docstring).

        Parameters
        ----------
        X : tensor of shape (n_rows, d), dense or sparse
        sketch_size : int
        generator : torch.Generator or int or None
        method : {"approx", "exact"}
        uniform_mix : float in [0, 1]
            Weight ``alpha`` of the uniform distribution in the mixture.
        """
        if not 0.0 <= uniform_mix <= 1.0:
            raise ValueError(f"uniform_mix must be in [0, 1], got {uniform_mix}")
        g = _as_generator(generator)
        lev = leverage_scores(X, method=method, generator=g).to(torch.float64)
        total = lev.sum()
        m = X.shape[0]
        p = uniform_mix / m + (1 - uniform_mix) * (lev / total if total > 0 else 1.0 / m)
        return cls(sketch_size, m, generator=g, probabilities=p)

    def _apply_dense(self, X):
        idx = self._on("index", self.index, X.device)
        return self._on("scale", self.scale, X.device, X.dtype).unsqueeze(-1) \
            * X.index_select(0, idx)

    def _apply_sparse(self, X):
        dev, dt = X.device, X.dtype
        ij = torch.stack([torch.arange(self.sketch_size, device=dev),
                          self._on("index", self.index, dev)])
        S = torch.sparse_coo_tensor(ij, self._on("scale", self.scale, dev, dt), self.shape,
                                    check_invariants=False)
        return torch.sparse.mm(S.coalesce(), X).to_dense()

    def apply_rows(self, X, rows, weights=None):
        """``S @ (diag(weights) X[rows])``, touching only the ``sketch_size`` sampled rows."""
        if rows.shape != (self.n_rows,):
            raise ValueError(f"rows must have shape ({self.n_rows},), got {tuple(rows.shape)}")
        if X.layout != torch.strided:
            return super().apply_rows(X, rows, weights)
        idx = self._on("index", self.index, X.device)
        scale = self._on("scale", self.scale, X.device, X.dtype)
        if weights is not None:
            scale = scale * weights.to(X.dtype).index_select(0, idx)
        return scale.unsqueeze(-1) * X.index_select(0, rows.index_select(0, idx))


def leverage_scores(X: Tensor, method: str = "approx", generator=None,
                    rcond: float | None = None, n_projections: int = 32) -> Tensor:
    r"""Statistical leverage scores of the rows of ``X`` (diagonal of its hat matrix).

    Parameters
    ----------
    X : tensor of shape (m, d), dense or sparse COO/CSR
    method : {"approx", "exact"}
        See the module docstring for the algorithms and their cost.
    generator : torch.Generator or int or None
        Randomness of ``method="approx"``.
    rcond : float, optional
        Relative cutoff on singular values (rank determination); default ``max(m, d) * eps``.
    n_projections : int
        Columns ``r`` of the Gaussian projection of ``method="approx"``.

    Returns
    -------
    tensor of shape (m,)
        :math:`\ell_i = \|U_{i,:}\|^2` for an orthonormal basis ``U`` of ``range(X)``; they
        sum to ``rank(X)`` (exactly for ``"exact"``, approximately for ``"approx"``).
    """
    if method not in ("approx", "exact"):
        raise ValueError(f"method must be 'approx' or 'exact', got {method!r}")
    if X.dim() != 2:
        raise ValueError(f"X must be a matrix of shape (m, d), got shape {tuple(X.shape)}")
    m, d = X.shape
    dt = X.dtype
    rcond = max(m, d) * torch.finfo(dt).eps if rcond is None else rcond
    if method == "exact":
        Xd = X.to_dense() if X.layout != torch.strided else X
        U, sv, _ = torch.linalg.svd(Xd, full_matrices=False)
        keep = sv > rcond * sv[0] if sv.numel() else sv > 0
        return (U[:, keep] ** 2).sum(-1)
    g = _as_generator(generator)
    s1 = min(m, 8 * d + 16)
    SX = SparseSignSketch(s1, m, generator=g, nnz_per_col=min(4, s1)) @ X
    # SX = U S V^T; X V S^{-1} has nearly orthonormal columns (S_1 embeds range(X)).
    _, sv, Vh = torch.linalg.svd(SX, full_matrices=False)
    keep = sv > rcond * sv[0] if sv.numel() else sv > 0
    Rinv = Vh[keep].T / sv[keep]  # (d, rank)
    gg = torch.Generator(device=X.device).manual_seed(_seed_from(g))
    G = torch.randn(Rinv.shape[1], n_projections, generator=gg, device=X.device, dtype=dt)
    XRG = X @ (Rinv @ G) if X.layout == torch.strided else torch.sparse.mm(X, Rinv @ G)
    return (XRG ** 2).sum(-1) / n_projections
