r"""Iterative Hessian Sketch / Newton Sketch against exact Newton on a tall dense LP.

The LP is Mangasarian's feasible random LP with a known optimum
(:func:`benchmarks.random_lps.mangasarian_lp`), ``m = 1e5`` rows and ``n = 200`` columns by
default. The same solver (:func:`sparselp.solver.solve`, proximal ALM) runs with

- ``exact``: ``linear_solver="cholesky"`` (Gram matrix of the active rows, ``O(|J| n^2)``);
- one row per sketch family: :class:`sketching.SketchedHessian` with ``s = 4 n`` rows,
  a fresh sketch per Newton step, exact gradient.

Part ``solve`` (one row per method): Newton steps (``nit``) and their ratio to exact, wall
time per LP solve and the speed-up over exact, time spent in the Newton systems alone
(``linsolve_s``: factor + solve) and its speed-up, in total and per Newton step
(``step_speedup``), the mean number of active rows ``|J|`` per Newton system, the share
of Newton steps that were sketched (the others had ``|J| <= s`` and used the exact Gram
matrix), the relative objective error
``|f - f*| / |f*|``, and whether the issue's target holds: relative error ``<= 1e-6``
within ``2x`` the exact steps and ``>= 5x`` less time per solve.

The time per solve is bounded by Amdahl's law: a Hessian strategy can only remove the
``linsolve_s`` share of it; the rest (products with ``A`` in gradients, line searches and
residual checks, and the equilibration) is the same for every strategy. Part ``system``
therefore also times one Newton system in the regime sketching is made for, every row
active (``|J| = m``, e.g. the first steps from an infeasible start): factor + solve time
per strategy, its speed-up, and the relative error of the sketched direction in the
``H``-norm, ``||d_s - d||_H / ||d||_H``.

Usage::

    python -m benchmarks.ihs [--quick] [--out results/ihs.csv] [--m 100000] [--n 200]
        [--binding 50000] [--threads 1] [--sketches countsketch uniform ...]
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from benchmarks.random_lps import mangasarian_lp
from sketching.hessian import SketchedHessian
from sparselp.linsolve import CholeskyHessian, HessianStrategy
from sparselp.problem import LinearProgram
from sparselp.solver import solve

__all__ = ["run", "run_systems", "main", "COLUMNS", "SYSTEM_COLUMNS", "SKETCH_KINDS"]

SKETCH_KINDS = ("countsketch", "sparse_sign", "uniform", "leverage", "srht", "gaussian")
COLUMNS = ("part", "method", "m", "n", "binding", "s", "nit", "nit_ratio", "time_s", "speedup",
           "linsolve_s", "linsolve_speedup", "step_speedup", "mean_active", "sketched_frac",
           "rel_err", "status", "target_met")
SYSTEM_COLUMNS = ("part", "method", "m", "n", "s", "system_s", "system_speedup", "dir_err")


class _Timed(HessianStrategy):
    """Wraps a strategy and accumulates the wall time of its factor and solve calls."""

    def __init__(self, inner: HessianStrategy):
        self.inner = inner
        self.name, self.exact = inner.name, inner.exact
        self.seconds = 0.0
        self.active: list[int] = []

    def factor(self, system):
        self.active.append(int((system.w > 0).sum()))
        t0 = time.perf_counter()
        solve_fn = self.inner.factor(system)
        self.seconds += time.perf_counter() - t0

        def timed(rhs):
            t1 = time.perf_counter()
            out = solve_fn(rhs)
            self.seconds += time.perf_counter() - t1
            return out
        return timed


def _solve_once(lp, strategy, tol):
    timed = _Timed(strategy)
    t0 = time.perf_counter()
    sol = solve(lp, linear_solver=timed, tol=tol)
    mean_active = sum(timed.active) / max(1, len(timed.active))
    return sol, time.perf_counter() - t0, timed.seconds, mean_active


def run_systems(m: int, n: int, sketches=SKETCH_KINDS, sketch_factor: float = 4.0,
                repeats: int = 3, seed: int = 0) -> list[dict]:
    """Time one Newton system with every row active, exact against each sketch.

    ``H = A^T A + 1e-6 I`` for a Gaussian ``A`` of shape ``(m, n)``; times are the minimum
    over ``repeats`` fresh sketches, ``dir_err`` the mean H-norm error of the direction.
    """
    from sparselp.linsolve import NewtonSystem
    from sparselp.operators import DenseOperator

    g = torch.Generator().manual_seed(seed)
    op = DenseOperator(torch.randn(m, n, generator=g, dtype=torch.float64))
    w = torch.ones(1, m, dtype=torch.float64)
    system = NewtonSystem(op, w, torch.full((1, n), 1e-6, dtype=torch.float64))
    rhs = torch.randn(1, n, generator=g, dtype=torch.float64)
    rows, d_exact = [], None
    for name in ("exact",) + tuple(sketches):
        best, errs = float("inf"), []
        for r in range(repeats):
            strat = CholeskyHessian() if name == "exact" else SketchedHessian(
                name, sketch_factor=sketch_factor, generator=seed + 1000 * r)
            t0 = time.perf_counter()
            d = strat.factor(system)(rhs)
            best = min(best, time.perf_counter() - t0)
            if name == "exact":
                d_exact = d
            e = d - d_exact
            errs.append(float(((e * system.matvec(e)).sum() /
                               (d_exact * system.matvec(d_exact)).sum()).sqrt()))
        rows.append({"part": "system", "method": name, "m": m, "n": n,
                     "s": "" if name == "exact" else strat.size_for(n), "system_s": best,
                     "dir_err": sum(errs) / len(errs)})
    for row in rows:
        row["system_speedup"] = rows[0]["system_s"] / row["system_s"]
    return rows


# Over 60 lines only through its docstring; the body is about 45.
def run(quick: bool = False, m: int | None = None, n: int | None = None,
        sketches=SKETCH_KINDS, sketch_factor: float = 4.0, tol: float = 1e-7,
        repeats: int = 1, seed: int = 0, target_err: float = 1e-6,
        systems: bool = True, n_binding: int | None = None) -> list[dict]:
    """Solve one random LP exactly and with every sketch; return one row per method.

    With ``systems=True`` the rows of :func:`run_systems` (one all-active Newton system
    of the same size) follow, marked ``part="system"``.

    Parameters
    ----------
    quick : bool
        ``m = 5000, n = 50`` unless given.
    m, n : int, optional
        LP size (default ``1e5 x 200``).
    sketches : iterable of str
        Sketch families (keys of :data:`sketching.hessian.SKETCHES`).
    sketch_factor : float
        ``s = sketch_factor * n``.
    tol : float
        Solver tolerance (relative KKT residuals); ``1e-7`` brings the objective well
        within ``target_err``.
    repeats : int
        Times are the minimum over this many interleaved solves (the machine may be
        shared); the other columns are those of the last repeat.
    seed : int
        Seed of the LP and of the sketches.
    target_err : float
        Relative objective error the target asks for.
    systems : bool
        Append the all-active Newton-system rows.
    n_binding : int, optional
        Rows with a positive optimal dual (default ``n``: a nondegenerate vertex, few
        active rows near the optimum). Many binding rows (e.g. ``m // 2``) keep ``|J|``
        large in every Newton step: the regime sketching is made for.

    Returns
    -------
    list of dict
        Keys :data:`COLUMNS` (``part="solve"``), then :data:`SYSTEM_COLUMNS`.
    """
    m = m or (5000 if quick else 100_000)
    n = n or (50 if quick else 200)
    c, A, b, x_star = mangasarian_lp(m, n, seed=seed, n_binding=n_binding)
    f_star = float(c @ x_star)
    lp = LinearProgram(c, A, b)
    methods = [("exact", None)] + [(k, k) for k in sketches]
    # Untimed warm-up solve: the first large allocations (page faults, allocator growth)
    # would otherwise be charged to whichever method runs first.
    solve(lp, linear_solver="cholesky", tol=tol)
    best: dict = {}
    for r in range(repeats):  # interleaved, so that a load change hits every method
        for name, kind in methods:
            strat = CholeskyHessian() if kind is None else SketchedHessian(
                kind, sketch_factor=sketch_factor, generator=seed + 1000 * r)
            sol, t, tl, act = _solve_once(lp, strat, tol)
            prev = best.get(name)
            best[name] = (sol, strat, act, min(t, prev[3]) if prev else t,
                          min(tl, prev[4]) if prev else tl)
    rows = []
    for name, kind in methods:
        sol, strat, act, t, tl = best[name]
        rows.append({
            "part": "solve", "method": name, "m": m, "n": n,
            "binding": n if n_binding is None else n_binding,
            "s": "" if kind is None else strat.size_for(n), "nit": int(sol.nit),
            "time_s": t, "linsolve_s": tl, "mean_active": act,
            "sketched_frac": 0.0 if kind is None else strat.sketched_calls / max(1, strat.calls),
            "rel_err": abs(float(sol.fun) - f_star) / abs(f_star), "status": sol.status.name})
    exact = rows[0]
    for row in rows:
        row["nit_ratio"] = row["nit"] / exact["nit"]
        row["speedup"] = exact["time_s"] / row["time_s"]
        row["linsolve_speedup"] = exact["linsolve_s"] / row["linsolve_s"]
        # Newton-system time per step: what the strategy itself saves, whatever the count.
        row["step_speedup"] = (exact["linsolve_s"] / exact["nit"]) / (
            row["linsolve_s"] / row["nit"])
        row["target_met"] = "" if row["method"] == "exact" else bool(
            row["rel_err"] <= target_err and row["nit_ratio"] <= 2 and row["speedup"] >= 5)
    if systems:
        rows += run_systems(m, n, sketches, sketch_factor, repeats=max(repeats, 3), seed=seed)
    return rows


def main(argv: list[str] | None = None) -> int:
    from benchmarks.tables import print_table, write_csv

    p = argparse.ArgumentParser(prog="sparselp bench ihs", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="m = 5000, n = 50")
    p.add_argument("--out", default="results/ihs.csv", help="CSV path")
    p.add_argument("--m", type=int, default=None)
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--sketches", nargs="+", choices=SKETCH_KINDS, default=list(SKETCH_KINDS))
    p.add_argument("--factor", type=float, default=4.0, help="sketch size / n")
    p.add_argument("--tol", type=float, default=1e-7)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--binding", type=int, default=None,
                   help="rows with a positive optimal dual (default n)")
    p.add_argument("--no-systems", action="store_true", help="skip the all-active system part")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(quick=args.quick, m=args.m, n=args.n, sketches=args.sketches,
               sketch_factor=args.factor, tol=args.tol, repeats=args.repeats, seed=args.seed,
               systems=not args.no_systems, n_binding=args.binding)
    print_table([r for r in rows if r["part"] == "solve"], COLUMNS)
    if not args.no_systems:
        print()
        print_table([r for r in rows if r["part"] == "system"], SYSTEM_COLUMNS)
    write_csv(rows, args.out, COLUMNS + SYSTEM_COLUMNS[5:])
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
