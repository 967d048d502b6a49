"""No noise for users: the public entry points emit no warning at all on a healthy problem.

torch warns once per process on the first sparse CSR tensor ("Sparse CSR tensor support
is in beta state") and on the first sparse tensor built without an explicit
``check_invariants`` ("Sparse invariant checks are implicitly disabled"). Once fired, they
stay silent, so a check inside the test process would pass whatever the library does:
every case runs in a fresh interpreter, records all warnings around the library call only
(the inputs, the user's own tensors, are built before), and reports them. The control case
shows that the harness sees torch's warnings when they do fire.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SETUP = """
import json, warnings
import numpy as np, scipy.sparse as sp, torch
import sparselp
F = torch.float64
g = torch.Generator().manual_seed(0)
A = torch.randn(12, 5, generator=g, dtype=F)
b = A @ torch.rand(5, generator=g, dtype=F) + 0.5
c = torch.randn(5, generator=g, dtype=F)
lb, ub = -10 * torch.ones(5, dtype=F), 10 * torch.ones(5, dtype=F)
scores = torch.randn(20, generator=g, dtype=F, requires_grad=True)
labels = torch.arange(20) % 2
"""

# Per case: (inputs built by the "user" before recording, the recorded library call).
# Each call ends in `out`, checked for a finite, meaningful result.
CASES = {
    "solve_dense": ("M = A", "out = sparselp.solve(sparselp.LinearProgram(c, M, b, lb=lb, ub=ub))"),
    "solve_coo": ("M = A.to_sparse_coo()",
                  "out = sparselp.solve(sparselp.LinearProgram(c, M, b, lb=lb, ub=ub))"),
    "solve_csr": ("M = A.to_sparse_csr()",
                  "out = sparselp.solve(sparselp.LinearProgram(c, M, b, lb=lb, ub=ub))"),
    "linprog": ("M = sp.csr_matrix(A.numpy())",
                "out = sparselp.linprog(c.numpy(), A_ub=M, b_ub=b.numpy(), bounds=(-10, 10))"),
    "auc_loss": ("loss = sparselp.AUCLoss(eps=0.1)",
                 "out = loss(scores, labels); out.backward()"),
    "fscore_loss": ("loss = sparselp.FScoreLoss(eps=1.0)",
                    "out = loss(scores, labels); out.backward()"),
    "layer_dense": ("M, v = A.clone().requires_grad_(), b.clone().requires_grad_()",
                    "out = sparselp.LPLayer()(c, M, v, lb=lb, ub=ub); out.sum().backward()"),
    "layer_coo": ("M = A.to_sparse_coo().coalesce().requires_grad_(); "
                  "v = b.clone().requires_grad_()",
                  "out = sparselp.LPLayer()(c, M, v, lb=lb, ub=ub); out.sum().backward()"),
}

CHECK = """
if isinstance(out, torch.Tensor):
    assert bool(torch.isfinite(out).all()), out
elif hasattr(out, "success"):
    assert bool(np.all(np.asarray(out.success))), out
"""


def _recorded(prepare: str, call: str, check: str = CHECK) -> list[str]:
    """Warnings recorded around ``call`` in a fresh interpreter (after ``prepare``)."""
    body = textwrap.indent(call, "    ")
    code = (SETUP + prepare + "\nwith warnings.catch_warnings(record=True) as rec:\n"
            "    warnings.simplefilter('always')\n" + body + "\n" + check
            + "\nprint(json.dumps([f'{w.category.__name__}: {w.message}' for w in rec]))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", sorted(CASES))
def test_entry_point_emits_no_warning(case):
    prepare, call = CASES[case]
    assert _recorded(prepare, call) == []


def test_the_harness_sees_torchs_sparse_warnings():
    call = ("out = torch.sparse_csr_tensor(torch.tensor([0, 1]), torch.tensor([0]), "
            "torch.ones(1), (1, 1)).to_dense()")
    got = _recorded("", call)
    assert any("Sparse CSR tensor support is in beta" in w for w in got), got
    assert any("Sparse invariant checks are implicitly disabled" in w for w in got), got
