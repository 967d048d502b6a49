"""Section (g) of the report: the memory planner, the chunked AUC loss and the
distributed losses (rows of :mod:`benchmarks.scale`).

Section (f) is left to the training study (issue "Train with the LP losses on real
images").
"""
from __future__ import annotations

import math
import os

from . import html
from .figures import img, line_panels, num, series
from .verdicts import is_ok, verdict

__all__ = ["render_scale", "planner_ok", "chunked_ok", "floor_ok", "refusal_ok",
           "sharding_ok"]


def planner_ok(ratios: list[float]):
    """Every prediction within 25% of its measured peak."""
    if not ratios:
        return None
    return all(0.75 <= r <= 1.25 for r in ratios)


def chunked_ok(peak_mb: float, seconds: float) -> bool | None:
    """1e8 pairs forward + backward in <= 512 MB and <= 30 s."""
    if math.isnan(peak_mb + seconds):
        return None
    return peak_mb * 2**20 <= 512e6 and seconds <= 30


def floor_ok(ratio: float):
    """At 1e7 pairs, the chunked loss within 1.5x the closed form's memory."""
    return None if math.isnan(ratio) else ratio <= 1.5


def refusal_ok(mb: float):
    """An over-budget request refused with less than 50 MB allocated."""
    return None if math.isnan(mb) else mb * 2**20 < 50e6


def sharding_ok(mem_vs_ideal: list[float]):
    """Per-rank peak within 20% of ``1/world`` of one rank's."""
    if not mem_vs_ideal:
        return None
    return all(abs(r - 1) <= 0.2 for r in mem_vs_ideal)


def _predicted_figure(rows, out):
    """Predicted against measured peak (log-log), one colour per loss, the y = x line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    groups = series(rows, "measured_mb", "predicted_mb",
                    lambda r: r["loss"] + (" chunked" if num(r.get("block_size")) > 0
                                           and r["part"] == "planner" else ""))
    for i, (label, (xs, ys, _)) in enumerate(groups.items()):
        ax.plot(xs, ys, "o", color=f"C{i}", label=label)
    lo = min([min(v[0] + v[1]) for v in groups.values()] or [1])
    hi = max([max(v[0] + v[1]) for v in groups.values()] or [10])
    line = [lo / 1.3, hi * 1.3]
    ax.plot(line, line, "-", color="gray", lw=1, label="predicted = measured")
    ax.fill_between(line, [0.75 * v for v in line], [1.25 * v for v in line], color="gray",
                    alpha=0.15, label="within 25%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured peak (MiB)")
    ax.set_ylabel("planner's prediction (MiB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "scale_planner.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)


def _planner_part(rows, out, body, verdicts):
    plan_rows = [r for r in rows if r["part"] == "planner" and is_ok(r)
                 and not math.isnan(num(r.get("ratio")))]
    if not plan_rows:
        verdicts.append(verdict("planner within 25% of every measured peak",
                                "no planner rows", None))
        return
    f = _predicted_figure(plan_rows, out)
    body.append(img(f, "The planner's predicted peak against the measured peak of forward + "
                       "backward (CPU: peak RSS of a fresh process over its RSS after "
                       "imports), one point per configuration; the band is +-25%."))
    body.append(html.table(plan_rows, ["loss", "dtype", "batch", "pairs", "block_size",
                                       "predicted_mb", "measured_mb", "ratio", "total_s"]))
    ratios = [num(r["ratio"]) for r in plan_rows]
    worst = max(ratios, key=lambda r: abs(math.log(r)))
    verdicts.append(verdict("planner within 25% of the measured peak, every configuration",
                            f"{sum(0.75 <= r <= 1.25 for r in ratios)}/{len(ratios)} within; "
                            f"worst ratio {worst:.2f}", planner_ok(ratios)))


def _chunked_part(rows, body, verdicts):
    ch = [r for r in rows if r["part"] == "chunked"]
    if not ch:
        verdicts.append(verdict("chunked AUCLoss: 1e8 pairs in <= 512 MB and <= 30 s",
                                "no chunked rows", None))
        return
    body.append("<p>Chunked <code>AUCLoss(memory_budget=...)</code>: the planner picks the "
                "block size (column block_size: pairs a block) from the budget; "
                "<i>floor</i> is the closed form, one number a pair.</p>")
    body.append(html.table(ch, ["loss", "batch", "pairs", "block_size", "status",
                                "predicted_mb", "measured_mb", "total_s", "note"]))
    big = max((r for r in ch if r["loss"] == "auc"), key=lambda r: num(r["pairs"]))
    ok = chunked_ok(num(big.get("measured_mb")), num(big.get("total_s"))) \
        if is_ok(big) and num(big["pairs"]) >= 1e8 else None
    verdicts.append(verdict("chunked AUCLoss: 1e8 pairs forward + backward in <= 512 MB "
                            "and <= 30 s (CPU, one thread)",
                            f"{num(big['pairs']):.3g} pairs: {num(big.get('measured_mb')):.0f} "
                            f"MiB, {num(big.get('total_s')):.1f} s", ok))
    floor = {r["batch"]: r for r in ch if r["loss"] == "floor" and is_ok(r)}
    mine = [r for r in ch if r["loss"] == "auc" and r["batch"] in floor and is_ok(r)]
    if mine:
        r = mine[0]
        ratio = num(r["measured_mb"]) / num(floor[r["batch"]]["measured_mb"])
        at_target = num(r["pairs"]) >= 1e7  # the target's size; smaller runs only show it
        verdicts.append(verdict("chunked AUCLoss at 1e7 pairs within 1.5x the floor's memory",
                                f"{ratio:.2f}x at {num(r['pairs']):.3g} pairs",
                                floor_ok(ratio) if at_target else None))


def render_scale(data: dict, out: str, quick: bool = False):
    body, verdicts, notes = [], [], []
    rows = data.get("scale")
    if not rows:
        return [], [verdict("planner, chunked and distributed targets", "scale rows missing",
                            None)], []
    _planner_part(rows, out, body, verdicts)
    _chunked_part(rows, body, verdicts)
    ref = [r for r in rows if r["part"] == "refusal"]
    if ref:
        r = ref[0]
        mb = num(r.get("measured_mb")) if r["status"] == "refused" else math.nan
        verdicts.append(verdict(f"an over-budget request (batch {r['batch']:,}) refused "
                                "with < 50 MB allocated", f"{r['status']}, "
                                f"{num(r.get('measured_mb')):.1f} MiB",
                                refusal_ok(mb) if r["status"] == "refused" else False))
    dist = [r for r in rows if r["part"].startswith(("strong", "weak"))]
    if dist:
        for r in dist:
            r["world"] = int(r["part"].split("x")[-1])
            r["mode"] = r["part"].split()[0]
        panels = []
        for m, loss in (("strong", "auc"), ("weak", "auc"), ("strong", "fscore")):
            sel = [r for r in dist if r["mode"] == m and r["loss"] == loss and is_ok(r)]
            if not sel:
                continue
            one = next((num(r["measured_mb"]) for r in sel if r["world"] == 1), math.nan)
            for r in sel:
                r["ideal_mb"] = one / r["world"] if m == "strong" else one
            curves = {**series(sel, "world", "measured_mb", lambda r: "measured"),
                      **series(sel, "world", "predicted_mb", lambda r: "planner"),
                      **series(sel, "world", "ideal_mb",
                               lambda r: "ideal (1/ranks)" if m == "strong" else "ideal (flat)")}
            panels.append({"series": curves, "xlabel": "ranks (gloo, CPU)",
                           "ylabel": "peak MiB per rank",
                           "title": f"{m} scaling" + (", F-score rows" if loss != "auc" else ""),
                           "logy": m == "strong", "ymin": 0})
        f = line_panels(os.path.join(out, "scale_ranks.png"), panels)
        body.append(img(f, "Per-rank peak memory of the distributed AUCLoss "
                           "(process_group=): strong scaling (global batch fixed) should "
                           "fall as 1/ranks, weak scaling (pairs per rank fixed) stay flat. "
                           "Right: FScoreLoss, each rank holding the rows of its own samples "
                           "(sparselp.sharded); every rank also holds the gathered global "
                           "batch (24 bytes a sample), so it falls a little slower than "
                           "1/ranks. In the table, pairs and block_size count the whole "
                           "LP's rows and a rank's for F-score, its pairs for AUC."))
        body.append(html.table(dist, ["part", "loss", "batch", "pairs", "block_size",
                                      "predicted_mb", "measured_mb", "ratio", "total_s",
                                      "note"]))
        strong = [r for r in dist if r["mode"] == "strong" and r["loss"] == "auc"
                  and is_ok(r)]
        one = next((r for r in strong if r["world"] == 1), None)
        ratios = [num(r["measured_mb"]) * r["world"] / num(one["measured_mb"])
                  for r in strong if one and r["world"] > 1]
        verdicts.append(verdict("per-rank peak of the pairwise LP falls as 1/world within "
                                "20% (strong scaling)",
                                ", ".join(f"{x:.2f}" for x in ratios) or "no rows",
                                sharding_ok(ratios)))
    else:
        notes.append("no distributed rows")
    return body, verdicts, notes

