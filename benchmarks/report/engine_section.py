"""Section (h) of the report: the general LP engine at minibatch scale (issue 12): the
coupled losses against the batch (:mod:`benchmarks.loss_scaling`) and batches of general
LPs through the layer (:mod:`benchmarks.batched_lp`)."""
from __future__ import annotations

import math
import os

from . import html
from .figures import img, line_panels, num, series
from .verdicts import verdict

__all__ = ["render_engine", "loss_time_ok", "bytes_ok", "batched_ok", "LOSS_TARGETS"]

#: batch -> seconds of forward + backward the coupled losses must stay within
LOSS_TARGETS = {4096: 0.1, 65536: 2.0}
RATIO_LOSSES = ("fscore", "precision-at-recall")


def loss_time_ok(seconds: list[float], limit: float):
    """Every coupled loss's forward + backward within ``limit`` seconds (None: no row)."""
    if not seconds or any(math.isnan(s) for s in seconds):
        return None
    return all(s <= limit for s in seconds)


def bytes_ok(per_sample: list[float], limit: float = 2048.0):
    """Peak memory at most ``limit`` bytes a sample (2 KiB) for every row."""
    if not per_sample or any(math.isnan(b) for b in per_sample):
        return None
    return all(b <= limit for b in per_sample)


def batched_ok(ours: float, cvx: float, highs_forward: float):
    """Ours (forward + backward) >= 5x faster than cvxpylayers and faster than the HiGHS
    loop's forward alone; None where a number is missing."""
    if math.isnan(ours) or math.isnan(highs_forward):
        return None
    fast = ours < highs_forward
    if math.isnan(cvx):  # cvxpylayers missing: only a miss on HiGHS decides
        return None if fast else False
    return fast and ours * 5 <= cvx


def _label(r) -> str:
    return f"{r['loss']} {r['dtype']}" + (f" {r['solver']}" if r.get("solver") else "")


def _loss_part(rows, out, body, verdicts):
    rows = [r for r in rows if r.get("loss") in RATIO_LOSSES]
    if not rows:
        verdicts.append(verdict("coupled losses certified and within their time targets",
                                "no loss-scaling rows", None))
        return
    f = line_panels(os.path.join(out, "engine_losses.png"), [
        {"series": series(rows, "batch", "time_s", _label),
         "xlabel": "batch (scores, 20% positive)", "ylabel": "forward + backward (s)",
         "title": "coupled LP losses, one thread",
         "hlines": [(v, f"target at {k:,}") for k, v in LOSS_TARGETS.items()]},
        {"series": series(rows, "batch", "bytes_per_sample",
                          _label),
         "xlabel": "batch", "ylabel": "peak bytes per sample", "title": "memory",
         "hlines": [(2048, "2 KiB")]}])
    body.append(img(f, "FScoreLoss and PrecisionAtRecallLoss: forward + backward time and "
                       "peak memory per sample (fresh process, one torch thread) against "
                       "the batch; dotted lines: the targets. auto: the losses as users "
                       "get them, answering from their LP's closed-form optimum, certified "
                       "against the LP's residuals, with no solve; structured: the same "
                       "losses through the solver (closed_form=False), which starts at that "
                       "optimum and certifies it without a Newton step (the engine's cold "
                       "solves of the same LPs: python -m benchmarks.start_sweep)."))
    body.append(html.table(rows, ["loss", "dtype", "batch", "solver", "status", "time_s",
                                  "peak_mib", "bytes_per_sample"]))
    bad = [r for r in rows if r.get("status") != "OPTIMAL"]
    verdicts.append(verdict("every solve of the coupled losses certified OPTIMAL",
                            f"{len(rows) - len(bad)}/{len(rows)} certified"
                            + (f"; {bad[0]['loss']} {bad[0]['dtype']} at {bad[0]['batch']}: "
                               f"{bad[0].get('status')}" if bad else ""), not bad))
    for batch, limit in LOSS_TARGETS.items():
        sel = [r for r in rows if r["batch"] == batch]
        times = [num(r.get("time_s")) for r in sel]
        verdicts.append(verdict(f"forward + backward <= {limit:g} s at {batch:,}",
                                ", ".join(f"{_label(r)} {num(r.get('time_s')):.3g} s"
                                          for r in sel) or "not run",
                                loss_time_ok(times, limit)))
    big = [r for r in rows if r["batch"] == 65536]
    verdicts.append(verdict("peak memory <= 2 KiB a sample at 65,536",
                            ", ".join(f"{_label(r)} "
                                      f"{num(r.get('bytes_per_sample')):.0f} B" for r in big)
                            or "not run",
                            bytes_ok([num(r.get("bytes_per_sample")) for r in big])))


def _batched_part(rows, out, body, verdicts):
    ok = [r for r in rows if r.get("status") == "ok"]
    if not ok:
        verdicts.append(verdict("batched LPs: >= 5x cvxpylayers, faster than HiGHS forward",
                                "no batched-LP rows", None))
        return
    f = line_panels(os.path.join(out, "engine_batched.png"), [
        {"series": series(ok, "batch", "total_s", "method"), "xlabel": "LPs in the batch",
         "ylabel": "forward + backward (s)", "title": f"box LPs, n = {ok[0]['n']}, m = 2n"},
        {"series": series(ok, "batch", "forward_s", "method"), "xlabel": "LPs in the batch",
         "ylabel": "forward (s)", "title": "forward alone"}])
    body.append(img(f, "Batches of random box LPs through the layer (ours), a HiGHS loop "
                       "with active-set gradients, and cvxpylayers: time against the "
                       "number of LPs, each on one thread; cvxpylayers-threads: cvxpylayers "
                       "at its default, one solver thread per CPU, so not a one-thread "
                       "time."))
    body.append(html.table(rows, ["method", "batch", "n", "status", "forward_s",
                                  "backward_s", "total_s", "obj_err", "fd_err"]))
    top = max(r["batch"] for r in ok)
    at = {r["method"]: r for r in ok if r["batch"] == top}
    ours, cvx, cvx_mt, hi = (num(at.get(k, {}).get(c)) for k, c in (
        ("ours", "total_s"), ("cvxpylayers", "total_s"), ("cvxpylayers-threads", "total_s"),
        ("highs", "forward_s")))
    verdicts.append(verdict(f"{top} LPs, one thread: ours >= 5x faster than cvxpylayers and "
                            "faster than the HiGHS loop's forward",
                            f"ours {ours:.3g} s, cvxpylayers {cvx:.3g} s ({cvx / ours:.1f}x; "
                            f"{cvx_mt:.3g} s at its default threads), HiGHS forward "
                            f"{hi:.3g} s", batched_ok(ours, cvx, hi)))
    err = num(at.get("ours", {}).get("fd_err"))
    verdicts.append(verdict("gradients within 1e-5 of finite differences of HiGHS re-solves",
                            f"{err:.1e}", None if math.isnan(err) else err <= 1e-5))


def render_engine(data: dict, out: str, quick: bool = False):
    body, verdicts = [], []
    _loss_part(data.get("loss_scaling") or [], out, body, verdicts)
    _batched_part(data.get("batched_lp") or [], out, body, verdicts)
    notes = ["quick run: batch 256 and 4-LP batches only; the targets are at 4,096, 65,536 "
             "and 128 LPs"] if quick else []
    return body, verdicts, notes
