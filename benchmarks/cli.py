"""The ``sparselp`` command line: solve an LP file, run a benchmark, build the report.

Exit codes (documented in ``sparselp --help`` as well):

- 0: success (for ``solve``: the solver reported an optimal, verified answer);
- 1: the solver did not reach an optimal answer (iteration limit, infeasible, unbounded,
  numerical error), or a report section / benchmark failed;
- 2: usage error, or a missing or malformed input file;
- 3: a component is not available (a benchmark module that is not installed).
"""
from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
import warnings

__all__ = ["main", "BENCHMARKS"]

EXIT_OK, EXIT_NOT_OPTIMAL, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3

#: ``sparselp bench NAME`` -> module whose ``main(argv)`` is called with the remaining args.
BENCHMARKS = {
    "memory": "benchmarks.memory_lp",
    "runtime": "benchmarks.runtime",
    "tradeoff": "benchmarks.tradeoff",
    "netlib": "benchmarks.netlib",
    "resnet": "benchmarks.resnet",
    "random-lp": "benchmarks.random_lp",
    "ihs": "benchmarks.ihs",
}

_EPILOG = """exit codes:
  0  success (solve: optimal and verified)
  1  the solver did not reach an optimal answer, or a benchmark/report section failed
  2  usage error, or a missing or malformed input file
  3  a component is not available (benchmark module not installed)
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparselp",
        description="Solve and differentiate through huge sparse linear programs: solve an LP "
                    "file, run one benchmark, or build the full report.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="{report,bench,solve}")
    sub.required = True

    r = sub.add_parser("report", help="run every benchmark and write report/index.html",
                       description="Run the benchmarks behind sections (a)-(e) and write "
                                   "index.html, PNG figures and CSV tables into --out.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--out", default="report", help="output folder (default: report)")
    r.add_argument("--quick", action="store_true",
                   help="reduced sizes (target: under 3 minutes on an idle 2-core CPU)")
    r.add_argument("--sections", default="abcde",
                   help="which sections to run, e.g. 'ab' (default: abcde)")
    r.add_argument("--device", default=None,
                   help="torch device for the timed parts (default: cuda if available, else cpu)")
    r.add_argument("--from-csv", default=None, metavar="DIR",
                   help="read a benchmark's rows from DIR/<name>.csv where that file exists, "
                        "instead of running it")

    b = sub.add_parser("bench", help="run one benchmark (arguments after NAME go to it)",
                       description="Run one benchmark; every argument after NAME is passed to "
                                   "that benchmark's own command line (try NAME --help).",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark")
    b.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")

    s = sub.add_parser("solve", help="solve an LP from an .npz (Netlib layout) or MPS file",
                       description="Solve min c^T x s.t. A_ub x <= b_ub, A_eq x = b_eq, "
                                   "lb <= x <= ub read from FILE, and print status, objective, "
                                   "residuals and time.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return p


def _solve(args) -> int:
    from benchmarks.lpfile import LPFileError, read_lp

    try:
        data = read_lp(args.file)
    except LPFileError as exc:
        print(f"sparselp solve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    import torch
    from sparselp.linprog import linprog

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
    status_names = {0: "optimal", 1: "iteration_limit", 2: "infeasible", 3: "unbounded",
                    4: "numerical_error"}
    print(f"status    {status_names.get(res.status, res.status)} ({res.message})")
    print(f"objective {data.objective(res.fun):.12g}")
    print(f"residuals primal {res.primal_residual:.3e}  dual {res.dual_residual:.3e}  "
          f"gap {res.gap:.3e}")
    print(f"iterations {res.nit}   time {elapsed:.3f} s")
    if args.highs:
        from scipy.optimize import linprog as scipy_linprog

        start = time.perf_counter()
        ref = scipy_linprog(**data.linprog_args(), method="highs")
        t_ref = time.perf_counter() - start
        if ref.status == 0:
            err = abs(res.fun - ref.fun) / max(1.0, abs(ref.fun))
            print(f"highs     objective {data.objective(ref.fun):.12g}   time {t_ref:.3f} s   "
                  f"relative error {err:.2e}")
        else:
            print(f"highs     status {ref.status} ({ref.message})   time {t_ref:.3f} s")
    return EXIT_OK if res.status == 0 and math.isfinite(res.fun) else EXIT_NOT_OPTIMAL


def _bench(args) -> int:
    module_name = BENCHMARKS[args.name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"sparselp bench: benchmark {args.name!r} is not available ({module_name}: "
              f"{exc})", file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        rc = module.main(list(args.args))
    except SystemExit as exc:  # a benchmark's argparse exits on --help or bad arguments
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_NOT_OPTIMAL)
    # Benchmarks return an exit code, None, or (for scripting) their rows: all mean success.
    return rc if isinstance(rc, int) and not isinstance(rc, bool) else EXIT_OK


def _report(args) -> int:
    from benchmarks.report import build_report

    unknown = set(args.sections) - set("abcde")
    if unknown or not args.sections:
        print(f"sparselp report: error: --sections takes letters from 'abcde', got "
              f"{args.sections!r}", file=sys.stderr)
        return EXIT_USAGE
    summary = build_report(out=args.out, quick=args.quick, sections=args.sections,
                           device=args.device, from_csv=args.from_csv)
    print(f"report written to {summary['index']} in {summary['seconds']:.0f} s")
    failed = [k for k, v in summary["status"].items() if v == "failed"]
    if failed:
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
    return EXIT_NOT_OPTIMAL if failed else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sparselp`` console script; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return {"solve": _solve, "bench": _bench, "report": _report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
