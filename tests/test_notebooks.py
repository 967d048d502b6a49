"""The notebooks run, and each .ipynb holds the same cells as its jupytext .py twin.

The .py (jupytext percent format) is the readable, diffable source; the paired .ipynb is
what a user opens. The tests execute the .py files in a fresh interpreter with the small
settings of ``SPARSELP_NOTEBOOK_FAST=1``, and check that every .ipynb is in sync with its
.py so that what is executed is what is shipped.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
HAS_JUPYTEXT = importlib.util.find_spec("jupytext") is not None


def test_there_are_at_least_three_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {"quickstart.py", "memory_scaling.py", "sdr_tradeoff.py"} <= names, names


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(script):
    env = dict(os.environ, SPARSELP_NOTEBOOK_FAST="1", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(script)], cwd=script.parent, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-3000:]}"


@pytest.mark.skipif(not HAS_JUPYTEXT, reason="jupytext is not installed")
@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.name)
def test_ipynb_is_paired_and_in_sync(script):
    import jupytext

    ipynb = script.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `jupytext --sync {script}`"
    py_cells = [(c.cell_type, c.source.strip()) for c in jupytext.read(script).cells]
    nb_cells = [(c.cell_type, c.source.strip()) for c in jupytext.read(ipynb).cells]
    assert py_cells == nb_cells, f"{ipynb.name} is out of sync with {script.name}: run " \
                                 f"`jupytext --sync {script}`"
