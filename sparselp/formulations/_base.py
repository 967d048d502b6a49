"""Shared pieces of the formulations: the tensor bundle of an LP and input checks."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..operators import csr_tensor, index_dtype as _index_dtype
from ..problem import LinearProgram

__all__ = ["LPData", "check_scores", "check_labels", "check_binary", "absent_classes",
           "describe_absent", "separable_constraints", "csr_from_triplets"]


class LPData(NamedTuple):
    r"""The tensors of one LP :math:`\min c^T x` s.t. :math:`A x \le b`, :math:`A_{eq} x = b_{eq}`,
    :math:`lb \le x \le ub`, still attached to the autograd graph of the scores.

    ``A`` and ``A_eq`` are torch sparse CSR tensors (or None). :meth:`problem` turns the
    bundle into a (detached) :class:`~sparselp.problem.LinearProgram`; the differentiable
    layer :func:`sparselp.layer.lp_solve` takes the fields directly.
    """

    c: Tensor
    A: Tensor | None
    b: Tensor | None
    A_eq: Tensor | None = None
    b_eq: Tensor | None = None
    lb: Tensor | None = None
    ub: Tensor | None = None
    #: A primal point known in closed form (detached), the formulation's optimum where it
    #: has one: the losses start their solve there (``warm_start`` of the layer).
    start: Tensor | None = None

    def problem(self) -> LinearProgram:
        """The detached :class:`LinearProgram` of these tensors."""
        def det(t):
            return None if t is None else t.detach()
        return LinearProgram(det(self.c), det(self.A), det(self.b), det(self.A_eq),
                             det(self.b_eq), det(self.lb), det(self.ub))


def check_scores(scores: Tensor, ndim: tuple[int, ...], name: str = "scores",
                 finite: bool = True) -> Tensor:
    """Check shape and finiteness (unless ``finite=False``: a distributed loss checks the
    gathered batch, so that every rank raises alike); cast half precision to float32 (the
    LP runs in >= fp32). A binary loss (``ndim == (1,)``) also takes scores of shape
    (n, 1), a network's usual single output, as the (n,) column."""
    if not isinstance(scores, Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(scores).__name__}")
    if ndim == (1,) and scores.dim() == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.dim() not in ndim:
        shapes = " or ".join({1: "(n,)", 2: "(n, K)"}[d] for d in ndim)
        shapes += " or (n, 1)" if ndim == (1,) else ""
        raise ValueError(f"{name} must have shape {shapes}, got shape {tuple(scores.shape)}")
    if not scores.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating tensor, got dtype {scores.dtype}")
    if finite and not bool(torch.isfinite(scores).all()):
        raise ValueError(f"{name} contains NaN or Inf entries; the LP is undefined")
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    return scores


def check_labels(labels, n: int, num_classes: int | None = None, device=None) -> Tensor:
    """Integer labels of shape (n,) (or (n, 1)), in {0, 1} (binary) or {0..K-1}."""
    labels = torch.as_tensor(labels, device=device)
    if labels.dim() == 2 and labels.shape == (n, 1):
        labels = labels[:, 0]
    if labels.dtype.is_floating_point or labels.dtype.is_complex:
        if not bool((labels == labels.round()).all()):
            raise ValueError("labels must be integers, got non-integral floating values")
    labels = labels.long()
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match scores, got shape "
                         f"{tuple(labels.shape)}")
    k = 2 if num_classes is None else num_classes
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        what = "0 or 1" if num_classes is None else f"in 0..{k - 1}"
        raise ValueError(f"labels must be {what}, got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return labels


def absent_classes(labels: Tensor, num_classes: int | None = None) -> list[int]:
    """The classes in ``0..K-1`` (``K = 2`` for binary labels) that no label takes.

    ``labels`` are checked ones (:func:`check_labels`). This is the one missing-class test
    of the formulations (which raise) and of the losses (which warn and return zero).
    """
    k = 2 if num_classes is None else num_classes
    return torch.nonzero(torch.bincount(labels, minlength=k) == 0).squeeze(1).tolist()


def describe_absent(absent: list[int], num_classes: int | None = None) -> str:
    """Words for the absent classes: "positive (label 1) sample" (binary), "sample of
    class(es) [2]" (multi-class), to follow "labels contain no" or "the minibatch has no"."""
    if num_classes is None:
        return ("positive (label 1)" if 1 in absent else "negative (label 0)") + " sample"
    return f"sample of class(es) {absent}"


def check_binary(scores: Tensor, labels, metric: str) -> tuple[Tensor, Tensor]:
    """Scores of shape (n,) and 0/1 labels holding both classes, for the binary metrics."""
    s = check_scores(scores, (1,))
    y = check_labels(labels, s.shape[0], device=s.device)
    absent = absent_classes(y)
    if absent:
        raise ValueError(f"labels contain no {describe_absent(absent)}: {metric} needs both "
                         "classes")
    return s, y


def separable_constraints(margin_gap: Tensor, weights: Tensor,
                          matrices: dict | None = None) -> LPData:
    r"""The hinge LP of a list of pairs, with ``A = [-I; -I]`` in CSR.

    .. math::

        \min_z \; w^T z \quad \text{s.t.} \quad z \ge \varepsilon - \delta,\; z \ge 0
        \iff -z \le \delta - \varepsilon,\; -z \le 0

    ``margin_gap`` is :math:`\delta - \varepsilon` of shape (P,), ``weights`` is ``w`` (P,).
    Every row of ``A`` holds one nonzero, so the Newton Hessian :math:`A^T D A` is diagonal.
    The CSR arrays are built by index arithmetic: row ``r`` holds column ``r mod P``.
    ``matrices`` (a dict, optional) keeps the matrix of each ``P``, dtype and device for
    later calls: the blocks of a chunked loss, most of one size, build it once.
    """
    P = margin_gap.shape[0]
    dev, dt = margin_gap.device, margin_gap.dtype
    key = (P, dt, dev)
    A = None if matrices is None else matrices.get(key)
    if A is None:
        # int32 indices halve the index memory (the matrix has 2P rows and 2P nonzeros).
        it = _index_dtype(2 * P + 1)
        crow = torch.arange(2 * P + 1, dtype=it, device=dev)
        col = torch.arange(P, dtype=it, device=dev).repeat(2)
        A = csr_tensor(crow, col, torch.full((2 * P,), -1.0, dtype=dt, device=dev), (2 * P, P))
        if matrices is not None:
            matrices[key] = A
    b = torch.cat([margin_gap, torch.zeros(P, dtype=dt, device=dev)])
    return LPData(weights, A, b)


def csr_from_triplets(rows: Tensor, cols: Tensor, vals: Tensor, shape: tuple[int, int]) -> Tensor:
    """CSR matrix from distinct (row, col) triplets, ordered by index arithmetic.

    ``vals`` keeps its autograd graph (the reordering is a gather), which is how scores
    that enter ``A`` stay differentiable.
    """
    m, n = shape
    order = torch.argsort(rows * n + cols)
    it = _index_dtype(max(m + 1, n, rows.numel()))
    crow = torch.zeros(m + 1, dtype=it, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=m), 0)
    return csr_tensor(crow, cols[order].to(it), vals[order], (m, n))
