"""Sparse factorizations of the Newton systems of Netlib solves, replayed side by side.

For each problem, one solve by ``sparselp.linprog`` records every Newton system
``H = K^T diag(w) K + diag(shift)`` it factors (the weights change the active rows from
step to step). The recorded sequence is then replayed, in one process and one after the
other, through each factorization: the LDL^T of the quasi-definite KKT form analysed once
and refactored (``"ldl"``, QDLDL, without its refinement), SciPy's SuperLU re-analysed at
every step (``"scipy"``), LAPACK's dense Cholesky of the same smaller side
(``"dense-side"``, where the LDL^T costs at least :data:`DENSE_REPLAY_FLOPS` and the
problem has at most ``DENSE_MAX_N`` rows or columns: on sparser factors its cubic cost makes the
replay long and is never the choice), and, where the package
imports, cholespy's sparse Cholesky of ``H`` (built anew each step: it has no
refactorization). Reported per problem: steps, the multiply-adds of one LDL^T
refactorization (what ``"auto"`` compares against :data:`sparselp.linsolve.LDL_FLOPS_MAX`),
the time of each (factor and one solve per step), the worst relative residual
``||H d - r|| / ||r||`` of each, and the auto choice.

Run ``sparselp bench factor-choice [--quick] [--names A B] [--out results/factor_choice.csv]``
(or ``python -m benchmarks.factor_choice``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.netlib_data import load_index, load_problem, netlib_root
from benchmarks.tables import write_csv

__all__ = ["run", "main"]

QUICK = ["AFIRO", "SC50A", "ADLITTLE", "BLEND"]
#: The dense smaller side is replayed where one LDL^T refactorization costs this many
#: multiply-adds or more (PEROLD, MAROS, QAP8 of the shared set)
DENSE_REPLAY_FLOPS = 1e6


def _record(p: dict, time_limit: float):
    """The Newton systems (op, w, shift) of one solve's main operator, in order."""
    from sparselp import linprog
    from sparselp.linsolve import LDLHessian

    class Recorder(LDLHessian):
        def __init__(self):
            super().__init__()
            self.log = []

        def factor(self, system):
            shift = system.shift.expand(system.w.shape[0], system.op.n)
            self.log.append((system.op, system.w.clone(), shift.clone()))
            return super().factor(system)

    rec = Recorder()
    linprog(**p, options={"time_limit": time_limit, "max_iter": 20_000, "linear_solver": rec})
    op = rec.log[0][0]
    return op, [(w, s) for o, w, s in rec.log if o is op]


def _cholespy(op, w, shift):
    """A solve with cholespy's Cholesky of ``H`` (float64), or None where it is absent."""
    try:
        from cholespy import CholeskySolverD, MatrixType
    except ImportError:
        return None
    import scipy.sparse as sp
    (M, dg), = op.scipy_rows(w)
    H = sp.diags(dg + shift[0].numpy())
    H = (H + M.T @ M if M is not None else H).tocoo()
    f = CholeskySolverD(H.shape[0], H.row.astype(np.int32), H.col.astype(np.int32),
                        H.data.astype(np.float64), MatrixType.COO)

    def solve(r):
        x = torch.zeros_like(r[0])
        f.solve(r[0].contiguous(), x)
        return x[None]
    return solve


def _replay(op, systems, make):
    """(seconds, worst relative residual) of factor + one solve for every system."""
    from sparselp.linsolve import NewtonSystem
    g = torch.Generator().manual_seed(0)
    rhs = torch.randn(1, op.n, generator=g, dtype=torch.float64)
    seconds, worst = 0.0, 0.0
    for w, s in systems:
        t = time.perf_counter()
        solve = make(op, w, s)
        if solve is None:
            return float("nan"), float("nan")
        d = solve(rhs)
        seconds += time.perf_counter() - t
        r = NewtonSystem(op, w, s).matvec(d) - rhs
        worst = max(worst, float(r.norm() / rhs.norm()))
    return seconds, worst


def run(quick: bool = False, max_nnz: int = 10_000, names=None, time_limit: float = 60.0):
    from sparselp.linsolve import (DENSE_MAX_N, DenseSideHessian, LDLHessian, NewtonSystem,
                                   ScipyHessian, get_strategy)
    root = netlib_root()
    todo = [r for r in load_index(root) if r["kind"] == "feasible" and int(r["nnz"]) <= max_nnz]
    if quick:
        todo = [r for r in todo if r["name"] in QUICK]
    if names:
        todo = [r for r in todo if r["name"] in names]
    rows = []
    for r in todo:
        p = load_problem(root / r["kind"] / f"{r['name']}.npz")
        p.pop("obj")
        op, systems = _record(p, time_limit)
        ldl = LDLHessian(refine=0)
        flops = ldl.flops(op)
        row = {"name": r["name"], "nnz": int(r["nnz"]), "steps": len(systems), "ldl_flops": flops,
               "auto": get_strategy("auto", op).name}
        dense = flops >= DENSE_REPLAY_FLOPS and min(op.m, op.n) <= DENSE_MAX_N
        makers = {"ldl": lambda o, w, s: ldl.factor(NewtonSystem(o, w, s)),
                  "scipy": lambda o, w, s: ScipyHessian().factor(NewtonSystem(o, w, s)),
                  "dense-side": lambda o, w, s: DenseSideHessian().factor(NewtonSystem(o, w, s))
                  if dense else None,
                  "cholespy": _cholespy}
        for name, make in makers.items():
            row[f"{name}_s"], row[f"{name}_res"] = _replay(op, systems, make)
        rows.append(row)
        print(_fmt(row), flush=True)
    return rows


def _fmt(r):
    return (f"{r['name']:10s} steps={r['steps']:5d} flops={r['ldl_flops']:.1e} "
            f"ldl={r['ldl_s']:7.3f}s ({r['ldl_res']:.0e}) scipy={r['scipy_s']:7.3f}s "
            f"({r['scipy_res']:.0e}) dense-side={r['dense-side_s']:7.3f}s "
            f"({r['dense-side_res']:.0e}) cholespy={r['cholespy_s']:7.3f}s ({r['cholespy_res']:.0e}) "
            f"auto={r['auto']}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="four small problems")
    ap.add_argument("--max-nnz", type=int, default=10_000)
    ap.add_argument("--names", nargs="*")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per recording solve")
    ap.add_argument("--out", default="results/factor_choice.csv")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = run(args.quick, args.max_nnz, args.names, args.time_limit)
    tot = {k: sum(r[f"{k}_s"] for r in rows) for k in ("ldl", "scipy", "dense-side", "cholespy")}
    print("total: " + " ".join(f"{k} {v:.2f}s" for k, v in tot.items()))
    write_csv(rows, args.out)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
