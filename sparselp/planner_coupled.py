"""Memory models of the coupled losses (F-score, precision at recall) for the planner
(:mod:`sparselp.planner`): answered in closed form, or solved (structured Newton path,
or SciPy's SuperLU when pinned)."""
from __future__ import annotations

import functools

import torch

from .memory_model import C_SCIPY, LPSize, closed_form_peak_bytes, lp_peak_bytes, size_of

__all__ = ["coupled_size", "coupled_strategy", "coupled_key", "closed_form",
           "coupled_peak_bytes", "KAPPA"]


@functools.lru_cache(maxsize=256)
def _probe(fscore: bool, k: int, k_pos: int, recall: float, itemsize: int) -> LPSize:
    """The size of a coupled LP of ``k`` samples, ``k_pos`` positive, built on dummy scores
    (cached: a loss with ``memory_budget`` asks at every call, and the planner's search
    for the largest batch that fits asks for the same few probes)."""
    from .formulations import fscore_data, precision_at_recall_data
    g = torch.Generator().manual_seed(0)
    s = torch.rand(k, generator=g, dtype=torch.float64)
    y = torch.zeros(k, dtype=torch.long)
    y[:k_pos] = 1
    d = fscore_data(s, y) if fscore else precision_at_recall_data(s, y, recall)
    return size_of(d.c, [d.A, d.A_eq], d.lb, d.ub, 1, itemsize, False)


def coupled_size(loss, n: int, n_pos: int, itemsize: int) -> LPSize:
    """The coupled LP's size at batch ``n``, from its LP at two small batches."""
    fscore = coupled_key(loss) == "fscore"
    recall = float(getattr(loss, "recall", 0.8))

    def measure(k):
        return _probe(fscore, k, max(1, round(k * n_pos / n)), recall, itemsize)

    a, b = measure(256), measure(512)

    def lin(u, v):  # linear through (256, u) and (512, v)
        return int(round(u + (v - u) * (n - 256) / 256))

    # normal = alpha n + beta n^2 through both points
    beta = (b.normal / 512 - a.normal / 256) / 256
    alpha = a.normal / 256 - beta * 256
    return LPSize(lin(a.m, b.m), lin(a.n, b.n), lin(a.nnz, b.nnz),
                  int(max(alpha * n + beta * n * n, 0)), 1, itemsize)


#: bytes per squared LP column of the coupled losses' SuperLU solves on CPU, measured;
#: used only when the loss is given linear_solver="scipy"
KAPPA = {"fscore": 26.0, "precision-at-recall": 35.0}


def coupled_strategy(loss) -> str:
    """The Newton strategy of a coupled loss: ``"structured"`` (what ``"auto"`` picks), or
    the ``linear_solver`` the loss was given (in its keywords or its options)."""
    chosen = None
    if not isinstance(loss, str):
        chosen = getattr(loss, "layer_kwargs", {}).get("linear_solver")
        opts = getattr(loss, "options", None)
        chosen = (opts.get("linear_solver") if isinstance(opts, dict)
                  else getattr(opts, "linear_solver", None)) or chosen
    return chosen if isinstance(chosen, str) and chosen != "auto" else "structured"


def coupled_key(loss) -> str:
    name = loss if isinstance(loss, str) else type(loss).__name__
    return "fscore" if name in ("fscore", "FScoreLoss") else "precision-at-recall"


def closed_form(loss) -> bool:
    """Whether a coupled loss (instance or name) answers from its certified closed form
    (:meth:`sparselp.loss_base.LPLossBase.closed_form_allowed`; a name: the default)."""
    return isinstance(loss, str) or loss.closed_form_allowed()


def coupled_peak_bytes(loss, size: LPSize, device) -> int:
    """Peak of a coupled loss (F-score, precision at recall). Answered in closed form
    (the default): :func:`~sparselp.memory_model.closed_form_peak_bytes`. Solved: their
    constraint matrices are separable apart from a few dense lines (the t column, the
    recall or normalisation row), so ``linear_solver="auto"`` solves their Newton systems
    by the structured (Schur/Woodbury) path in O(nnz) memory on every device; with
    ``linear_solver="scipy"`` on CPU, SciPy's SuperLU grows as the square of the batch:
    ``KAPPA[loss] * n^2`` bytes over the vectors, measured."""
    if closed_form(loss):
        return closed_form_peak_bytes(coupled_key(loss), size.n - 1)  # n + 1 columns
    strategy = coupled_strategy(loss)
    if strategy == "scipy" and torch.device(device or "cpu").type == "cpu":
        key = coupled_key(loss)
        return lp_peak_bytes(size, device, "cg") + C_SCIPY + int(KAPPA[key] * size.n ** 2)
    return lp_peak_bytes(size, device, strategy if strategy in ("structured", "cg",
                                                                "cholesky") else "structured")
