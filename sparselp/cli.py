"""``sparselp solve`` and ``sparselp plan``: solve an LP file, or plan a loss's memory.

Run as ``python -m sparselp.cli solve FILE``. The full ``sparselp`` console command adds
the ``bench`` and ``report`` subcommands of :mod:`benchmarks.cli` to the parser built here
(:func:`new_parser`, :func:`register_solve`); this module never imports ``benchmarks``.

Exit codes (documented in ``sparselp --help`` as well):

- 0: success (for ``solve``: the solver reported an optimal, verified answer);
- 1: the solver did not reach an optimal answer (iteration limit, infeasible, unbounded,
  numerical error), a report section / benchmark failed, or (``plan``) no way of running
  fits the memory budget;
- 2: usage error, or a missing or malformed input file;
- 3: a component is not available (a benchmark module that is not installed).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import torch

from sparselp.io import LPFileError, read_lp
from sparselp.linprog import linprog, scipy_problem
from sparselp.solution import Status

__all__ = ["main", "run", "new_parser", "register_solve", "register_plan", "build_parser",
           "solve", "plan_command",
           "EXIT_OK", "EXIT_NOT_OPTIMAL", "EXIT_USAGE", "EXIT_UNAVAILABLE", "EPILOG"]

EXIT_OK, EXIT_NOT_OPTIMAL, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3

EPILOG = """exit codes:
  0  success (solve: optimal and verified)
  1  the solver did not reach an optimal answer, a benchmark/report section failed,
     or (plan) nothing fits the memory budget
  2  usage error, or a missing or malformed input file
  3  a component is not available (benchmark module not installed)
"""


def new_parser(description: str, metavar: str):
    """The ``sparselp`` parser without subcommands; returns ``(parser, subparsers)``.

    Each subcommand sets ``handler``, a function of the parsed arguments returning the exit
    code (see :func:`run`).
    """
    p = argparse.ArgumentParser(prog="sparselp", description=description, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar=metavar)
    sub.required = True
    return p, sub


def register_solve(subparsers) -> argparse.ArgumentParser:
    """Add the ``solve`` subcommand to ``subparsers`` (from :func:`new_parser`)."""
    s = subparsers.add_parser(
        "solve", help="solve an LP from an .npz (Netlib layout) or MPS file",
        description="Solve min c^T x s.t. A_ub x <= b_ub, A_eq x = b_eq, lb <= x <= ub read "
                    "from FILE, and print status, objective, residuals and time.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("file", metavar="FILE", help=".npz in the Netlib layout, or free-format .mps")
    s.add_argument("--tol", type=float, default=None, help="relative KKT tolerance")
    s.add_argument("--max-iter", type=int, default=None, help="Newton iteration limit")
    s.add_argument("--method", choices=("alm", "penalty"), default=None,
                   help="outer method (default: the solver's)")
    s.add_argument("--linear-solver", default=None,
                   help="auto, diagonal, cholesky, cg or scipy (default: auto)")
    s.add_argument("--float32", action="store_true", help="solve in float32 instead of float64")
    s.add_argument("--device", default=None, help="torch device (default: cpu)")
    s.add_argument("--highs", action="store_true",
                   help="also solve with scipy's HiGHS and print the relative objective error")
    s.add_argument("--verbose", action="store_true", help="print the solver's iteration log")
    s.set_defaults(handler=solve)
    return s


def register_plan(subparsers) -> argparse.ArgumentParser:
    """Add the ``plan`` subcommand to ``subparsers`` (from :func:`new_parser`)."""
    s = subparsers.add_parser(
        "plan", help="predict the peak memory of a loss (or an LP file) and pick what fits",
        description="Print the planner's table (sparselp.plan): the predicted peak memory "
                    "of forward + backward for each way of running (as is, chunked, sharded "
                    "over N ranks, reduced), and the one chosen for the budget.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--loss", choices=("auc", "auc-hinge", "multiclass-auc", "fscore",
                                         "precision-at-recall"))
    what.add_argument("--file", metavar="FILE", help="an LP file (.npz or .mps) instead")
    s.add_argument("--batch-size", type=int, default=None, help="samples in the minibatch")
    s.add_argument("--positive-fraction", type=float, default=0.5)
    s.add_argument("--memory", default="8GB", help="budget, e.g. 2GB or 512MiB (default 8GB)")
    s.add_argument("--device", default=None, help="where it would run (default: cpu)")
    s.add_argument("--float64", action="store_true", help="float64 scores (default float32)")
    s.add_argument("--world-sizes", default="2,4,8", help="rank counts to consider")
    s.add_argument("--reduced-rows", type=int, default=None,
                   help="(--file) also consider a sketch/SDR projection to this many rows")
    s.set_defaults(handler=plan_command)
    return s


def plan_command(args) -> int:
    """``sparselp plan``: print the table; 0 when something fits, 1 when nothing does."""
    from sparselp.planner import plan
    try:
        worlds = tuple(int(w) for w in args.world_sizes.split(",") if w)
        if args.file:
            data = read_lp(args.file)
            target = scipy_problem(**data.linprog_args())[0]
        else:
            if args.batch_size is None:
                raise ValueError("--batch-size is required with --loss")
            target = args.loss
        p = plan(target, args.batch_size, args.positive_fraction, args.memory, args.device,
                 dtype=torch.float64 if args.float64 else torch.float32, world_sizes=worlds,
                 reduced_rows=args.reduced_rows)
    except (ValueError, LPFileError) as exc:
        print(f"sparselp plan: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(p.table())
    return EXIT_OK if p.fits else EXIT_NOT_OPTIMAL


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m sparselp.cli``: the ``solve`` and ``plan`` subcommands."""
    p, sub = new_parser("Solve a sparse linear program read from an LP file, or plan the "
                        "memory of a loss.", "{solve,plan}")
    register_solve(sub)
    register_plan(sub)
    return p


def solve(args) -> int:
    """``sparselp solve``: read, solve, print; returns the exit code."""
    try:
        data = read_lp(args.file)
    except LPFileError as exc:
        print(f"sparselp solve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    options = {k: v for k, v in (("tol", args.tol), ("max_iter", args.max_iter),
                                 ("method", args.method), ("linear_solver", args.linear_solver),
                                 ("verbose", args.verbose or None)) if v is not None}
    print(f"problem   {data.name}: n = {data.n}, {data.A_ub.shape[0]} inequality rows, "
          f"{data.A_eq.shape[0]} equality rows, nnz = {data.A_ub.nnz + data.A_eq.nnz}")
    with warnings.catch_warnings():
        # torch's beta-sparse notices are noise for a command-line user.
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        start = time.perf_counter()
        try:
            res = linprog(**data.linprog_args(), options=options or None,
                          dtype=torch.float32 if args.float32 else torch.float64,
                          device=args.device)
        except (ValueError, TypeError) as exc:
            print(f"sparselp solve: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        elapsed = time.perf_counter() - start
    status = Status(res.status)
    print(f"status    {status.name.lower()} ({res.message})")
    print(f"objective {data.objective(res.fun):.12g}")
    print(f"residuals primal {res.primal_residual:.3e}  dual {res.dual_residual:.3e}  "
          f"gap {res.gap:.3e}")
    print(f"iterations {res.nit}   time {elapsed:.3f} s")
    if args.highs:
        _print_highs(data, res.fun)
    return EXIT_OK if status is Status.OPTIMAL and math.isfinite(res.fun) else EXIT_NOT_OPTIMAL


def _print_highs(data, fun: float) -> None:
    """Solve ``data`` with scipy's HiGHS and print its objective and our error against it."""
    from scipy.optimize import linprog as scipy_linprog

    start = time.perf_counter()
    ref = scipy_linprog(**data.linprog_args(), method="highs")
    t_ref = time.perf_counter() - start
    if ref.status == 0:
        err = abs(fun - ref.fun) / max(1.0, abs(ref.fun))
        print(f"highs     objective {data.objective(ref.fun):.12g}   time {t_ref:.3f} s   "
              f"relative error {err:.2e}")
    else:
        print(f"highs     status {ref.status} ({ref.message})   time {t_ref:.3f} s")


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` with ``parser`` and call the chosen subcommand's handler."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return args.handler(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m sparselp.cli``; returns the exit code."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
