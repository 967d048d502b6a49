"""The ``sparselp`` console command: ``solve`` and ``plan`` (from :mod:`sparselp.cli`),
``bench``, ``train`` and ``report``.

The library builds the parser and its ``solve`` subcommand; this module adds the
subcommands that need the benchmarks, so that the dependency runs one way (benchmarks use
the library). Exit codes: see :mod:`sparselp.cli` and ``sparselp --help``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from sparselp.cli import (EPILOG, EXIT_NOT_OPTIMAL, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE,
                          new_parser, register_plan, register_solve, run)

__all__ = ["main", "BENCHMARKS", "build_parser"]

#: ``sparselp bench NAME`` -> module whose ``main(argv)`` is called with the remaining args.
BENCHMARKS = {
    "memory": "benchmarks.memory_lp",
    "runtime": "benchmarks.runtime",
    "tradeoff": "benchmarks.tradeoff",
    "netlib": "benchmarks.netlib",
    "factor-choice": "benchmarks.factor_choice",
    "resnet": "benchmarks.resnet",
    "random-lp": "benchmarks.random_lp",
    "ihs": "benchmarks.ihs",
    "scale": "benchmarks.scale",
    "fuzz": "benchmarks.fuzz_lp",
    "batched-lp": "benchmarks.batched_lp",
    "netmem": "benchmarks.netmem_check",
    "loss-scaling": "benchmarks.loss_scaling",
    "start-sweep": "benchmarks.start_sweep",
    "train": "benchmarks.train_grid",
    "train-timing": "benchmarks.train_timing",
}


def build_parser() -> argparse.ArgumentParser:
    """The full ``sparselp`` parser: report, bench and the library's solve."""
    p, sub = new_parser("Solve and differentiate through huge sparse linear programs: solve "
                        "an LP file, run one benchmark, or build the full report.",
                        "{report,bench,train,solve,plan}")
    r = sub.add_parser("report", help="run every benchmark and write report/index.html",
                       description="Run the benchmarks behind sections (a)-(h) and write "
                                   "index.html, PNG figures and CSV tables into --out.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--out", default="report", help="output folder (default: report)")
    r.add_argument("--quick", action="store_true",
                   help="reduced sizes (target: under 3 minutes on an idle 2-core CPU)")
    r.add_argument("--sections", default="abcdefgh",
                   help="which sections to run, e.g. 'ab' (default: abcdefgh)")
    r.add_argument("--device", default=None,
                   help="torch device for the timed parts (default: cuda if available, else cpu)")
    r.add_argument("--from-csv", default=None, metavar="DIR",
                   help="read a benchmark's rows from DIR/<name>.csv where that file exists, "
                        "instead of running it")
    r.set_defaults(handler=_report)

    b = sub.add_parser("bench", help="run one benchmark (arguments after NAME go to it)",
                       description="Run one benchmark; every argument after NAME is passed to "
                                   "that benchmark's own command line (try NAME --help).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark")
    b.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    b.set_defaults(handler=_bench)

    t = sub.add_parser("train", help="train a network with an LP loss on imbalanced images "
                                     "(arguments go to it; try train --help)",
                       description="Train one network (benchmarks/train.py); every argument "
                                   "is passed on (try sparselp train --help).",
                       add_help=False)
    t.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the run")
    t.set_defaults(handler=_train)

    register_solve(sub)
    register_plan(sub)
    return p


def _train(args) -> int:
    return _call(_train_main(), list(args.args))


def _call(entry, argv: list[str]) -> int:
    """``entry(argv)`` as an exit code (argparse's SystemExit included)."""
    try:
        rc = entry(argv)
    except SystemExit as exc:  # a benchmark's argparse exits on --help or bad arguments
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_NOT_OPTIMAL)
    # Benchmarks return an exit code, None, or (for scripting) their rows: all mean success.
    return rc if isinstance(rc, int) and not isinstance(rc, bool) else EXIT_OK


def _bench(args) -> int:
    module_name = BENCHMARKS[args.name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"sparselp bench: benchmark {args.name!r} is not available ({module_name}: "
              f"{exc})", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return _call(module.main, list(args.args))


def _report(args) -> int:
    from benchmarks.report import build_report

    unknown = set(args.sections) - set("abcdefgh")
    if unknown or not args.sections:
        print(f"sparselp report: error: --sections takes letters from 'abcdefgh', got "
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
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:  # every option goes to the run (argparse's REMAINDER would
        return _call(_train_main(), argv[1:])  # stop at a leading --option)
    return run(build_parser(), argv)


def _train_main():
    from benchmarks.train import main as train_main

    return train_main


if __name__ == "__main__":
    sys.exit(main())
