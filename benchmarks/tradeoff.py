r"""Accuracy against reduction ratio for every sketch and SDR projection of an LP's rows.

For each LP, each projection family and each reduction ratio ``r`` on a grid, the LP
``(c, A, b)`` is replaced by ``(c, S A, S b)`` with ``S`` of about ``r * m`` rows
(:func:`sdr.reduce.reduce`) and the reduced LP is solved (HiGHS, the reference). Measured:
relative objective error, relative solution error, cosine between the gradients of the
optimal value with respect to the LP's parameters (scores for minibatch LPs, ``b`` for the
random LP) under the reduced and the full LP, the solver status, solve and projection
times, and the bytes of the stored LP (memory: ``LinearProgram.nbytes``, the solver's
workspace not counted). Then :func:`sdr.select.select_dimension` picks a ratio by K-fold
cross-validation on the same pool and the benchmark checks that the choice lands within
one grid step of the smallest ratio whose measured cosine meets the target (0.95).

LPs (see :mod:`benchmarks.tradeoff_lps`): (a) a random dense LP with ``m >> n``; (b) the
F-score and precision-at-recall minibatch LPs of :mod:`sparselp.formulations` on
scikit-learn's digits (5-9 vs 0-4) and breast-cancer data, with a fixed logistic-regression
scorer fitted on the other half of the data.

Projections: SDR group averages (:mod:`sdr.projection`) with SIR, SAVE and directional
regression, the response being (label, score) for minibatch LPs; and the sketches of
:mod:`sketching` (Gaussian, SRHT, CountSketch, sparse sign, uniform row sampling), each
once on all rows and once ("+bounds") on the rows with more than one nonzero, the
single-nonzero rows (bounds written as rows) being kept (:class:`sdr.reduce.KeepRows`).
A signed sketch, or a sampler, of all rows makes these LPs of free variables unbounded
or infeasible (status recorded, metrics NaN, CV score 0): that is a finding, not a bug.

Usage::

    python -m benchmarks.tradeoff [--quick] [--out results/tradeoff.csv] [--seed 0]
                                  [--solver highs|sparselp] [--no-plots]

writes the CSV, one PNG per LP next to it (x = reduction ratio, y = gradient cosine, one
line per projection, the 0.95 line, a star at the smallest ratio meeting it, a diamond at
the CV choice) and prints a summary table.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import time

import numpy as np

from benchmarks.tradeoff_lps import (dataset_pool, fscore_builder, precision_at_recall_builder,
                                     random_lp_builder)
from sdr.estimators import (DirectionalRegression, SlicedAverageVarianceEstimation,
                            SlicedInverseRegression)
from sdr.evaluation import compare_reduction, full_solution
from sdr.select import SDRFamily, SketchFamily, select_dimension

GRID = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
QUICK_GRID = (0.05, 0.2, 0.5, 1.0)
TARGET = 0.95


def _datasets(quick: bool, seed: int):
    """``(name, X, y, scores, build)`` for every LP of the study."""
    m, n = (600, 6) if quick else (5000, 20)
    X, y, build = random_lp_builder(m, n, seed)
    yield "random_dense", X, y, None, build
    names = [("breast_cancer", "precision_at_recall")] if quick else [
        (d, f) for d in ("digits", "breast_cancer") for f in ("fscore", "precision_at_recall")]
    for data, form in names:
        X, y, s = dataset_pool(data, seed)
        maker = fscore_builder if form == "fscore" else precision_at_recall_builder
        yield f"{data}_{form}", X, y, s, maker(s, y)


def _families(quick: bool, seed: int):
    import sketching  # noqa: PLC0415  (the sketch package; imported where it is used)

    sdr = [SDRFamily(SlicedInverseRegression(n_components=1), random_state=seed,
                     name="SDR-SIR")]
    sk_names = ["GaussianSketch", "RowSampler"] if quick else [
        "GaussianSketch", "SRHTSketch", "CountSketch", "SparseSignSketch", "RowSampler"]
    if not quick:
        sdr += [SDRFamily(SlicedAverageVarianceEstimation(n_components=2), random_state=seed,
                          name="SDR-SAVE"),
                SDRFamily(DirectionalRegression(n_components=2), random_state=seed,
                          name="SDR-DR")]
    def make(nm, keep):
        cls = getattr(sketching, nm)
        if nm == "SparseSignSketch":  # its default 8 nonzeros per column need s >= 8
            def cls(k, m, generator=None, _c=cls):
                return _c(k, m, generator=generator, nnz_per_col=min(8, k))
        return SketchFamily(cls, seed=seed, name=nm + ("+bounds" if keep else ""),
                            keep_bounds=keep)

    # Each sketch twice: on all rows, and on the coupling rows only with the single-nonzero
    # rows (bounds written as rows) kept, which is what can keep a sketched LP bounded.
    sketches = [make(nm, keep) for keep in (False, True) for nm in sk_names
                if hasattr(sketching, nm)]
    return sdr + sketches


def _grid_index(grid, value) -> int:
    return len(grid) if value is None else list(grid).index(value)


_NUMERIC = ("ratio", "k", "m", "grad_cos", "obj_rel_err", "sol_rel_err", "time_reduced",
            "time_project", "time_make_projection", "time_full", "bytes_full",
            "bytes_reduced", "memory_ratio")


def _mean_rows(results: list[dict]) -> dict:
    """Average over evaluation minibatches; a reduced LP not solved to optimality counts
    as cosine 0 (as in the cross-validation), NaN errors are averaged over the rest."""
    out = {}
    for key in _NUMERIC:
        vals = np.array([r[key] for r in results], dtype=float)
        if key == "grad_cos":
            vals = np.where(np.isfinite(vals), vals, 0.0)
        fin = vals[np.isfinite(vals)]
        out[key] = float(fin.mean()) if fin.size else float("nan")
    out["status"] = "/".join(sorted({r["status"] for r in results}))
    out["n_failed"] = sum(r["status"] != "optimal" for r in results)
    return out


# Over 60 lines only through its docstring; the body is about 49.
def run(quick: bool = False, seed: int = 0, n_splits: int | None = None,
        target: float = TARGET, grid=None, n_eval: int | None = None,
        solver: str = "highs") -> list[dict]:
    """Run the study; one row per (LP, projection, ratio).

    The pool of every LP (samples, or rows of the random LP) is split 60/40. On the 60%
    part, :func:`sdr.select.select_dimension` cross-validates with ``n_splits`` folds,
    whose held-out folds are minibatches of size ``B = 0.6 N / n_splits``. The *measured*
    curve is what the CV predicts: the projection family is fitted on the whole 60% part
    and applied to ``n_eval`` fresh minibatches of the same size ``B`` drawn from the 40%
    part;
    metrics are averaged over them (a reduced LP not solved to optimality counts as
    cosine 0 and is counted in ``n_failed``).

    Every row also carries the LP-and-projection summary: ``smallest_ok`` (smallest grid
    ratio whose measured mean gradient cosine is ``>= target``, or None), ``cv_choice``,
    ``cv_mean`` (CV mean cosine at this ratio) and ``within_one_step`` (the two lie at
    most one grid step apart; None counts as one step past the grid's end).
    """
    grid = tuple(grid or (QUICK_GRID if quick else GRID))
    n_splits = n_splits or (3 if quick else 5)
    n_eval = n_eval or (2 if quick else 6)
    rng = np.random.default_rng(seed)
    rows = []
    for name, X, y, scores, build in _datasets(quick, seed):
        perm = rng.permutation(y.size)
        cv_idx, ev_idx = perm[: int(0.6 * y.size)], perm[int(0.6 * y.size):]
        B = cv_idx.size // n_splits
        # Fresh minibatches of the CV's size B, drawn from the held-back 40% (they may
        # overlap one another, never the CV pool).
        batches = [np.sort(rng.choice(ev_idx, size=B, replace=False)) for _ in range(n_eval)]
        evals = []
        for idx in batches:
            mlp = build(idx)
            t0 = time.perf_counter()
            evals.append((idx, mlp, full_solution(mlp, solver), time.perf_counter() - t0))
        s_cv = None if scores is None else scores[cv_idx]
        for fam in _families(quick, seed):
            fam.fit(X[cv_idx], y[cv_idx], s_cv)
            curve = []
            for r in grid:
                results = []
                for idx, mlp, full, t_full in evals:
                    t1 = time.perf_counter()
                    S = fam.make(r, X[idx], y[idx], mlp)
                    t_make = time.perf_counter() - t1
                    res = compare_reduction(mlp, S, solver, full=full)
                    res.update(time_make_projection=t_make, time_full=t_full,
                               memory_ratio=res["bytes_reduced"] / res["bytes_full"])
                    results.append(res)
                row = _mean_rows(results)
                row.update(dataset=name, projection=fam.name, grid_ratio=r, batch_size=B)
                curve.append(row)
            ok = [row["grid_ratio"] for row in curve if row["grad_cos"] >= target]
            smallest = ok[0] if ok else None
            choice, table = select_dimension(
                X[cv_idx], y[cv_idx], lambda idx: build(cv_idx[idx]), fam, grid,
                scores=s_cv, target=target, n_splits=n_splits, random_state=seed,
                solver=solver)
            within = abs(_grid_index(grid, choice) - _grid_index(grid, smallest)) <= 1
            for row, cv in zip(curve, table):
                row.update(cv_mean=cv["mean"], cv_failed=cv["n_failed"], smallest_ok=smallest,
                           cv_choice=choice, within_one_step=within)
                rows.append(row)
    return rows


COLUMNS = ["dataset", "projection", "batch_size", "grid_ratio", "ratio", "k", "m", "status",
           "n_failed", "grad_cos",
           "obj_rel_err", "sol_rel_err", "cv_mean", "cv_failed", "smallest_ok", "cv_choice",
           "within_one_step", "time_full", "time_reduced", "time_project",
           "time_make_projection", "bytes_full", "bytes_reduced", "memory_ratio"]


def write_csv(rows: list[dict], path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def plot(rows: list[dict], outdir: str, target: float = TARGET) -> list[str]:
    """One PNG per LP: gradient cosine against reduction ratio, one line per projection."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    os.makedirs(outdir, exist_ok=True)
    paths = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        fig, ax = plt.subplots(figsize=(8.6, 4.6))
        sub = [r for r in rows if r["dataset"] == ds]
        colors = plt.get_cmap("tab20").colors
        for i, proj in enumerate(dict.fromkeys(r["projection"] for r in sub)):
            pr = [r for r in sub if r["projection"] == proj]
            x = [r["grid_ratio"] for r in pr]
            yv = [r["grad_cos"] if math.isfinite(r["grad_cos"]) else 0.0 for r in pr]
            style = "-" if proj.startswith("SDR") else (":" if "+bounds" in proj else "--")
            (line,) = ax.plot(x, yv, marker=".", ls=style, color=colors[i % 20], label=proj)
            col = line.get_color()
            if pr[0]["smallest_ok"] is not None:
                j = x.index(pr[0]["smallest_ok"])
                ax.plot(x[j], yv[j], marker="*", ms=14, color=col, ls="none")
            if pr[0]["cv_choice"] is not None:
                j = x.index(pr[0]["cv_choice"])
                ax.plot(x[j], yv[j], marker="D", ms=8, mfc="none", color=col, ls="none")
        ax.axhline(target, color="k", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("reduction ratio k / m")
        ax.set_ylabel("gradient cosine, reduced vs full\n(0: reduced LP not optimal)")
        ax.set_title(f"{ds}: * smallest ratio with cosine >= {target}, \u25c7 CV choice",
                     fontsize=9)
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        path = os.path.join(outdir, f"tradeoff_{ds}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def summary(rows: list[dict]) -> list[dict]:
    """One row per (LP, projection): smallest ratio meeting the target, CV choice, statuses."""
    out = {}
    for r in rows:
        key = (r["dataset"], r["projection"])
        s = out.setdefault(key, dict(dataset=r["dataset"], projection=r["projection"],
                                     smallest_ok=r["smallest_ok"], cv_choice=r["cv_choice"],
                                     within_one_step=r["within_one_step"], statuses=set()))
        s["statuses"].update(r["status"].split("/"))
    for s in out.values():
        s["statuses"] = "/".join(sorted(s["statuses"]))
    return list(out.values())


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small LPs and grid (< 1 minute)")
    p.add_argument("--out", default=os.path.join("results", "tradeoff.csv"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--solver", choices=("highs", "sparselp"), default="highs",
                   help="LP solver: HiGHS (reference) or sparselp.solver.solve")
    args = p.parse_args(argv)
    rows = run(quick=args.quick, seed=args.seed, solver=args.solver)
    write_csv(rows, args.out)
    if not args.no_plots:
        plot(rows, os.path.dirname(args.out) or ".")
    print(f"{'dataset':34s} {'projection':24s} {'smallest':>8s} {'cv':>6s} {'1-step':>6s}  "
          "statuses")
    for s in summary(rows):
        print(f"{s['dataset']:34s} {s['projection']:24s} {str(s['smallest_ok']):>8s} "
              f"{str(s['cv_choice']):>6s} {str(s['within_one_step']):>6s}  {s['statuses']}")
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
