"""Fuzzing the solver against HiGHS: many small random LPs of every awkward kind.

``python -m benchmarks.fuzz_lp [--quick] [--count 1000] [--out results/fuzz_lp.csv]``
(``sparselp bench fuzz``) draws LPs from the families below, in float64 and float32,
solves each with :func:`sparselp.linprog` and with scipy's HiGHS, and counts

- **false OPTIMAL**: ours says OPTIMAL but HiGHS does not, or our ``x`` violates the
  constraints (recomputed in float64 on the original data) by more than ``2 tol``
  relative, or our objective is off HiGHS's by more than ``10 tol (1 + |f*|)`` and our own
  duals do not prove ours optimal (dual residual and gap, recomputed in float64, within
  ``2 tol``): the one failure that must never happen. HiGHS works to absolute
  tolerances on its scaled problem, so on badly scaled LPs its vertex can violate a row by
  far more than that row's size; a disagreement that our certificate settles is listed
  (column ``why``) but not counted;
- **status agreement**: ours and HiGHS's status (scipy's codes) equal. An iteration limit
  on a solvable LP is a disagreement, not a false answer.

Families (m rows, n columns, both drawn small so that a thousand LPs take minutes):
``dense``, ``sparse`` (10% density), ``degenerate`` (many constraints tight at the same
vertex), ``badly_scaled`` (rows and columns scaled by 10^U(-4, 4)), ``fixed_free`` (some
fixed and some free variables, bounded through dual feasibility), ``empty_rows`` (zero
rows with b >= 0), ``equality`` (equality rows as well), ``infeasible`` (two opposite
rows that cannot both hold), ``unbounded`` (a descent ray inside the feasible set).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

__all__ = ["FAMILIES", "make_lp", "check_one", "run", "summarise", "main"]

FAMILIES = ("dense", "sparse", "degenerate", "badly_scaled", "fixed_free", "empty_rows",
            "equality", "infeasible", "unbounded")
COLUMNS = ("family", "dtype", "seed", "m", "n", "highs_status", "status", "agree",
           "false_optimal", "obj_err", "primal_res", "seconds", "why")


def _feasible_base(rng, m, n, density=1.0):
    """A x <= b feasible at x0 in the box [0, 1]^n, with c = -A^T y - z for y, z >= 0 so
    that the LP is bounded (dual feasible) on the box."""
    A = rng.standard_normal((m, n))
    if density < 1:
        A *= rng.random((m, n)) < density
    x0 = rng.random(n)
    b = A @ x0 + rng.random(m)
    return A, b, x0


def make_lp(family: str, seed: int) -> dict:
    """scipy-style ``linprog`` arguments of one LP of ``family``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    m, n = int(rng.integers(3, 40)), int(rng.integers(2, 30))
    A, b, x0 = _feasible_base(rng, m, n, 0.1 if family == "sparse" else 1.0)
    c = rng.standard_normal(n)
    lp = {"c": c, "A_ub": A, "b_ub": b, "bounds": [(0.0, 1.0)] * n}
    if family == "degenerate":
        tight = rng.random(m) < 0.6
        x0 = (rng.random(n) < 0.5).astype(float)  # a vertex of the box
        lp["b_ub"] = np.where(tight, A @ x0, A @ x0 + rng.random(m))
    elif family == "badly_scaled":
        r, s = 10.0 ** rng.uniform(-4, 4, m), 10.0 ** rng.uniform(-4, 4, n)
        lp["A_ub"], lp["b_ub"] = (A * r[:, None]) * s[None, :], b * r
        lp["c"], lp["bounds"] = c * s, [(0.0, 1.0 / sj) for sj in s]
    elif family == "fixed_free":
        bounds = []
        for j in range(n):
            u = rng.random()
            bounds.append((x0[j], x0[j]) if u < 0.2 else (None, None) if u < 0.4
                          else (0.0, 1.0))
        # bounded: c = -A^T y (y >= 0) plus a part that the box absorbs
        y = rng.random(m)
        free = np.array([bd == (None, None) for bd in bounds])
        lp["c"] = np.where(free, -A.T @ y, c)
        lp["bounds"] = bounds
    elif family == "empty_rows":
        k = max(1, m // 4)
        lp["A_ub"] = np.vstack([A, np.zeros((k, n))])
        lp["b_ub"] = np.concatenate([b, rng.random(k)])
    elif family == "equality":
        k = max(1, min(n - 1, m // 3))
        E = rng.standard_normal((k, n))
        lp["A_eq"], lp["b_eq"] = E, E @ x0
    elif family == "infeasible":
        a = rng.standard_normal(n)
        lo = float(a @ x0)
        lp["A_ub"] = np.vstack([A, a, -a])
        lp["b_ub"] = np.concatenate([b, [lo - 1.0], [-lo]])  # a x <= lo - 1 and a x >= lo
    elif family == "unbounded":
        d = rng.random(n)  # a ray: A d <= 0 after flipping rows, c d < 0
        sign = np.where(A @ d > 0, -1.0, 1.0)
        lp["A_ub"], lp["b_ub"] = A * sign[:, None], np.abs(b) + np.abs(A @ x0)
        lp["c"] = -np.abs(c) - 0.1
        lp["bounds"] = [(0.0, None)] * n
    return lp


def _primal_residual(lp: dict, x) -> float:
    """max relative violation of ``x`` (float64, the original data)."""
    viol, scale = [0.0], [0.0]
    for M, v, eq in ((lp.get("A_ub"), lp.get("b_ub"), False),
                     (lp.get("A_eq"), lp.get("b_eq"), True)):
        if M is not None:
            r = M @ x - v
            viol.append(float(np.max(np.abs(r) if eq else np.clip(r, 0, None), initial=0)))
            scale.append(float(np.max(np.abs(v), initial=0)))
    for j, (lo, hi) in enumerate(lp["bounds"]):
        if lo is not None:
            viol.append(max(0.0, lo - x[j]))
            scale.append(abs(lo))
        if hi is not None:
            viol.append(max(0.0, x[j] - hi))
            scale.append(abs(hi))
    return max(viol) / (1 + max(scale))


def _certificate(lp: dict, res, tol: float, term_scaled: bool) -> tuple[float, float]:
    """(dual residual, gap) of our primal-dual pair, float64 on the original data, relative
    as :class:`sparselp.Solution` defines them (``term_scaled``, float32: the dual
    residual of a column over the size of its terms where the plain one exceeds ``tol``,
    :class:`sparselp.residuals.Residuals`)."""
    c, x = lp["c"], np.asarray(res.x, dtype=float)
    y = -np.asarray(res.ineqlin.marginals, dtype=float)
    g, dual = c + lp["A_ub"].T @ y, -float(lp["b_ub"] @ y)
    terms = np.abs(c) + abs(lp["A_ub"]).T @ np.abs(y)
    if lp.get("A_eq") is not None:
        y_eq = -np.asarray(res.eqlin.marginals, dtype=float)
        g, dual = g + lp["A_eq"].T @ y_eq, dual - float(lp["b_eq"] @ y_eq)
        terms = terms + abs(lp["A_eq"]).T @ np.abs(y_eq)
    v_lo, v_hi = np.asarray(res.lower.marginals), -np.asarray(res.upper.marginals)
    lo = np.array([-np.inf if a is None else a for a, _ in lp["bounds"]])
    hi = np.array([np.inf if b is None else b for _, b in lp["bounds"]])
    g = g - v_lo + v_hi
    terms = np.asarray(terms).ravel() + np.abs(v_lo) + np.abs(v_hi)
    dual += float(np.where(np.isfinite(lo), lo, 0) @ v_lo)
    dual -= float(np.where(np.isfinite(hi), hi, 0) @ v_hi)
    pobj = float(c @ x)
    plain = 1 + np.abs(c).max()
    dual_res = float(np.abs(g).max() / plain)
    if term_scaled and dual_res > tol:
        dual_res = float((np.abs(g) / np.maximum(plain, 1 + terms)).max())
    return dual_res, abs(pobj - dual) / (1 + abs(pobj) + abs(dual))


def _worst_row(lp: dict, x) -> float:
    """The largest violation of a row of A_ub x <= b_ub relative to ``1 + |b_i|``."""
    r = (lp["A_ub"] @ x - lp["b_ub"]) / (1 + np.abs(lp["b_ub"]))
    return float(max(r.max(), 0))


def check_one(family: str, seed: int, dtype: str = "float64") -> dict:
    """Solve one LP both ways; the row of :data:`COLUMNS`."""
    import torch
    from scipy.optimize import linprog as highs_linprog

    from sparselp import linprog
    from sparselp.options import SolverOptions

    lp = make_lp(family, seed)
    ref = highs_linprog(method="highs", **lp)
    dt = getattr(torch, dtype)
    tol = SolverOptions().tol_for(dt)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = linprog(**lp, dtype=dt)
    row = {"family": family, "dtype": dtype, "seed": seed, "m": len(lp["b_ub"]),
           "n": len(lp["c"]), "highs_status": int(ref.status), "status": int(res.status),
           "seconds": time.perf_counter() - t0, "why": ""}
    row["agree"] = row["status"] == row["highs_status"]
    false = False
    if res.status == 0:
        x = np.asarray(res.x, dtype=float)
        row["primal_res"] = _primal_residual(lp, x)
        if ref.status != 0:
            false, row["why"] = True, f"HiGHS status {ref.status}"
        else:
            err = abs(float(lp["c"] @ x) - ref.fun) / (1 + abs(ref.fun))
            row["obj_err"] = err
            if row["primal_res"] > 2 * tol:
                false, row["why"] = True, f"primal residual {row['primal_res']:.2e} > 2 tol"
            elif err > 10 * tol:
                dual_res, gap = _certificate(lp, res, tol, dtype != "float64")
                false = not (dual_res <= 2 * tol and gap <= 2 * tol)
                row["why"] = (f"objective error {err:.2e} > 10 tol"
                              + ("" if false else f"; ours certified (dual residual "
                                 f"{dual_res:.1e}, gap {gap:.1e}), HiGHS's x violates a "
                                 f"row by {_worst_row(lp, ref.x):.1e} (relative to 1 + |b_i|)"))
    row["false_optimal"] = false
    return row


def run(count: int = 1000, dtypes=("float64", "float32"), seed: int = 0,
        quick: bool = False, progress: bool = False) -> list[dict]:
    """``count`` LPs (spread over the families, alternating dtypes); ``quick``: 36."""
    import torch
    torch.set_num_threads(1)
    count = 36 if quick else count
    rows = []
    for i in range(count):
        fam = FAMILIES[i % len(FAMILIES)]
        dt = dtypes[(i // len(FAMILIES)) % len(dtypes)]
        rows.append(check_one(fam, seed + i, dt))
        if progress and (i + 1) % 100 == 0:
            print(f"  {i + 1}/{count} LPs", flush=True)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """One row per (family, dtype) and a total: LPs, agreement, false OPTIMAL."""
    out = []
    keys = sorted({(r["family"], r["dtype"]) for r in rows}) + [("all", "all")]
    for fam, dt in keys:
        sel = [r for r in rows if fam == "all" or (r["family"], r["dtype"]) == (fam, dt)]
        out.append({"family": fam, "dtype": dt, "lps": len(sel),
                    "agreement": sum(r["agree"] for r in sel) / len(sel),
                    "false_optimal": sum(r["false_optimal"] for r in sel),
                    "mean_s": sum(r["seconds"] for r in sel) / len(sel)})
    return out


def main(argv=None) -> list[dict]:
    """Command line: print the summary and the disagreements, write the CSV."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.fuzz_lp",
                                description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="36 LPs")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join("results", "fuzz_lp.csv"))
    a = p.parse_args(argv)
    from benchmarks.tables import print_table, write_csv
    rows = run(a.count, seed=a.seed, quick=a.quick, progress=not a.quick)
    bad = [r for r in rows if not r["agree"] or r["false_optimal"]]
    if bad:
        print("disagreements:")
        print_table(bad, COLUMNS)
    print_table(summarise(rows), ("family", "dtype", "lps", "agreement", "false_optimal",
                                  "mean_s"))
    write_csv(rows, a.out, COLUMNS)
    print(f"wrote {a.out}")
    return rows


if __name__ == "__main__":
    main()
