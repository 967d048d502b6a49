"""ResNet-18 training step: peak memory and time against minibatch size, per loss.

One configuration = (loss, batch size, input size). Each is measured in a fresh interpreter
(:func:`benchmarks.peakmem.run_isolated`): peak resident set size on CPU,
``torch.cuda.max_memory_allocated`` on CUDA. One training step is forward (network and
loss), backward, and a plain SGD step; the times of the three are recorded separately.

The network is ``torchvision.models.resnet18(weights=None, num_classes=2)`` (no download),
fed random 3 x S x S images with S in {32, 96} and binary labels. The losses:

- ``ce``: cross-entropy on the two logits;
- ``dense``: the faithful dense port of the seed paper's AUC LP layer
  (:mod:`benchmarks.dense_port`) on the binary logit ``s = logit_1 - logit_0``;
- ``ours``: :class:`sparselp.losses.AUCLoss` on the same binary logit (same surrogate and
  margin ``eps = 0.01`` as the dense port).

Usage::

    python -m benchmarks.resnet [--quick] [--out results/resnet.csv] [--device cpu]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

from .tables import quartiles  # re-exported: the spread of timed repeats

__all__ = ["LOSSES", "PHASES", "make_loss", "train_step", "time_losses", "quartiles", "run",
           "main"]

LOSSES = ("ce", "dense", "ours")
EPS = 0.01  # the paper's margin; both AUC losses use the paper's surrogate with it
FULL_BATCHES = (16, 64, 128, 200, 400)
FULL_SIZES = (32, 96)
QUICK_BATCHES = (16, 64)
QUICK_SIZES = (32,)


def make_loss(name: str):
    """The loss ``f(logits (B, 2), labels (B,)) -> scalar`` called ``name``."""
    import torch.nn.functional as F

    if name == "ce":
        return F.cross_entropy
    if name == "ours":
        from sparselp.losses import AUCLoss

        auc = AUCLoss(eps=EPS, surrogate="paper")
        return lambda logits, labels: auc(logits[:, 1] - logits[:, 0], labels)
    if name == "dense":
        from benchmarks.dense_port import dense_port_auc_loss

        return lambda logits, labels: dense_port_auc_loss(logits[:, 1] - logits[:, 0], labels,
                                                          eps=EPS)
    raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")


def _batch(batch: int, size: int, pos_frac: float, seed: int, device):
    import torch

    if batch < 2:
        raise ValueError(f"batch must be at least 2 (one sample per class), got {batch}")
    if not 0 < pos_frac < 1:
        raise ValueError(f"pos_frac must lie in (0, 1), got {pos_frac}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, size, size, generator=g)
    n_pos = min(batch - 1, max(1, round(pos_frac * batch)))
    y = torch.zeros(batch, dtype=torch.long)
    y[torch.randperm(batch, generator=g)[:n_pos]] = 1
    return x.to(device), y.to(device)


class _Clock:
    """Wall time between laps, with the device synchronised at each (CUDA runs async).

    ``cpu`` holds the process's CPU time over the last lap (``time.process_time``: all its
    threads, so it may exceed the wall time; time spent waiting for a busy core is not in
    it). On CUDA the wall time after synchronisation stays the number that counts.
    """

    def __init__(self, device):
        self.device = device
        _sync(device)
        self.t, self.c, self.cpu = time.perf_counter(), time.process_time(), 0.0

    def lap(self) -> float:
        _sync(self.device)
        (t, c), self.t, self.c = (self.t, self.c), time.perf_counter(), time.process_time()
        self.cpu = self.c - c
        return self.t - t


def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def train_step(loss: str = "ce", batch: int = 16, size: int = 32, device: str = "cpu",
               steps: int = 1, warmup: int = 0, pos_frac: float = 0.5, seed: int = 0) -> dict:
    """Build ResNet-18 and run ``warmup + steps`` training steps; return median times.

    Parameters
    ----------
    loss : {"ce", "dense", "ours"}
    batch, size : int
        Minibatch size and image side (inputs have shape (batch, 3, size, size)).
    device : str
    steps, warmup : int
        Timed steps (median reported) after untimed warm-up steps.
    pos_frac : float
        Fraction of positive labels.
    seed : int
        Seeds the weights, the inputs and the labels.

    Returns
    -------
    dict
        ``forward_s`` (network + loss), ``backward_s``, ``step_s`` (optimizer), ``total_s``,
        ``loss_value``.
    """
    import torch
    import torchvision

    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None, num_classes=2).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = make_loss(loss)
    x, y = _batch(batch, size, pos_frac, seed, device)
    times = {"forward_s": [], "backward_s": [], "step_s": []}
    value = math.nan
    for i in range(warmup + steps):
        opt.zero_grad(set_to_none=True)
        clock = _Clock(device)
        out = loss_fn(model(x), y)
        laps = [clock.lap()]
        out.backward()
        laps.append(clock.lap())
        opt.step()
        laps.append(clock.lap())
        value = float(out.detach())
        if i >= warmup:
            for key, lap in zip(times, laps):
                times[key].append(lap)
    row = {k: statistics.median(v) for k, v in times.items()}
    row["total_s"] = row["forward_s"] + row["backward_s"] + row["step_s"]
    row["loss_value"] = value
    return row


#: The phases :func:`time_losses` times: the step's forward (network and loss) and
#: backward, their sum, and the loss alone on detached logits.
PHASES = ("forward", "backward", "iteration", "loss_forward", "loss_backward")


def _round(model, opt, x, y, fn, device) -> dict:
    """One timed training step with ``fn``: ``{phase: (wall_s, cpu_s)}``."""
    opt.zero_grad(set_to_none=True)
    clock = _Clock(device)
    logits = model(x)
    out = fn(logits, y)
    t = {"forward": (clock.lap(), clock.cpu)}
    out.backward()
    t["backward"] = (clock.lap(), clock.cpu)
    opt.step()
    t["iteration"] = tuple(a + b for a, b in zip(t["forward"], t["backward"]))
    # The loss alone, on a detached copy of the same logits.
    z = logits.detach().requires_grad_(True)
    clock = _Clock(device)
    lz = fn(z, y)
    t["loss_forward"] = (clock.lap(), clock.cpu)
    lz.backward()
    t["loss_backward"] = (clock.lap(), clock.cpu)
    return t


def _summary(wall: dict, cpu: dict, ratios) -> dict:
    """A row's numbers: per phase the median wall time ``<phase>_s`` with its quartiles
    ``<phase>_s_q25``/``_q75`` and the median CPU time ``<phase>_cpu_s``; then the median
    and quartiles of the per-round ratio to cross-entropy (None where ce was not timed)."""
    row = {}
    for phase in PHASES:
        q25, row[f"{phase}_s"], q75 = quartiles(wall[phase])
        row[f"{phase}_s_q25"], row[f"{phase}_s_q75"] = q25, q75
        row[f"{phase}_cpu_s"] = quartiles(cpu[phase])[1]
    q25, med, q75 = quartiles(ratios) if ratios else (None, None, None)
    row.update(ratio_to_ce=med, ratio_to_ce_q25=q25, ratio_to_ce_q75=q75)
    return row


def time_losses(batch: int = 64, size: int = 32, losses=LOSSES, repeats: int = 7,
                device: str = "cpu", seed: int = 0) -> list[dict]:
    """Time one training step per loss side by side, interleaved, in this process.

    One untimed warm-up round, then ``repeats`` rounds; a round runs one training step of
    every loss, in reverse order every other round (ce, ours; ours, ce; ...), so that the
    noise of a shared machine, and any drift within a round, falls on all losses alike.
    Each row gives, per phase (:data:`PHASES`), the median wall time over the rounds with
    its 25th and 75th percentiles, and the median CPU time of the process. ``ratio_to_ce``
    (with ``_q25``/``_q75``) is the step time (``iteration``: forward + backward) over
    cross-entropy's step *in the same round*, summarised over the rounds: a per-round ratio
    cancels load that changes between rounds. The loss's own forward and backward time are
    separated from the network's by timing the loss on detached logits.
    """
    import torch
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None, num_classes=2).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = _batch(batch, size, 0.5, seed, device)
    fns, unavailable = {}, {}
    for name in losses:
        try:
            fns[name] = make_loss(name)
        except ImportError as exc:  # a loss that has not landed: say so in its row
            unavailable[name] = f"{type(exc).__name__}: {exc}"
    wall = {name: {p: [] for p in PHASES} for name in fns}
    cpu = {name: {p: [] for p in PHASES} for name in fns}
    for rep in range(repeats + 1):
        for name in list(fns) if rep % 2 else list(fns)[::-1]:
            t = _round(model, opt, x, y, fns[name], device)
            if rep:  # the first round warms up and is dropped
                for phase, (w, c) in t.items():
                    wall[name][phase].append(w)
                    cpu[name][phase].append(c)
    rows = []
    for name in losses:
        row = {"loss": name, "batch": batch, "size": size, "device": str(device),
               "repeats": repeats, "status": "ok", "error": ""}
        if name in unavailable:
            row.update(status="unavailable", error=unavailable[name])
        else:
            ce = wall.get("ce", {}).get("iteration")
            ratios = [a / b for a, b in zip(wall[name]["iteration"], ce)] if ce else []
            row.update(_summary(wall[name], cpu[name], ratios))
        rows.append(row)
    return rows


# Imported before the baseline in every configuration alike, so that no loss is charged
# for the import of its own module (tens of MB) and every row shares one baseline.
_PRELOAD = ("torchvision", "sparselp.losses", "benchmarks.dense_port")


def _dense_fits(batch: int, pos_frac: float, max_dense_pairs: int) -> bool:
    n_pos = max(1, round(pos_frac * batch))
    return n_pos * (batch - n_pos) <= max_dense_pairs


def run(quick: bool = False, device: str | None = None, batches=None, sizes=None,
        losses=LOSSES, timeout: float | None = None, max_dense_pairs: int | None = None,
        mem_limit: int | None = None, dense_timeout: float | None = None,
        progress: bool = True) -> list[dict]:
    """Peak memory and time of one training step for every (size, batch, loss).

    The dense port needs dense matrices quadratic in the number of pairs (5.5 GB at 6,400
    pairs on the CPU, measured in issue 3). Three guards keep it from taking the machine
    down, and each leaves an honest row:

    - on the CPU every configuration may allocate at most ``mem_limit`` bytes beyond its
      imports (default 6 GiB): beyond that its allocation fails at once and the row has
      status ``memory_limit``, with ``net_rss`` set to the limit as a *lower bound*;
    - a configuration still running after ``timeout`` seconds (default 60 in quick mode,
      120 otherwise; ``dense_timeout`` for the dense port, default ``timeout``) is killed:
      status ``timeout``, its peak so far is a lower bound;
    - dense configurations above ``max_dense_pairs`` pairs (default: no such cap) are not
      started: status ``skipped``.
    """
    import torch
    from tqdm import tqdm

    from benchmarks.peakmem import run_isolated

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    batches = tuple(batches or (QUICK_BATCHES if quick else FULL_BATCHES))
    sizes = tuple(sizes or (QUICK_SIZES if quick else FULL_SIZES))
    timeout = timeout or (60.0 if quick else 120.0)
    cuda = device.startswith("cuda")
    if mem_limit is None and not cuda:
        mem_limit = 6 * 2 ** 30
    configs = [(s, b, l) for s in sizes for b in batches for l in losses]
    rows = []
    for size, batch, loss in tqdm(configs, desc="resnet18 step", disable=not progress):
        row = {"loss": loss, "batch": batch, "size": size, "device": device,
               "pairs": (batch // 2) * (batch - batch // 2)}
        if loss == "dense" and max_dense_pairs is not None and \
                not _dense_fits(batch, 0.5, max_dense_pairs):
            row.update(status="skipped", error=f"{row['pairs']} pairs > max_dense_pairs "
                       f"{max_dense_pairs}: dense matrices would not fit")
            rows.append(row)
            continue
        # Warm-up only where it is cheap; at large batches one step is all the time allows.
        kw = {"loss": loss, "batch": batch, "size": size, "device": device, "steps": 1,
              "warmup": 1 if not quick and batch * size * size <= 64 * 32 * 32 else 0}
        limit = dense_timeout if loss == "dense" and dense_timeout else timeout
        r = run_isolated("benchmarks.resnet:train_step", kw, timeout=limit, device=device,
                         mem_limit=None if cuda else mem_limit, preload=_PRELOAD)
        row.update(status=r["status"], error=r["error"], peak_rss=r["peak_rss"],
                   net_rss=r["net_rss"], cuda_peak=r["cuda_peak"])
        if r["status"] == "memory_limit":  # needs more than the limit: a lower bound
            row.update(net_rss=mem_limit, peak_rss=r["baseline_rss"] + mem_limit,
                       error=f"needs more than {mem_limit / 2**30:.1f} GiB: {r['error']}")
        row.update(r["result"] or {})
        row["peak_bytes"] = r["cuda_peak"] if cuda else row["peak_rss"]
        rows.append(row)
    return rows


COLUMNS = ("size", "batch", "loss", "pairs", "status", "peak_bytes", "net_rss", "forward_s",
           "backward_s", "step_s", "total_s", "error")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sparselp bench resnet", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="batch 16 and 64 at 32x32 only")
    p.add_argument("--out", default="results/resnet.csv", help="CSV path")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--batches", type=int, nargs="+", default=None)
    p.add_argument("--sizes", type=int, nargs="+", default=None)
    p.add_argument("--losses", nargs="+", choices=LOSSES, default=list(LOSSES))
    p.add_argument("--timeout", type=float, default=None, help="seconds per configuration")
    p.add_argument("--timing-out", default=None,
                   help="also time the losses side by side at batch 64 (32x32) in one "
                        "process and write that table to this CSV path")
    args = p.parse_args(argv)
    from benchmarks.tables import print_table, write_csv

    rows = run(quick=args.quick, device=args.device, batches=args.batches, sizes=args.sizes,
               losses=tuple(args.losses), timeout=args.timeout)
    print_table(rows, [c for c in COLUMNS if c != "error"])
    write_csv(rows, args.out, COLUMNS)
    print(f"wrote {args.out}")
    if args.timing_out:
        timing = time_losses(batch=64, size=32, losses=("ce", "ours"),
                             device=rows[0]["device"] if rows else "cpu")
        print_table(timing, ["loss", "batch", "repeats", "iteration_s", "iteration_s_q25",
                             "iteration_s_q75", "iteration_cpu_s", "ratio_to_ce",
                             "ratio_to_ce_q25", "ratio_to_ce_q75", "loss_forward_s",
                             "loss_backward_s", "status"])
        write_csv(timing, args.timing_out)
        print(f"wrote {args.timing_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
