"""The memory planner's network part against measured ResNet-18 training steps.

For every (input size, batch, loss) of the ResNet-18 memory benchmark
(:mod:`benchmarks.resnet`: ``torchvision.models.resnet18(num_classes=2)``, one SGD step on
``(batch, 3, S, S)`` inputs), the peak measured in a fresh process
(:func:`benchmarks.resnet.run`: peak RSS over the RSS after imports on CPU) beside the
prediction:

- ``ce``: :func:`sparselp.network_memory.network_peak_bytes` (cross-entropy on two logits
  adds nothing measurable);
- ``ours``: :func:`sparselp.plan` of ``AUCLoss(eps=0.01)`` with ``model=`` and
  ``input_shape=``: the network part plus the loss's LP, its "as is" option.

The target is a ratio predicted / measured within 0.75 .. 1.25 in every row. The network's
constant was calibrated on the 32 x 32 rows of ``ce``; the 96 x 96 rows and the ``ours``
rows are the check.

Usage::

    python -m benchmarks.netmem_check [--quick] [--out results/netmem_check.csv]
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["predict", "run", "main", "LOSSES", "COLUMNS"]

LOSSES = ("ce", "ours")
LOW, HIGH = 0.75, 1.25
COLUMNS = ("size", "batch", "loss", "status", "predicted_mb", "measured_mb", "ratio",
           "within", "network_mb", "loss_mb", "error")
MiB = 2 ** 20


def predict(loss: str, batch: int, size: int, model=None, device: str = "cpu") -> dict:
    """Predicted bytes of one ResNet-18 step with ``loss`` (``total``, ``network``, ``loss``)."""
    import torchvision

    import sparselp
    from benchmarks.resnet import EPS
    from sparselp.network_memory import network_peak_bytes

    model = model or torchvision.models.resnet18(weights=None, num_classes=2)
    if loss == "ce":
        net = network_peak_bytes(model, (3, size, size), batch, device=device)["total"]
        return {"total": net, "network": net, "loss": 0}
    if loss != "ours":
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    p = sparselp.plan(sparselp.AUCLoss(eps=EPS, surrogate="paper"), batch_size=batch, positive_fraction=0.5,
                      memory_budget=2 ** 50, device=device, model=model,
                      input_shape=(3, size, size))
    net = p.details["network"]["total"]
    total = p.options[0].peak_bytes
    return {"total": total, "network": net, "loss": total - net}


def run(quick: bool = False, batches=None, sizes=None, losses=LOSSES,
        timeout: float = 300.0, progress: bool = False) -> list[dict]:
    """Measured against predicted peak for every (size, batch, loss); ``quick``: 32 x 32,
    batches 16 and 64."""
    import torchvision

    from benchmarks import resnet

    batches = tuple(batches or (resnet.QUICK_BATCHES if quick else resnet.FULL_BATCHES))
    sizes = tuple(sizes or (resnet.QUICK_SIZES if quick else resnet.FULL_SIZES))
    model = torchvision.models.resnet18(weights=None, num_classes=2)
    measured = resnet.run(quick=quick, device="cpu", batches=batches, sizes=sizes,
                          losses=tuple(losses), timeout=timeout, progress=progress)
    rows = []
    for m in measured:
        pred = predict(m["loss"], m["batch"], m["size"], model)
        row = {k: m.get(k) for k in ("size", "batch", "loss", "status", "error")}
        row.update(predicted_mb=pred["total"] / MiB, network_mb=pred["network"] / MiB,
                   loss_mb=pred["loss"] / MiB, measured_mb=None, ratio=None, within=None)
        if m["status"] == "ok" and m.get("net_rss"):
            row["measured_mb"] = m["net_rss"] / MiB
            row["ratio"] = pred["total"] / m["net_rss"]
            row["within"] = LOW <= row["ratio"] <= HIGH
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.netmem_check",
                                description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="32 x 32, batches 16 and 64 only")
    p.add_argument("--out", default="results/netmem_check.csv", help="CSV path")
    p.add_argument("--batches", type=int, nargs="+", default=None)
    p.add_argument("--sizes", type=int, nargs="+", default=None)
    p.add_argument("--losses", nargs="+", choices=LOSSES, default=list(LOSSES))
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per configuration")
    args = p.parse_args(argv)
    from benchmarks.tables import print_table, write_csv

    rows = run(quick=args.quick, batches=args.batches, sizes=args.sizes,
               losses=tuple(args.losses), timeout=args.timeout, progress=True)
    print_table(rows, [c for c in COLUMNS if c != "error"])
    write_csv(rows, args.out, COLUMNS)
    print(f"wrote {args.out}")
    missed = [r for r in rows if not r["within"]]
    for r in missed:
        print(f"outside {LOW}..{HIGH}: size {r['size']} batch {r['batch']} {r['loss']} "
              f"({r['status']}{': ' + r['error'] if r['error'] else ''})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
