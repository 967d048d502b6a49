"""Batches of general LPs through the layer: ours against cvxpylayers and a HiGHS loop.

``python -m benchmarks.batched_lp [--quick] [--batches 1,8,64,128] [--n 100]``
(``sparselp bench batched-lp``). Each batch holds ``B`` random LPs

.. math::

    \\min_x c^T x \\quad \\text{s.t.} \\quad A x \\le b, \\quad -1 \\le x \\le 1,

``A`` (m = 2n rows) Gaussian, ``b = A x_0 + s`` with ``x_0`` uniform in the box and slacks
``s ~ U(0.1, 1)`` (so the LP is feasible), ``c`` Gaussian, float64. The loss is ``w^T x^*``
for a fixed random ``w``; its gradient with respect to ``b`` is what is differentiated.

Methods (forward and backward timed separately, one torch thread; ``--device cuda`` runs
ours on the GPU, the others stay on the CPU):

- ``ours``: :func:`sparselp.lp_solve` on the whole batch, implicit backward;
- ``highs``: scipy's HiGHS in a loop, forward; backward from the active set of each
  vertex (``dx_N/db_R = A_{R,N}^{-1}`` on the tight rows ``R`` and the free columns ``N``),
  the blackbox baseline of the runtime benchmark;
- ``cvxpylayers``: its ``CvxpyLayer`` (diffcp + SCS), where it is installed, on one
  thread like the others (``n_jobs_forward = n_jobs_backward = 1``);
- ``cvxpylayers-threads``: the same at its default, one diffcp thread per CPU: its
  elements solve in parallel, so on a machine of several cores it is not a one-thread
  time (on this project's 2-core machine, idle, about half of the one-thread one).

Accuracy: every method's objective against HiGHS's, and on element 0 the gradient of each
against central finite differences of HiGHS re-solves (``h = 1e-6``) on a few tight rows.
"""
from __future__ import annotations

import argparse
import functools
import os
import time

import numpy as np

__all__ = ["make_batch", "run", "main", "METHODS"]

METHODS = ("ours", "highs", "cvxpylayers", "cvxpylayers-threads")
COLUMNS = ("method", "batch", "n", "m", "device", "status", "forward_s", "backward_s",
           "total_s", "obj_err", "fd_err", "error")


def make_batch(B: int, n: int, seed: int = 0):
    """(c, A, b, w) numpy arrays of shapes (B, n), (B, 2n, n), (B, 2n), (n,)."""
    rng = np.random.default_rng(seed)
    m = 2 * n
    A = rng.standard_normal((B, m, n))
    x0 = rng.uniform(-1, 1, (B, n))
    b = np.einsum("bmn,bn->bm", A, x0) + rng.uniform(0.1, 1.0, (B, m))
    c = rng.standard_normal((B, n))
    w = rng.standard_normal(n)
    return c, A, b, w


def _highs_one(c, A, b):
    from scipy.optimize import linprog
    return linprog(c, A_ub=A, b_ub=b, bounds=(-1, 1), method="highs")


def _active_grad(A, b, x, w, tol=1e-9):
    """d(w^T x)/db at a vertex from its active set: tight rows R, free columns N."""
    R = np.flatnonzero(A @ x >= b - tol * (1 + np.abs(b)))
    N = np.flatnonzero(np.abs(np.abs(x) - 1) > tol)
    g = np.zeros_like(b)
    if R.size and N.size:
        sol, *_ = np.linalg.lstsq(A[np.ix_(R, N)].T, w[N], rcond=None)
        g[R] = sol
    return g


def _run_highs(c, A, b, w):
    t0 = time.perf_counter()
    xs = [_highs_one(c[i], A[i], b[i]).x for i in range(len(c))]
    t1 = time.perf_counter()
    grads = [_active_grad(A[i], b[i], xs[i], w) for i in range(len(c))]
    t2 = time.perf_counter()
    return np.stack(xs), np.stack(grads), t1 - t0, t2 - t1


def _run_ours(c, A, b, w, device: str = "cpu"):
    import torch
    from sparselp import lp_solve

    def sync():  # CUDA runs asynchronously: time what has finished
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
    ct, At, wt = (torch.from_numpy(v).to(device) for v in (c, A, w))
    bt = torch.from_numpy(b).to(device).requires_grad_(True)
    sync()
    t0 = time.perf_counter()
    x = lp_solve(ct, At, bt, lb=-1.0, ub=1.0, strict=True)
    sync()
    t1 = time.perf_counter()
    (x @ wt).sum().backward()
    sync()
    t2 = time.perf_counter()
    return x.detach().cpu().numpy(), bt.grad.cpu().numpy(), t1 - t0, t2 - t1


def _run_cvxpylayers(c, A, b, w, jobs: int = 1):
    """cvxpylayers with ``jobs`` threads for its batch (diffcp's thread pool; -1: one per
    CPU, its default)."""
    import cvxpy as cp
    import torch
    from cvxpylayers.torch import CvxpyLayer
    B, m, n = A.shape
    cp_c, cp_A, cp_b = cp.Parameter(n), cp.Parameter((m, n)), cp.Parameter(m)
    x = cp.Variable(n)
    prob = cp.Problem(cp.Minimize(cp_c @ x), [cp_A @ x <= cp_b, x >= -1, x <= 1])
    layer = CvxpyLayer(prob, parameters=[cp_c, cp_A, cp_b], variables=[x])
    ct, At, wt = (torch.from_numpy(v) for v in (c, A, w))
    bt = torch.from_numpy(b).requires_grad_(True)
    t0 = time.perf_counter()
    xs, = layer(ct, At, bt, solver_args={"n_jobs_forward": jobs, "n_jobs_backward": jobs})
    t1 = time.perf_counter()
    (xs @ wt).sum().backward()
    t2 = time.perf_counter()
    return xs.detach().numpy(), bt.grad.numpy(), t1 - t0, t2 - t1


def _fd_error(c, A, b, w, grad, k: int = 4, h: float = 1e-6) -> float:
    """Max |grad - FD| on element 0's first ``k`` tight rows (central differences of
    HiGHS re-solves), relative to ``1 + max |FD|``."""
    x = _highs_one(c[0], A[0], b[0]).x
    rows = np.flatnonzero(A[0] @ x >= b[0] - 1e-9 * (1 + np.abs(b[0])))[:k]
    errs, scale = [], 1.0
    for i in rows:
        e = np.zeros_like(b[0])
        e[i] = h
        fp = w @ _highs_one(c[0], A[0], b[0] + e).x
        fm = w @ _highs_one(c[0], A[0], b[0] - e).x
        fd = (fp - fm) / (2 * h)
        scale = max(scale, 1 + abs(fd))
        errs.append(abs(grad[0, i] - fd))
    return max(errs, default=float("nan")) / scale


_RUNNERS = {"ours": _run_ours, "highs": _run_highs, "cvxpylayers": _run_cvxpylayers,
            "cvxpylayers-threads": lambda *a: _run_cvxpylayers(*a, jobs=-1)}


def run(batches=(1, 8, 64, 128), n: int = 100, methods=METHODS, seed: int = 0,
        quick: bool = False, progress: bool = False, device: str = "cpu") -> list[dict]:
    """One row per (method, batch); ``quick``: batches 1 and 4 of n = 20. ``device``: where
    ours runs (HiGHS and cvxpylayers run on the CPU, the only place they can)."""
    import torch
    torch.set_num_threads(1)
    if quick:
        batches, n = (1, 4), 20
    runners = {**_RUNNERS, "ours": functools.partial(_run_ours, device=device)}
    rows = []
    for B in batches:
        c, A, b, w = make_batch(B, n, seed)
        ref = np.array([_highs_one(c[i], A[i], b[i]).fun for i in range(B)])
        for meth in methods:
            row = {"method": meth, "batch": B, "n": n, "m": 2 * n,
                   "device": device if meth == "ours" else "cpu"}
            try:
                x, g, tf, tb = runners[meth](c, A, b, w)
            except ImportError as exc:
                row.update(status="unavailable", error=str(exc))
                rows.append(row)
                continue
            except Exception as exc:  # a method failing is a result, not a crash
                row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
                rows.append(row)
                continue
            obj = np.einsum("bn,bn->b", c, x)
            row.update(status="ok", forward_s=tf, backward_s=tb, total_s=tf + tb,
                       obj_err=float(np.max(np.abs(obj - ref) / (1 + np.abs(ref)))),
                       fd_err=_fd_error(c, A, b, w, g))
            rows.append(row)
            if progress:
                print(f"  {meth:11s} B={B:5d}: {tf:.3f} s + {tb:.3f} s, fd err "
                      f"{row['fd_err']:.1e}", flush=True)
    return rows


def main(argv=None) -> list[dict]:
    """Command line: print the table and write the CSV."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.batched_lp",
                                description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="batches 1 and 4, n = 20")
    p.add_argument("--batches", type=lambda s: tuple(int(v) for v in s.split(",")),
                   default=(1, 8, 64, 128))
    p.add_argument("--n", type=int, default=100, help="columns (m = 2n rows)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--device", default="cpu", help="where ours runs (e.g. cuda)")
    p.add_argument("--out", default=os.path.join("results", "batched_lp.csv"))
    a = p.parse_args(argv)
    from benchmarks.tables import emit
    rows = run(a.batches, a.n, tuple(a.methods.split(",")), quick=a.quick,
               progress=not a.quick, device=a.device)
    return emit(rows, a.out, COLUMNS)


if __name__ == "__main__":
    main()
