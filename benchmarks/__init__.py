"""Benchmarks, the report and the ``sparselp`` command line.

This package sits above ``sparselp``, ``sketching`` and ``sdr``: it imports them, they never
import it. Each benchmark module exposes ``run(quick=..., ...) -> list[dict]`` (rows for the
report) and ``main(argv=None)`` (prints a table, writes CSV).
"""
