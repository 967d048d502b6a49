r"""The memory model of forward + backward, and the plans made from it.

:func:`sparselp.planner.plan` predicts, before anything large is allocated, the peak
memory of one forward and backward pass of a loss (or of solving and differentiating a :class:`LinearProgram`)
for each way of running it, and picks the first that fits a budget:

1. ``as is``: the whole LP at once;
2. ``chunked``: the row-separable binary AUC LP block by block (``AUCLoss(block_size=)``,
   :mod:`sparselp.chunked`), the block size chosen from the budget;
3. ``sharded xN``: the loss of a global batch over ``N`` ranks (``process_group=``): the
   pairwise LPs split their pairs, so each rank holds ``1/N`` of them; the coupled LPs
   (F-score, precision at recall) are solved whole on every rank;
4. ``reduced k``: for a :class:`LinearProgram`, the sketched or SDR-projected LP
   ``(S A, S b)`` with ``k`` rows (dense), when ``reduced_rows`` is given.

The model (bytes; :math:`s` the item size of the dtype, :math:`B` the batch of LPs)
counts what the solver and the layer keep per row, per column and per nonzero of the
LP's constraint system (the rows of ``A``, ``A_eq`` and the finite bounds), plus the
strategy's Newton system:

.. math::

    \text{peak} \approx C_0 + B\,(13\,m + 10\,n)\,s + \mathrm{nnz}\,(s + 16)
    + \begin{cases} 36 \sum_i \mathrm{nnz}_i^2 + C_{\text{scipy}} & \text{SciPy's sparse LU} \\
                    w_s B (m + n) + C_{\text{str}} & \text{structured (Schur/Woodbury)} \\
                    3 B n^2 s & \text{dense Cholesky} \\ 0 & \text{diagonal, CG}\end{cases}

The per-row and per-column counts are calibrated on CPU against the resident-set peaks
that ``benchmarks/scale.py`` (``sparselp bench scale``) measures in fresh processes and
prints beside these predictions (the pairwise AUC LP has ``m = 2P``, ``n = P``,
``nnz = 2P`` for ``P`` pairs: 184 bytes a pair in float32, 336 in float64; 17 bytes a
row and 272 a structured line until the chunked path's fewer temporaries and the ratio
losses' closed-form start lowered the measured peaks by about a fifth);
:math:`\sum_i \mathrm{nnz}_i^2` bounds the nonzeros of the normal matrix
:math:`A^T D A` that SciPy's LU factors. :math:`C_0` = 16 MiB is what a first call costs
in a fresh interpreter that has imported ``sparselp.losses`` (lazily loaded modules, the
autograd engine; it was 24-26 MiB before the structured solver moved imports to load
time, so it follows the import layout and is re-measured by ``benchmarks/scale.py``; a fresh
clone of the same code on the same machine measured 26 MiB: for problems of a few MiB this
constant, not the model, decides the ratio);
:math:`C_{\text{scipy}}` = 14 MiB loads SciPy's sparse solvers, :math:`C_{\text{str}}` = 3 MiB
the structured path, whose work per row and column is :math:`w_s` = 220 bytes in float32
(float64 copies for mixed precision) and 160 in float64. On CUDA the model counts
tensors only (:math:`C_0 = C_{\text{scipy}} = 0`), as ``max_memory_allocated`` does; it is
not yet checked against a GPU.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch

__all__ = ["Plan", "PlanOption", "MemoryBudgetError", "parse_bytes", "lp_peak_bytes",
           "LPSize", "closed_form_peak_bytes", "size_of",
           "row_counts"]

MiB = 2 ** 20
C0 = 16 * MiB
C_SCIPY = 14 * MiB
PER_ROW, PER_COL, PER_NNZ_INDEX, PER_NORMAL_ENTRY = 13, 10, 16, 36
#: bytes per row and column of the structured (Schur/Woodbury) Newton path, by item size:
#: its float64 work vectors, plus in float32 the float64 copy of the rows that mixed
#: precision keeps (calibrated on the F-score and precision-at-recall losses, batch 1,024
#: to 65,536)
PER_STRUCTURED_LINE = {4: 220, 8: 160}
C_STRUCTURED = 3 * MiB
#: fraction of the budget a chosen setting may use (the model is within about 25%)
HEADROOM = 0.9
#: the chunked AUC loss runs fastest with blocks of about this many pairs on CPU: a float32
#: block's longest vectors (2 entries a pair) then stay under 1 MiB, which glibc's malloc
#: serves from its heap and reuses, where 2 MiB ones are mapped afresh and fault in page by
#: page. Measured at 1e8 pairs, one thread: 120,000-pair blocks 13.7 s (no page fault)
#: against 19.5 s for 250,000 (2.8 million faults, 7 s of system time); 22.8 s against
#: 27.3 s with the benchmarks' fixed 1 MiB mmap threshold; 60,000-pair blocks are slower
#: again (more blocks, each with its own checks).
PREFERRED_BLOCK = 125_000
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
          "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


class MemoryBudgetError(MemoryError):
    """A request whose predicted peak exceeds ``memory_budget``; raised before the LP is
    built. ``estimate`` and ``budget`` are in bytes; ``suggestion`` names the nearest
    setting that fits (or None)."""

    def __init__(self, what: str, estimate: int, budget: int, suggestion: str | None):
        self.estimate, self.budget, self.suggestion = estimate, budget, suggestion
        msg = (f"{what}: predicted peak {format_bytes(estimate)} exceeds memory_budget "
               f"{format_bytes(budget)}")
        super().__init__(msg + (f"; {suggestion} would fit" if suggestion else
                                "; no setting of the planner fits"))


def parse_bytes(value, name: str = "memory_budget") -> int:
    """Bytes from an int/float or a string such as ``"8GB"``, ``"512 MiB"``, ``"2G"``
    (GB = 1e9, GiB and the bare G = 2**30)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number of bytes or a string like '8GB', got "
                         f"{value!r}")
    if isinstance(value, (int, float)):
        out = value
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError(f"{name} must look like '8GB', '512MiB' or a number of bytes, "
                             f"got {value!r}")
        out = float(m.group(1)) * _UNITS[m.group(2).lower()]
    else:
        raise ValueError(f"{name} must be a number of bytes or a string like '8GB', got "
                         f"{type(value).__name__}")
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return int(out)


def format_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class LPSize:
    """What the memory model reads off an LP: ``m`` rows of the constraint system (``A``,
    ``A_eq`` and finite bounds), ``n`` columns, ``nnz`` stored entries (of one matrix, or
    of all when not shared), ``normal`` = sum over rows of nnz_i^2, the batch, the item
    size, and whether every row touches one column (the diagonal Newton path)."""

    m: int
    n: int
    nnz: int
    normal: int
    batch: int = 1
    itemsize: int = 4
    separable: bool = False

    @staticmethod
    def pairs(P: int, itemsize: int) -> "LPSize":
        """The hinge LP of ``P`` pairs: ``z >= eps - gap``, ``z >= 0`` (rows of one entry)."""
        return LPSize(2 * P, P, 2 * P, 2 * P, 1, itemsize, True)


def strategy_for(size: LPSize, device) -> str:
    """The Newton strategy that ``linear_solver="auto"`` picks for an LP of this size, when
    only sizes are known (the planner asks the real pattern where it has one: the
    structured path of separable-plus-dense-lines matrices needs it)."""
    if size.separable:
        return "diagonal"
    if torch.device(device or "cpu").type == "cpu":
        return "scipy"
    return "cholesky" if size.n <= 3000 else "cg"


#: The coupled losses answered in closed form (:mod:`sparselp.sharded`, no solve): bytes
#: per sample of a rank's own (its rows as COO triplets, the float64 proposal, the
#: certificate's products and the Lagrangian's graph), and over a process group per
#: sample of the global batch (the gathered scores and int64 labels). Measured on CPU,
#: float32 and float64 alike within 5% (the proposal is float64, the indices int64 in
#: both): one process from 1,024 to 1e6 samples (``sparselp bench scale``) and 1, 2, 4
#: ranks at 1e6 (``python -m benchmarks.dist_scaling --loss fscore|precision``).
CLOSED_FORM_PER_SAMPLE = {"fscore": 270, "precision-at-recall": 225}
GATHERED_PER_SAMPLE = 24


def closed_form_peak_bytes(key: str, n: int, world: int = 1, gathered: bool = False) -> int:
    """Predicted peak (per rank) of a coupled loss (``key`` in
    :data:`CLOSED_FORM_PER_SAMPLE`) answered in closed form on a batch of ``n``, over
    ``world`` ranks (``gathered``: with a process group) each holding its share's rows."""
    return (C0 + CLOSED_FORM_PER_SAMPLE[key] * -(-n // world)
            + (GATHERED_PER_SAMPLE * n if gathered else 0))


def lp_peak_bytes(size: LPSize, device=None, strategy: str | None = None) -> int:
    """Predicted peak bytes of solving and differentiating an LP of ``size``."""
    cuda = torch.device(device or "cpu").type == "cuda"
    strategy = strategy or strategy_for(size, device)
    s, B = size.itemsize, size.batch
    out = B * (PER_ROW * size.m + PER_COL * size.n) * s + size.nnz * (s + PER_NNZ_INDEX)
    if strategy in ("scipy", "ldl"):  # a sparse factor of about the normal matrix's size
        out += PER_NORMAL_ENTRY * B * size.normal + (0 if cuda else C_SCIPY)
    elif strategy == "cholesky":
        out += 3 * B * size.n ** 2 * s
    elif strategy == "structured":
        out += PER_STRUCTURED_LINE.get(s, 220) * B * (size.m + size.n) + \
            (0 if cuda else C_STRUCTURED)
    return int(out + (0 if cuda else C0))


@dataclass
class PlanOption:
    """One way of running: its ``name``, the keyword ``settings`` that select it, its
    predicted ``peak_bytes``, whether it ``fits``, and a ``note``."""

    name: str
    peak_bytes: int
    fits: bool
    settings: dict = field(default_factory=dict)
    note: str = ""


@dataclass
class Plan:
    """What :func:`sparselp.planner.plan` found: every option, the ``chosen`` one (the
    first that fits, in the order as is, chunked, sharded, reduced; None when none fits), and its
    ``peak_bytes`` (the as-is prediction when nothing fits) and ``fits``."""

    what: str
    memory_budget: int
    options: list[PlanOption]
    chosen: PlanOption | None
    details: dict = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.chosen is not None

    @property
    def peak_bytes(self) -> int:
        return (self.chosen or self.options[0]).peak_bytes

    def suggestion(self) -> str | None:
        """The nearest setting that fits, in words (for an error message)."""
        if self.chosen is not None and self.chosen.settings:
            return ", ".join(f"{k}={v}" for k, v in self.chosen.settings.items())
        limit = self.details.get("max_batch_as_is")
        return f"batch_size <= {limit}" if limit else None

    def rows(self) -> list[dict]:
        return [{"option": o.name, "peak_mb": o.peak_bytes / MiB, "fits": o.fits,
                 "chosen": o is self.chosen,
                 "settings": " ".join(f"{k}={v}" for k, v in o.settings.items()),
                 "note": o.note} for o in self.options]

    def table(self) -> str:
        head = (f"{self.what}; budget {format_bytes(self.memory_budget)}: "
                + (f"run {self.chosen.name} ({format_bytes(self.peak_bytes)})"
                   if self.fits else "nothing fits"))
        lines = [head, f"  {'option':<14} {'peak':>11}  fits  settings / note"]
        for o in self.options:
            mark = "*" if o is self.chosen else " "
            extra = " ".join(f"{k}={v}" for k, v in o.settings.items())
            extra = f"{extra} ({o.note})" if extra and o.note else extra or o.note
            lines.append(f"{mark} {o.name:<14} {format_bytes(o.peak_bytes):>11}  "
                         f"{'yes' if o.fits else 'no ':<4}  {extra}")
        if not self.fits:
            hint = self.suggestion()
            lines.append(f"  nearest that fits: {hint}" if hint else
                         "  no batch size fits as is")
        return "\n".join(lines)

    __str__ = table


def row_counts(A) -> tuple[int, int, int]:
    """(rows, nnz, sum of squared row counts) of a torch matrix or a sparselp operator."""
    if A is None:
        return 0, 0, 0
    if hasattr(A, "mv") and hasattr(A, "nnz"):  # a sparselp Operator
        rows = getattr(A, "rows", None)
        if rows is None or not torch.is_tensor(rows):
            return A.m, A.nnz, A.nnz * A.n  # dense or stacked: every row full
        counts = torch.bincount(rows.reshape(-1) % A.m, minlength=A.m)
        return A.m, A.nnz, int((counts.double() ** 2).sum())
    if A.layout == torch.sparse_csr:
        counts = A.crow_indices().diff()
    elif A.layout == torch.sparse_coo:
        counts = torch.bincount(A._indices()[-2], minlength=A.shape[-2])
    else:
        return A.shape[-2], A.shape[-2] * A.shape[-1], A.shape[-2] * A.shape[-1] ** 2
    return A.shape[-2], int(counts.sum()), int((counts.double() ** 2).sum())


def size_of(c, mats, lb, ub, batch, itemsize, separable) -> LPSize:
    """The :class:`LPSize` of an LP given by its cost ``c``, its matrices ``mats``
    (torch matrices or sparselp operators; None skipped) and bounds."""
    n = c.shape[-1]
    m = nnz = normal = 0
    for M in mats:
        r, z, q = row_counts(M)
        m, nnz, normal = m + r, nnz + z, normal + q
    for bound in (lb, ub):
        if bound is not None:
            k = int(torch.isfinite(torch.as_tensor(bound)).reshape(-1, n).any(0).sum()) \
                if torch.is_tensor(bound) else n
            m, nnz, normal = m + k, nnz + k, normal + k
    return LPSize(m, n, nnz, normal, batch, itemsize, separable)
