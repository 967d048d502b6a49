"""The planner: :func:`plan` weighs the ways of running a loss or a LinearProgram against a
memory budget, with the model of :mod:`sparselp.memory_model`.

A loss is described without building its LP when the LP is pairwise (its size follows
from the class counts); the coupled LPs (F-score, precision at recall) have O(n) rows,
so their size is read off the LP of two small dummy batches and extrapolated (rows,
columns and nonzeros are linear in n, the normal-matrix count is quadratic).
"""
from __future__ import annotations

import math

import torch

from .memory_model import (HEADROOM, PREFERRED_BLOCK, LPSize, MemoryBudgetError,
                           Plan, PlanOption, closed_form_peak_bytes, lp_peak_bytes,
                           parse_bytes, row_counts, size_of, strategy_for)
from .network_memory import scale_counts, with_network
from .planner_coupled import (closed_form, coupled_key, coupled_peak_bytes, coupled_size,
                              coupled_strategy)


__all__ = ["plan", "plan_loss", "plan_problem", "check_problem", "loss_kind",
           "coupled_strategy",
           "chunk_peak_bytes",
           "coupled_peak_bytes"]

_NAMES = {"auc": "auc", "auc-hinge": "auc", "multiclass-auc": "multiclass",
          "fscore": "coupled", "precision-at-recall": "coupled"}


def loss_kind(loss) -> tuple[str, str]:
    """(kind, label) of a loss instance or name; kind in auc, multiclass, coupled."""
    if isinstance(loss, str):
        if loss not in _NAMES:
            raise ValueError(f"loss must be a loss module, a LinearProgram or one of "
                             f"{sorted(_NAMES)}, got {loss!r}")
        return _NAMES[loss], loss
    name = type(loss).__name__
    kinds = {"AUCLoss": "auc", "MultiClassAUCLoss": "multiclass", "FScoreLoss": "coupled",
             "PrecisionAtRecallLoss": "coupled"}
    if name not in kinds:
        raise ValueError(f"loss_or_problem must be a sparselp loss, a loss name or a "
                         f"LinearProgram, got {name}")
    return kinds[name], name


def _class_counts(kind, loss, n, positive_fraction, class_counts):
    if class_counts is not None:
        counts = [int(c) for c in class_counts]
        if sum(counts) != n or min(counts) < 0:
            raise ValueError(f"class_counts must be non-negative and sum to batch_size={n}, "
                             f"got {class_counts}")
        return counts
    if kind == "multiclass":
        K = getattr(loss, "num_classes", 10) if not isinstance(loss, str) else 10
        return [n // K + (k < n % K) for k in range(K)]
    if not (0 < positive_fraction < 1):
        raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction!r}")
    n_pos = min(n - 1, max(1, round(n * positive_fraction)))
    return [n - n_pos, n_pos]


def _pairs(kind, loss, counts) -> int:
    if kind == "auc":
        return counts[0] * counts[1]
    n = sum(counts)
    if not isinstance(loss, str) and getattr(loss, "variant", "mu") == "ova":
        return sum(c * (n - c) for c in counts)
    return sum(counts[i] * counts[j] for i in range(len(counts))
               for j in range(i + 1, len(counts)))


def _max_batch(fits_at, lo: int, hi: int) -> int | None:
    """The largest batch in [lo, hi] for which ``fits_at`` holds (monotone), else None."""
    if not fits_at(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits_at(mid) else (lo, mid - 1)
    return lo


# Over 60 lines: one branch per kind of loss, each short; kept together so that the
# order of the options (as is, chunked, sharded) reads in one place.
def plan_loss(loss, batch_size, positive_fraction, budget, device, dtype, world_sizes,
              class_counts=None) -> Plan:
    """:func:`plan` for a loss (instance or name)."""
    kind, label = loss_kind(loss)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2 for a loss, got {batch_size!r}")
    itemsize = torch.empty((), dtype=dtype).element_size()
    itemsize = max(itemsize, 4)  # half precision is solved in float32
    n = batch_size
    counts = _class_counts(kind, loss, n, positive_fraction, class_counts)
    score_bytes = 8 * n * (len(counts) if kind == "multiclass" else 1) * itemsize

    def peak_pairs(P):
        return lp_peak_bytes(LPSize.pairs(P, itemsize), device) + score_bytes

    details = {"batch_size": n, "class_counts": counts, "itemsize": itemsize}
    if kind == "coupled":
        size = coupled_size(loss, n, counts[1], itemsize)
        as_is = coupled_peak_bytes(loss, size, device)
        details.update(rows=size.m, columns=size.n, nnz=size.nnz,
                       strategy="closed-form" if closed_form(loss) else coupled_strategy(loss))

        def fits_at(k):
            sub = coupled_size(loss, k, max(1, k * counts[1] // n), itemsize)
            return coupled_peak_bytes(loss, sub, device) <= HEADROOM * budget
    else:
        P = _pairs(kind, loss, counts)
        as_is = peak_pairs(P)
        details.update(pairs=P, rows=2 * P, columns=P, nnz=2 * P, strategy="diagonal")

        def fits_at(k):
            sub = _class_counts(kind, loss, k, positive_fraction, None) \
                if class_counts is None else [max(1, c * k // n) for c in counts]
            return peak_pairs(_pairs(kind, loss, sub)) <= HEADROOM * budget
    options = [PlanOption("as is", as_is, as_is <= HEADROOM * budget,
                          note=f"{details.get('pairs', details['rows']):,} "
                               f"{'pairs' if kind != 'coupled' else 'rows'}")]
    if kind == "auc":
        options.append(_chunked_option(
            counts, budget, lambda P: peak_pairs(P) + _chunk_extra(P, itemsize)))
    for w in world_sizes:
        if kind == "coupled":  # rows sharded where answered in closed form, else replicated
            sharded = closed_form(loss)
            per = closed_form_peak_bytes(coupled_key(loss), n, w, gathered=True) \
                if sharded else as_is
            options.append(PlanOption(f"sharded x{w}", per, per <= HEADROOM * budget,
                                      {"world_size": w}, "per rank: its samples' rows"
                                      if sharded else "coupled LP solved whole on every rank"))
        else:
            per = peak_pairs(math.ceil(details["pairs"] / w))
            options.append(PlanOption(f"sharded x{w}", per, per <= HEADROOM * budget,
                                      {"world_size": w}, "per rank"))
    chosen = next((o for o in options if o.fits), None)
    if chosen is None or chosen.name != "as is":
        details["max_batch_as_is"] = _max_batch(fits_at, 2, n)
    what = f"{label}, batch {n}, {torch.empty((), dtype=dtype).dtype}"
    return Plan(what, budget, options, chosen, details)


#: bytes a pair (per byte of the item size) that a chunked block holds beyond its LP, up
#: to CHUNK_EXTRA_CAP: the next block's pairs are built while the last block's freed
#: vectors are still resident in the allocator. Measured (float32, fresh processes,
#: ``benchmarks.scale``): blocks of 50,000 / 123,000 / 250,000 pairs peak 4.4 / 8.8 /
#: 22 MiB over the LP model alone, about 80 bytes a pair; blocks of 1e6 pairs none (their
#: vectors are mapped and unmapped whole).
CHUNK_EXTRA = 20
CHUNK_EXTRA_CAP = 20 * 2 ** 20


def _chunk_extra(P: int, itemsize: int) -> int:
    return min(CHUNK_EXTRA * itemsize * P, CHUNK_EXTRA_CAP)


def chunk_peak_bytes(counts, block_size: int, dtype, device) -> int:
    """Predicted peak of the chunked binary AUC loss with ``block_size`` (its blocks hold
    whole positives: ``max(1, block_size // n_neg)`` of them)."""
    n_neg, n_pos = counts[0], counts[1]
    itemsize = max(torch.empty((), dtype=dtype).element_size(), 4)
    per = min(max(1, block_size // max(n_neg, 1)), n_pos)
    P = per * n_neg
    return lp_peak_bytes(LPSize.pairs(P, itemsize), device) + _chunk_extra(P, itemsize) \
        + 8 * sum(counts) * itemsize


def _chunked_option(counts, budget, peak_pairs) -> PlanOption:
    n_neg, n_pos = counts
    room = HEADROOM * budget - peak_pairs(0)
    per_pair = peak_pairs(1) - peak_pairs(0)
    per = int(room // max(per_pair * n_neg, 1))  # positives a block
    per = min(per, max(1, PREFERRED_BLOCK // max(n_neg, 1)), n_pos)
    if per < 1:
        one = peak_pairs(n_neg)
        return PlanOption("chunked", one, False, {"block_size": n_neg},
                          "one positive's pairs already exceed the budget")
    peak = peak_pairs(per * n_neg)
    return PlanOption("chunked", peak, True, {"block_size": per * n_neg},
                      f"{math.ceil(n_pos / per)} blocks")


def _auto_strategy(lp, size: LPSize, device) -> str:
    """The strategy ``linear_solver="auto"`` picks for ``lp``'s constraint rows (the
    structured path needs the pattern, not just the sizes)."""
    if size.separable:
        return "diagonal"
    from .linsolve import get_strategy
    from .scaling import build_rows
    try:
        name = get_strategy("auto", build_rows(lp).K).name
    except ValueError:
        return strategy_for(size, device)
    on_cpu = torch.device(device or "cpu").type == "cpu"
    return name if on_cpu or name != "scipy" else strategy_for(size, device)


def plan_problem(lp, budget, device, world_sizes, reduced_rows) -> Plan:
    """:func:`plan` for a :class:`~sparselp.LinearProgram`."""
    itemsize = torch.empty((), dtype=lp.dtype).element_size()
    shared_nnz_batch = lp.batch_size
    size = size_of(lp.c, [lp.A, lp.A_eq], lp.lb, lp.ub, shared_nnz_batch, itemsize,
                    bool(getattr(lp.A, "rows_separable", False)) and lp.A_eq is None)
    dev = device or lp.c.device
    strategy = _auto_strategy(lp, size, dev)
    as_is = lp_peak_bytes(size, dev, strategy)
    options = [PlanOption("as is", as_is, as_is <= HEADROOM * budget,
                          note=f"{size.m:,} rows, {size.n:,} columns, {size.nnz:,} nonzeros, "
                               f"{strategy}")]
    if reduced_rows is not None:
        k = int(reduced_rows)
        if k < 1:
            raise ValueError(f"reduced_rows must be a positive integer, got {reduced_rows!r}")
        bounds = size.m - row_counts(lp.A)[0] - row_counts(lp.A_eq)[0]
        red = LPSize(k + bounds, size.n, k * size.n + bounds, k * size.n ** 2 + bounds,
                     lp.batch_size, itemsize)
        held = size.nnz * (itemsize + 16)  # the original LP, already in memory
        peak = lp_peak_bytes(red, dev, "cholesky" if size.n <= 3000 else "cg") + held
        options.append(PlanOption(f"reduced {k}", peak, peak <= HEADROOM * budget,
                                  {"reduced_rows": k}, "dense (S A, S b)"))
    chosen = next((o for o in options if o.fits), None)
    details = {"rows": size.m, "columns": size.n, "nnz": size.nnz, "strategy": strategy}
    return Plan(f"LP {size.m}x{size.n} (batch {lp.batch_size})", budget, options, chosen,
                details)


def plan(loss_or_problem, batch_size: int | None = None, positive_fraction: float = 0.5,
         memory_budget="8GB", device=None, *, dtype=torch.float32, world_sizes=(2, 4, 8),
         reduced_rows: int | None = None, class_counts=None, model=None, input_shape=None,
         optimizer: str = "sgd") -> Plan:
    """Predict the peak memory of forward + backward for each way of running, and choose.

    Parameters
    ----------
    loss_or_problem : loss module, loss name or LinearProgram
        An :class:`~sparselp.AUCLoss`, :class:`~sparselp.MultiClassAUCLoss`,
        :class:`~sparselp.FScoreLoss` or :class:`~sparselp.PrecisionAtRecallLoss`
        instance, one of the names ``"auc"``, ``"auc-hinge"``, ``"multiclass-auc"``,
        ``"fscore"``, ``"precision-at-recall"``, or a :class:`~sparselp.LinearProgram`.
    batch_size : int
        Samples in the minibatch (losses only).
    positive_fraction : float in (0, 1)
        Share of positives (binary losses); multi-class losses assume balanced classes
        unless ``class_counts`` is given.
    memory_budget : int, float or str
        Bytes, or a string such as ``"8GB"`` / ``"512MiB"``.
    device : str or torch.device, optional
        Where it would run (CPU by default); decides the Newton strategy and C_0.
    dtype : torch dtype
        Of the scores (losses); a LinearProgram's own dtype is used.
    world_sizes : tuple of int
        Rank counts for the sharded options.
    reduced_rows : int, optional
        Rows ``k`` of a sketch or SDR projection (LinearProgram only).
    model : torch.nn.Module, optional
        A network whose training step produces the scores (losses only): every option's
        peak becomes the network's part (:mod:`sparselp.network_memory`, on the rank's
        share of the batch when sharded) plus the loss's; ``details["network"]`` has its
        breakdown.
    input_shape : tuple of int
        One sample's shape without the batch dimension, e.g. ``(3, 32, 32)`` (with
        ``model``).
    optimizer : {"sgd", "sgd-momentum", "adam"}
        Its state is counted with ``model``.
    """
    budget = parse_bytes(memory_budget)
    if (model is None) != (input_shape is None):
        raise ValueError("model and input_shape go together: give both or neither (got "
                         f"model={type(model).__name__}, input_shape={input_shape!r})")
    if hasattr(loss_or_problem, "c") and hasattr(loss_or_problem, "A"):
        if model is not None:
            raise ValueError("model= applies to a loss, not to a LinearProgram")
        return plan_problem(loss_or_problem, budget, device, world_sizes, reduced_rows)
    if model is not None:  # the network's training step on top: sparselp.network_memory
        def loss_at(k, b):
            return plan_loss(loss_or_problem, k, positive_fraction, b, device, dtype,
                             world_sizes, scale_counts(class_counts, k))
        return with_network(loss_at, batch_size, budget, model, input_shape, optimizer,
                            device, dtype)
    return plan_loss(loss_or_problem, batch_size, positive_fraction, budget, device, dtype,
                     world_sizes, class_counts)


def check_problem(lp, memory_budget, what: str, device=None) -> None:
    """Raise :class:`~sparselp.MemoryBudgetError` when solving ``lp`` as is is predicted
    to exceed ``memory_budget`` (None: no check)."""
    if memory_budget is None:
        return
    p = plan_problem(lp, parse_bytes(memory_budget), device, (), None)
    if not p.options[0].fits:
        raise MemoryBudgetError(f"{what} on {p.what}", p.options[0].peak_bytes,
                                p.memory_budget, None)
