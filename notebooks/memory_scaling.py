# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Memory scaling: why the sparse AUC layer fits where the dense one does not
#
# The binary-AUC LP of a minibatch has one variable per positive-negative pair, so a batch
# of $B$ balanced samples has $P = B^2/4$ variables and $2P$ constraints,
# $A = [-I; -I]$. The paper's released code stores $A$ dense ($2P \times P$ numbers) and
# takes 20 Newton steps with dense $(P \times P)$ inverses that autograd keeps: memory
# grows like $P^2 = B^4/16$. Stored sparse, $A$ has $2P$ nonzeros, and the Newton Hessian
# $A^T D A$ is diagonal, so our layer needs $O(P)$ memory, like the closed form.
#
# This notebook
#
# 1. builds the LP with `sparselp.formulations.binary_auc` and compares its stored bytes
#    with a dense $A$ and with the dense port's predicted peak,
# 2. measures the peak memory of one forward + backward pass of `AUCLoss` and of the
#    closed-form floor, each in a fresh process (`benchmarks.peakmem.run_isolated`),
# 3. plots both against the number of pairs.
#
# The measured dense port, up to where it stops fitting, is in section (a) of
# `sparselp report`. Set `SPARSELP_NOTEBOOK_FAST=1` for the small settings of the tests.

# %%
import os

import matplotlib.pyplot as plt
import torch

from benchmarks.dense_port import dense_port_bytes
from benchmarks.memory_lp import run as measure
from sparselp.formulations import binary_auc

FAST = os.environ.get("SPARSELP_NOTEBOOK_FAST") == "1"
BATCHES = (16, 64) if FAST else (16, 64, 200, 1000, 2000)
MiB = 2.0 ** 20

# %% [markdown]
# ## 1. Bytes of the LP as stored
#
# `LinearProgram.nbytes()` counts $(A, b, c)$ as stored: values, column indices and row
# pointers for a sparse $A$.

# %%
print(f"{'batch':>6} {'pairs':>9} {'sparse LP':>12} {'dense A':>12} {'dense port peak':>16}")
stored = []
for batch in BATCHES:
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(batch, generator=g)
    labels = (torch.arange(batch) % 2).long()
    lp = binary_auc(scores, labels, eps=0.01)
    P = lp.n
    dense_A = 2 * P * P * 4  # float32
    predicted = dense_port_bytes(batch // 2, batch - batch // 2, itemsize=4)
    stored.append((P, lp.nbytes(), dense_A, predicted))
    print(f"{batch:6d} {P:9d} {lp.nbytes() / MiB:10.2f} MiB {dense_A / MiB:10.1f} MiB "
          f"{predicted / MiB:14.1f} MiB")
assert all(sparse < dense for _, sparse, dense, _ in stored[1:])

# %% [markdown]
# ## 2. Peak memory of forward + backward, measured
#
# Each point runs in a fresh interpreter; the number is its peak resident memory above its
# resident size right after the imports (on a GPU: `torch.cuda.max_memory_allocated`).
# `floor` evaluates the closed form $z_{ij} = \max(0, \varepsilon - (s_i - s_j))$
# elementwise: one number per pair, the least any method that forms the pairs can use.
# Below about $10^5$ pairs both are dominated by one-time allocations of a few tens of MiB
# (autograd, thread pools, the solver's workspace); the scaling shows above that.

# %%
rows = measure(sizes=BATCHES, balances=("balanced",), versions=("ours", "floor"),
               timeout=120.0, mem_limit=4e9)
for r in rows:
    print(f"{r['version']:6s} batch {r['batch']:5d} pairs {r['pairs']:8d} "
          f"{r['status']:8s} peak {r['peak_mb']:8.1f} MiB  "
          f"forward+backward {r.get('total_s', float('nan')):.3f} s")
assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]

# %% [markdown]
# ## 3. Against the number of pairs
#
# The dense port's curve is its predicted peak (`dense_port_bytes`: about
# $(20 + 8) P^2$ numbers), which matched the 5.5 GB measured at $P = 6{,}400$ before this
# project. Ours and the floor are measured.

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for version in ("ours", "floor"):
    pts = [(r["pairs"], r["peak_mb"]) for r in rows if r["version"] == version]
    ax.plot(*zip(*pts), "o-", label=f"{version} (measured)")
ax.plot([p for p, *_ in stored], [d / MiB for *_, d in stored], "s--",
        label="dense port (predicted)")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("pairs P (LP variables)")
ax.set_ylabel("peak memory (MiB)")
ax.legend()
ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()
