"""``sparselp report``: run the benchmarks of sections (a)-(h) and write one HTML page.

- :mod:`.build`: the sections, their sources and :func:`build_report`, the one entry point;
- :mod:`.sections` (a)-(c), :mod:`.accuracy` (d)-(e), :mod:`.train_section` (f),
  :mod:`.scale_section` (g) and :mod:`.engine_section` (h): each section's renderer, rows
  to ``(body, verdicts, notes)``;
- :mod:`.verdicts`: the verdict words and the rule of each target;
- :mod:`.figures` and :mod:`.html`: the PNG figures and the page.

This package imports the benchmarks (through their ``run`` functions) and the library; the
command line (:mod:`benchmarks.cli`) imports it, never the other way round.
"""
from .build import SECTIONS, Section, Source, build_report, load_rows

__all__ = ["build_report", "load_rows", "SECTIONS", "Source", "Section"]
