r"""Sketched Newton systems: the Iterative Hessian Sketch / Newton Sketch as a Hessian strategy.

The solver's Newton step solves :math:`H d = g` with the generalized Hessian of
:class:`sparselp.linsolve.NewtonSystem`,

.. math::

    H = A^T D A + \operatorname{diag}(\text{shift}) = M^T M + \operatorname{diag}(\text{shift}),
    \qquad M = D^{1/2} A_J ,

where ``J`` are the active rows (``w > 0``). :class:`SketchedHessian` replaces it by

.. math::

    \tilde H = (S M)^T (S M) + \operatorname{diag}(\text{shift}),
    \qquad \mathbb{E}[S^T S] = I ,

with a *fresh* random sketch ``S`` of ``s`` rows at every call of :meth:`factor`, and
returns :math:`g \mapsto \tilde H^{-1} g`. The gradient ``g`` stays exact (the solver computes
it), so this is the Newton Sketch of Pilanci & Wainwright (2017), the Iterative Hessian
Sketch (2016) for least squares: for ``s`` of order ``n`` the sketched Hessian is a
``(1 \pm \varepsilon)`` spectral approximation of ``H`` with high probability, and the
iteration converges linearly at a rate governed by ``\varepsilon`` instead of quadratically
(or finitely, for the piecewise quadratic). Fresh sketches keep the errors independent
between steps. Forming ``S M`` costs ``O(nnz(M))`` for CountSketch and sampling,
``O(p\, nnz(M))`` for OSNAP, ``O(|J| n \log s)`` for the SRHT and ``O(s |J| n)`` for the
Gaussian sketch, against ``O(|J| n^2)`` for the exact Gram matrix ``M^T M``; the
factorisation then costs ``O(s n^2 + n^3)`` either way.

When ``|J| <= s`` sketching cannot save anything (``M`` already has no more rows than
``S M``) and would only add noise: the exact Gram matrix of the active rows is used
(``exact_threshold`` raises this cut-off to ``|J| <= exact_threshold * s``). Near
an LP solution ``|J|`` is about the number of binding constraints, so late Newton steps
are usually exact.

References
----------
M. Pilanci and M. J. Wainwright, "Iterative Hessian sketch: fast and accurate solution
approximation for constrained least-squares", JMLR 17(53) (2016).
M. Pilanci and M. J. Wainwright, "Newton sketch: a near linear-time optimization algorithm
with linear-quadratic convergence", SIAM J. Optim. 27(1) (2017).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from sparselp.linsolve import HessianStrategy, NewtonSystem
from sparselp.operators import Operator

from .base import Sketch, _as_generator
from .gaussian import GaussianSketch
from .sampling import RowSampler
from .sparse import CountSketch, SparseSignSketch
from .srht import SRHTSketch

__all__ = ["SketchedHessian", "SKETCHES"]

SKETCHES = {"gaussian": GaussianSketch, "srht": SRHTSketch, "countsketch": CountSketch,
            "sparse_sign": SparseSignSketch, "uniform": RowSampler, "leverage": RowSampler}


def _gram(M: Tensor) -> Tensor:
    if M.layout != torch.strided:
        M = M.to_dense()  # at most s rows here (exact branch) or already dense (S M)
    return M.T @ M


class SketchedHessian(HessianStrategy):
    r"""Newton Sketch strategy: ``(S D^{1/2} A)^T (S D^{1/2} A) + diag(shift)``, fresh ``S``.

    Hand it to the solver as ``SolverOptions(linear_solver=SketchedHessian(...))``.

    Parameters
    ----------
    sketch : {"sparse_sign", "countsketch", "srht", "gaussian", "uniform", "leverage"} or
        a :class:`~sketching.base.Sketch` subclass
        The sketch family. ``"leverage"`` samples rows by approximate leverage scores of
        ``D^{1/2} A_J`` (:meth:`RowSampler.from_leverage_scores`).
    sketch_size : int, optional
        Number of sketch rows ``s``. Give either this or ``sketch_factor``.
    sketch_factor : float, optional
        ``s = ceil(sketch_factor * n)``; default 4 when neither is given.
    generator : torch.Generator or int or None
        Source of all sketches; each :meth:`factor` call draws a new one from it.
    sketch_kwargs : dict, optional
        Extra constructor arguments of the sketch (e.g. ``{"nnz_per_col": 4}``).
    exact_threshold : float, >= 1
        Use the exact Gram matrix when ``|J| <= exact_threshold * s`` (default 1: whenever
        the sketch would not have fewer rows than ``M``). Larger values sketch only where
        it saves much, at the price of fewer sketched (cheap but inexact) steps.

    Attributes
    ----------
    exact : bool
        False: the solve is approximate.
    last_info : dict
        Of the latest :meth:`factor` call: ``sketch_size``, and per batch element
        ``active_rows`` and ``sketched`` (False when the exact Gram was used).
    calls, sketched_calls : int
        Counters over the lifetime of the strategy (per batch element).

    Examples
    --------
    >>> from sparselp.options import SolverOptions
    >>> opts = SolverOptions(linear_solver=SketchedHessian("countsketch", sketch_factor=4,
    ...                                                    generator=0))
    """

    exact = False

    def __init__(self, sketch="sparse_sign", sketch_size: int | None = None,
                 sketch_factor: float | None = None, generator=None,
                 sketch_kwargs: dict | None = None, exact_threshold: float = 1.0):
        if isinstance(sketch, str):
            if sketch not in SKETCHES:
                raise ValueError(f"sketch must be one of {sorted(SKETCHES)} or a Sketch "
                                 f"subclass, got {sketch!r}")
            self.kind, self.sketch_cls = sketch, SKETCHES[sketch]
        elif isinstance(sketch, type) and issubclass(sketch, Sketch):
            self.kind, self.sketch_cls = sketch.__name__, sketch
        else:
            raise ValueError(f"sketch must be one of {sorted(SKETCHES)} or a Sketch subclass, "
                             f"got {sketch!r}")
        if sketch_size is not None and sketch_factor is not None:
            raise ValueError("give sketch_size or sketch_factor, not both")
        if sketch_size is not None and (isinstance(sketch_size, bool)
                                        or not isinstance(sketch_size, int) or sketch_size < 1):
            raise ValueError(f"sketch_size must be a positive integer, got {sketch_size!r}")
        if sketch_factor is not None and not (isinstance(sketch_factor, (int, float))
                                              and math.isfinite(sketch_factor)
                                              and sketch_factor > 0):
            raise ValueError(f"sketch_factor must be a positive number, got {sketch_factor!r}")
        if not (isinstance(exact_threshold, (int, float)) and exact_threshold >= 1):
            # Below 1 the sketch would have more rows than the matrix it compresses.
            raise ValueError(f"exact_threshold must be a number >= 1, got {exact_threshold!r}")
        self.exact_threshold = float(exact_threshold)
        if sketch_size is None and sketch_factor is None:
            sketch_factor = 4.0
        self.sketch_size, self.sketch_factor = sketch_size, sketch_factor
        self.generator = _as_generator(generator)
        self.sketch_kwargs = dict(sketch_kwargs or {})
        self.name = f"sketch-{self.kind}"
        self.last_info: dict = {}
        self.calls = self.sketched_calls = 0

    def __repr__(self) -> str:
        size = (f"sketch_size={self.sketch_size}" if self.sketch_size is not None
                else f"sketch_factor={self.sketch_factor}")
        return f"SketchedHessian({self.kind!r}, {size})"

    def size_for(self, n: int) -> int:
        """The number of sketch rows ``s`` used for ``n`` variables."""
        if self.sketch_size is not None:
            return self.sketch_size
        return max(1, math.ceil(self.sketch_factor * n))

    def _root(self, op: Operator, w: Tensor, b: int, s: int) -> tuple[Tensor, bool, int]:
        """``S D^{1/2} A_J``, or ``D^{1/2} A_J`` itself when ``|J| <= exact_threshold * s``."""
        active = torch.nonzero(w > 0).squeeze(-1)
        k = active.numel()
        # A dense matrix: the sketch acts on its active rows in place (Sketch.apply_rows).
        A = op.dense_block(b)
        if k <= self.exact_threshold * s:
            if A is not None:
                return w.index_select(0, active).sqrt().unsqueeze(-1) * A.index_select(0, active), \
                    False, k
            return op.weighted_rows(w, b), False, k
        if self.kind == "leverage":
            M = op.weighted_rows(w, b)
            S = RowSampler.from_leverage_scores(M, s, generator=self.generator,
                                                **self.sketch_kwargs)
            return S @ M, True, k
        S = self.sketch_cls(s, k, generator=self.generator, **self.sketch_kwargs)
        if A is not None:
            return S.apply_rows(A, active, w.index_select(0, active).sqrt()), True, k
        return S @ op.weighted_rows(w, b), True, k

    def factor(self, system: NewtonSystem) -> Callable[[Tensor], Tensor]:
        """Cholesky factor of the sketched Hessian of every batch element; returns the solve.

        Parameters
        ----------
        system : NewtonSystem
            ``w`` of shape (B, m), ``shift`` of shape (B, n) or (B, 1).

        Returns
        -------
        callable
            ``rhs (B, n) -> tilde H^{-1} rhs (B, n)``.
        """
        op, w = system.op, system.w
        B, n = w.shape[0], op.n
        shift = system.shift.expand(B, n)
        s = self.size_for(n)
        factors, active, sketched = [], [], []
        for b in range(B):
            SM, did, k = self._root(op, w[b], b, s)
            H = _gram(SM)
            H.diagonal().add_(shift[b].to(H.dtype))
            L, info = torch.linalg.cholesky_ex(H)
            if int(info) != 0:
                # Round-off made H indefinite (huge w): a relative diagonal jitter, as in
                # the exact Cholesky strategy.
                H.diagonal().add_(1e-12 * H.diagonal().abs().max())
                L = torch.linalg.cholesky(H)
            factors.append(L)
            active.append(k)
            sketched.append(did)
        self.calls += B
        self.sketched_calls += sum(sketched)
        self.last_info = {"sketch_size": s, "active_rows": active, "sketched": sketched}
        L = torch.stack(factors)
        return lambda rhs: torch.cholesky_solve(rhs.unsqueeze(-1), L).squeeze(-1)
