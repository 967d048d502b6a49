"""Section (f) of the report: training with the LP losses on imbalanced images (rows of
:mod:`benchmarks.train_grid` and :mod:`benchmarks.train_timing`).

Verdicts never choose on the test set: "the best LP loss" is the one with the highest
mean validation AUC, and its test AUC is then compared.
"""
from __future__ import annotations

import math

from . import html
from .figures import img, num
from .verdicts import verdict

__all__ = ["render_train", "beats", "time_ok", "LP_LOSSES"]

LP_LOSSES = ("auc", "auc-hinge", "fscore", "fscore-hinge", "precision-at-recall")
#: FScoreLoss's surrogates as the grid names them
FSCORE_LOSSES = ("fscore", "fscore-hinge", "fscore-hinge-negatives")


def beats(mine: float, mine_std: float, theirs: float, theirs_std: float):
    """True when ``mine`` exceeds ``theirs`` by more than the larger seed-to-seed standard
    deviation of the two (None when either is missing)."""
    if math.isnan(mine + theirs):
        return None
    return mine - theirs > max(num(mine_std) if not math.isnan(num(mine_std)) else 0.0,
                               num(theirs_std) if not math.isnan(num(theirs_std)) else 0.0)


def time_ok(ratios: list[float]):
    """Every LP loss's step within 1.1x cross-entropy's (median per-round ratio)."""
    return None if not ratios else all(r <= 1.1 for r in ratios)


def _where(summary, **kw):
    return [r for r in summary if all(str(r.get(k)) == str(v) for k, v in kw.items())]


def _fmt(r: dict, m: str) -> str:
    v, s = num(r.get(m)), num(r.get(m + "_std"))
    return "-" if math.isnan(v) else f"{v:.4f} +- {0.0 if math.isnan(s) else s:.4f}"


def _decided(ok, rows: list[dict], target_data: bool):
    """``ok``, or None (not measured) off the targets' data or with fewer than 2 seeds
    (a standard deviation of one seed is no spread)."""
    if not target_data or any(int(num(r.get("seeds")) or 0) < 2 for r in rows):
        return None
    return ok


def _grid_verdicts(summary, what, verdicts, target_data):
    for ratio in sorted({num(r["imratio"]) for r in _where(summary, study="grid")}):
        rows = {r["loss"]: r for r in _where(summary, study="grid") if num(r["imratio"]) == ratio}
        lp = [rows[k] for k in LP_LOSSES if k in rows and not math.isnan(num(rows[k].get("auc")))]
        ce = rows.get("ce")
        if not lp or ce is None:
            continue
        best = max(lp, key=lambda r: num(r.get("val_auc")))
        tag = f"{ratio:.0%} positives, {what}"
        verdicts.append(verdict(
            f"best LP loss (by validation AUC) beats cross-entropy's test AUC by more than "
            f"the seed-to-seed std ({tag})",
            f"{best['loss']} {_fmt(best, 'auc')} vs ce {_fmt(ce, 'auc')}",
            _decided(beats(num(best["auc"]), best.get("auc_std"), num(ce["auc"]),
                           ce.get("auc_std")), [best, ce], target_data)))
        lib = rows.get("libauc-aucm")
        if lib is not None and not math.isnan(num(lib.get("auc"))):
            verdicts.append(verdict(
                f"best LP loss beats LibAUC's AUCM + PESG (learning rate chosen on "
                f"validation) ({tag})",
                f"{best['loss']} {_fmt(best, 'auc')} vs libauc-aucm {_fmt(lib, 'auc')} "
                f"(lr {lib.get('lr')})",
                _decided(beats(num(best["auc"]), best.get("auc_std"), num(lib["auc"]),
                               lib.get("auc_std")), [best, lib], target_data)))
        # FScoreLoss's surrogate (ramp, hinge, hinge on the negatives): the one with the
        # best validation F1 (rows from before val_f1 was recorded: by test F1's order of
        # listing, i.e. the ramp first)
        fss = [rows[k] for k in FSCORE_LOSSES if k in rows]
        if fss and math.isclose(ratio, 0.05):
            fs = max(fss, key=lambda r: -math.inf if math.isnan(num(r.get("val_f1")))
                     else num(r.get("val_f1")))
            a, b = num(fs.get("f1_val_threshold")), num(ce.get("f1_val_threshold"))
            verdicts.append(verdict(
                f"FScoreLoss's test F1 >= cross-entropy's F1 at its best threshold (both "
                f"thresholds, and the surrogate, chosen on validation; {tag})",
                f"{fs['loss']} {_fmt(fs, 'f1_val_threshold')} vs ce "
                f"{_fmt(ce, 'f1_val_threshold')}",
                _decided(None if math.isnan(a + b) else a >= b, [fs, ce], target_data)))


def _timing(rows, body, verdicts, target_data):
    ok_rows = [r for r in rows if r.get("status") == "ok"]
    if not ok_rows:
        verdicts.append(verdict("LP losses' per-iteration time <= 1.1x cross-entropy's",
                                "timing rows missing", None))
        return
    for r in ok_rows:
        r["ratio (IQR)"] = (f"{num(r['ratio_to_ce']):.2f}x ({num(r['ratio_to_ce_q25']):.2f}-"
                            f"{num(r['ratio_to_ce_q75']):.2f})")
    body.append("<p>Per-iteration time (forward, loss, backward, optimizer step) of one "
                f"{ok_rows[0]['model']} at batch {ok_rows[0]['batch']} on "
                f"{ok_rows[0]['dataset']}: every loss steps once per round on the same "
                "minibatch, interleaved; median and interquartile range over "
                f"{ok_rows[0]['repeats']} rounds; the ratio is taken per round.</p>")
    body.append(html.table(ok_rows, ["loss", "step_s", "step_s_q25", "step_s_q75", "cpu_s",
                                     "ratio (IQR)"]))
    lp = [r for r in ok_rows if r["loss"] in LP_LOSSES]
    verdicts.append(verdict(
        f"LP losses' per-iteration time <= 1.1x cross-entropy's ({ok_rows[0]['model']}, "
        f"batch {ok_rows[0]['batch']}, CPU, median of interleaved rounds)",
        ", ".join(f"{r['loss']} {num(r['ratio_to_ce']):.2f}x" for r in lp) or "no LP rows",
        time_ok([num(r["ratio_to_ce"]) for r in lp]) if target_data else None))


def _intro(first: dict, lrs: str) -> str:
    """The paragraph saying what the rows are: data, protocol, model, optimizers."""
    return (f"<p>Data: <b>{first.get('dataset')}</b> (LibAUC's protocol: classes 0-4 "
            "negative, 5-9 positive, training positives cut to the given share, test set "
            f"natural); model {first.get('model')}; {first.get('epochs')} epochs; "
            "Adam 1e-3 for cross-entropy and the LP losses, LibAUC's PESG with the "
            f"learning rate of the best validation AUC among {lrs or 'none'} (first "
            "seed), its minibatches half positive; every other minibatch holds both "
            "classes. Mean +- std over seeds; F1 at the threshold chosen on the "
            "validation split. The report runs a reduced grid to fit its time budget "
            "(see the claim for what the targets name); the full study is "
            "<code>sparselp bench train</code> (small CNN, 4 epochs, 3 seeds, 1% and 5% "
            "positives, minibatches 64 to 4,096, the long-tailed task), and "
            "<code>sparselp report --from-csv results</code> draws this section from "
            "its <code>train_runs.csv</code>.</p>")


def render_train(data: dict, out: str, quick: bool = False):
    from benchmarks.train_figures import batch_size_figure, roc_figure
    from benchmarks.train_grid import summarise

    body, verdicts, notes = [], [], []
    rows = data.get("train_runs")
    timing = data.get("train_timing") or []
    timing_target = bool(timing) and all(r.get("dataset") == "fashion-mnist" for r in timing)
    if not rows:
        verdicts.append(verdict("training targets", "training rows missing", None))
        _timing(timing, body, verdicts, timing_target)
        return body, verdicts, notes
    done = [r for r in rows if r.get("seed") not in (None, "")]
    first = done[0] if done else {}
    what = (f"{first.get('dataset')}, {first.get('model')}, {first.get('epochs')} epochs, "
            f"batch {first.get('batch_size')}")
    summary = summarise(rows)
    lrs = ", ".join(sorted({f"{num(r.get('lr')):g}" for r in rows
                            if r.get("study") == "libauc-tuning"}))
    body.append(_intro(first, lrs))
    grid = _where(summary, study="grid") + _where(summary, study="longtail")
    body.append(html.table(grid, ["study", "imratio", "loss", "seeds", "lr", "auc", "auc_std",
                                  "average_precision", "f1_val_threshold",
                                  "f1_val_threshold_std", "f1_at_0.5", "auc_mu", "auc_mu_std",
                                  "val_auc", "val_f1", "status"]))
    roc = roc_figure(rows, out)
    if roc:
        body.append(img(roc.rsplit("/", 1)[-1], "Test ROC curves of each loss (first seed): "
                        "the seed paper's Fig. 2 on this data."))
    size = batch_size_figure(summary, out)
    if size:
        body.append(img(size.rsplit("/", 1)[-1],
                        "Test AUC and F1 against the minibatch size at a fixed number of "
                        "epochs (larger minibatches take fewer steps), mean +- std over "
                        "seeds: whether larger minibatch LPs help."))
    target_data = first.get("dataset") == "fashion-mnist"
    _grid_verdicts(summary, what, verdicts, target_data)
    lt = {r["loss"]: r for r in _where(summary, study="longtail")}
    if "ce" in lt and "multiclass-auc" in lt:
        a, b = num(lt["multiclass-auc"].get("auc_mu")), num(lt["ce"].get("auc_mu"))
        verdicts.append(verdict("long-tailed 10 classes: MultiClassAUCLoss's AUC_mu >= "
                                f"cross-entropy's ({what})",
                                f"{_fmt(lt['multiclass-auc'], 'auc_mu')} vs "
                                f"{_fmt(lt['ce'], 'auc_mu')}",
                                _decided(None if math.isnan(a + b) else a >= b,
                                         list(lt.values()), target_data)))
    _timing(timing, body, verdicts, timing_target)
    if first.get("dataset") == "digits":
        notes.append("Fashion-MNIST is not installed (make data): these runs use scikit-"
                     "learn's digits, which the targets do not name, so their verdicts "
                     "read 'not measured'.")
    return body, verdicts, notes
