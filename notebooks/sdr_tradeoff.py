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
# # The SDR trade-off: how much can a minibatch LP be shrunk?
#
# A minibatch LP has one or more rows per sample (or per pair of samples). When it is too
# big for the device, `sdr.reduce(problem, S)` replaces `(c, A, b)` by the smaller
# `(c, S A, S b)`. The projection `S` is either learned from the minibatch's features and
# labels (sufficient dimension reduction: SIR, SAVE, directional regression) or random (a
# sketch). Each choice costs accuracy. This notebook
#
# 1. checks what SIR finds on a binary problem (its direction is LDA's),
# 2. runs the accuracy-against-reduction study of `benchmarks/tradeoff.py` and plots the
#    gradient cosine against the reduction ratio,
# 3. reads off, per projection, the smallest reduction that keeps the gradient cosine at or
#    above 0.95, and the ratio that cross-validation picks.
#
# Set `SPARSELP_NOTEBOOK_FAST=1` for the small settings the test suite uses.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.preprocessing import StandardScaler

from sdr.estimators import SlicedInverseRegression

FAST = os.environ.get("SPARSELP_NOTEBOOK_FAST") == "1"

# %% [markdown]
# ## 1. SIR on a binary response is LDA
#
# For a binary label, SIR's kernel $\sum_h p_h m_h m_h^T$ has rank one and its direction is
# $\Sigma^{-1}(\mu_1 - \mu_0)$, the direction of Fisher's linear discriminant.

# %%
X, y = load_breast_cancer(return_X_y=True)
X = StandardScaler().fit_transform(X)
sir = SlicedInverseRegression(n_components=1).fit(X, y)
lda = LinearDiscriminantAnalysis().fit(X, y)
d_sir = sir.components_[0]
d_lda = lda.coef_[0] / np.linalg.norm(lda.coef_[0])
cosine = abs(d_sir @ d_lda)
print(f"|cos(SIR direction, LDA direction)| = {cosine:.6f}")
assert cosine > 0.999

# %% [markdown]
# ## 2. Accuracy against reduction
#
# The study solves every reduced LP with HiGHS and compares it with the full LP: the
# relative objective error, and the cosine between the gradients of the optimal value with
# respect to the LP's parameters (the scores, for a minibatch LP). A signed random sketch
# of the rows of an LP with free variables often makes it unbounded: such points have no
# cosine (plotted at 0).

# %%
from benchmarks import tradeoff  # noqa: E402

grid = (0.05, 0.2, 1.0) if FAST else tradeoff.QUICK_GRID
rows = tradeoff.run(quick=True, grid=grid)
print(len(rows), "rows")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, ds in zip(axes, dict.fromkeys(r["dataset"] for r in rows)):
    sub = [r for r in rows if r["dataset"] == ds]
    for proj in dict.fromkeys(r["projection"] for r in sub):
        pr = [r for r in sub if r["projection"] == proj]
        cos = [r["grad_cos"] if np.isfinite(r["grad_cos"]) else 0.0 for r in pr]
        ax.plot([r["grid_ratio"] for r in pr], cos, marker="o", label=proj)
    ax.axhline(0.95, color="k", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("reduction ratio k / m")
    ax.set_ylabel("gradient cosine")
    ax.set_title(ds, fontsize=9)
    ax.legend(fontsize=7)
fig.tight_layout()

# %% [markdown]
# ## 3. The smallest reduction that keeps the gradient, and the CV choice
#
# `sdr.select_dimension` picks the ratio by K-fold cross-validation on the minibatch alone
# (it never sees the full LP's answer on the held-out folds); the study checks that its
# choice lands within one grid step of the smallest ratio whose measured cosine is at
# least 0.95.

# %%
summary = tradeoff.summary(rows)
for s in summary:
    print(f"{s['dataset']:36s} {s['projection']:16s} smallest ok: {str(s['smallest_ok']):5s} "
          f"CV: {str(s['cv_choice']):5s} within one step: {s['within_one_step']}")
assert all(s["dataset"] for s in summary)
