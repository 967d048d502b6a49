r"""Runtime of the binary-AUC LP loss against minibatch size: ours, blackbox, cvxpylayers.

The LP is the seed paper's binary AUC LP (:func:`sparselp.formulations.binary_auc`):

.. math::

    f(s) = \min_z \; w \sum_{ij} z_{ij} \quad \text{s.t.} \quad
    z_{ij} \ge \varepsilon - (s_i - s_j), \; z_{ij} \ge 0,

one variable per (positive i, negative j) pair, ``A = [-I; -I]``. Every method computes the
loss ``f(s)`` and its gradient with respect to the scores; forward and backward are timed
separately and the accuracy of both is measured against the closed form
``w * sum(relu(eps - (s_i - s_j)))`` (``closed`` row).

Methods
-------
ours
    :class:`sparselp.losses.AUCLoss` with ``surrogate="hinge"`` (the LP's optimal value;
    generalized Newton, sparse, gradient from the dual).
blackbox
    The blackbox-differentiation baseline of Pogančić et al. (2020): the LP is handed to
    scipy's HiGHS as a black box in the forward pass, and the backward pass costs one more
    HiGHS solve at a perturbed input. The solver output is the dual solution
    :math:`v^*(b) = \arg\max_{v \ge 0, A^T v = -c} -b^T v`, which is piecewise constant in
    ``b`` (exactly their setting, with ``b`` as the cost); the loss is
    :math:`f = -b^T v^*` and the backward pass returns
    :math:`\nabla_b = -(v^*(b) - v^*(b + \lambda\, \partial L/\partial v))/\lambda`
    for the solver, plus the direct term :math:`-v^*` by autograd. With
    :math:`\partial L/\partial v = -b` the perturbed input is :math:`(1-\lambda) b`, whose
    dual solution is the same for :math:`0 < \lambda < 1`: the gradient is then exact, and
    the baseline is compared at equal accuracy. :math:`\lambda = 0.5`.
cvxpylayers
    ``cvxpylayers.torch.CvxpyLayer`` on the same LP with the gaps as parameter (diffcp
    backward), where cvxpylayers is installed.

References
----------
M. Vlastelica Pogančić, A. Paulus, V. Musil, G. Martius, M. Rolínek, "Differentiation of
Blackbox Combinatorial Solvers", ICLR 2020. A. Agrawal et al., "Differentiable Convex
Optimization Layers", NeurIPS 2019. Meng et al., NeurIPS 2021, Fig. 3b and Table 3.

Usage::

    python -m benchmarks.runtime [--quick] [--out results/runtime.csv]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["BlackboxDual", "blackbox_auc_loss", "closed_form_auc_loss", "run", "main",
           "METHODS"]

METHODS = ("closed", "ours", "blackbox", "cvxpylayers")
FULL_BATCHES = (16, 32, 64, 128, 256, 512)
QUICK_BATCHES = (16, 64, 128)


def _highs_dual(c: np.ndarray, A: sp.csr_array, b: np.ndarray) -> np.ndarray:
    """HiGHS dual solution ``v >= 0`` of min c^T x s.t. A x <= b, x free."""
    from scipy.optimize import linprog

    res = linprog(c, A_ub=A, b_ub=b, bounds=(None, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"HiGHS did not solve the LP: status {res.status}, {res.message}")
    return -res.ineqlin.marginals  # scipy's marginals are d fun / d b_ub = -v


class BlackboxDual(torch.autograd.Function):
    """``v*(b)``: HiGHS as a black box forward, one perturbed HiGHS solve backward.

    Inputs: ``b`` tensor of shape (m,), ``c`` numpy (n,), ``A`` scipy CSR (m, n), ``lam``.
    Output: the dual solution ``v`` of shape (m,).
    """

    @staticmethod
    def forward(ctx, b, c, A, lam):
        v = _highs_dual(c, A, b.detach().cpu().double().numpy())
        ctx.c, ctx.A, ctx.lam = c, A, lam
        ctx.save_for_backward(b)
        ctx.v = v
        return torch.as_tensor(v, dtype=b.dtype, device=b.device)

    @staticmethod
    def backward(ctx, grad_v):
        (b,) = ctx.saved_tensors
        b_pert = (b + ctx.lam * grad_v).detach().cpu().double().numpy()
        v_pert = _highs_dual(ctx.c, ctx.A, b_pert)
        grad_b = -(ctx.v - v_pert) / ctx.lam
        return torch.as_tensor(grad_b, dtype=b.dtype, device=b.device), None, None, None


def _scipy_csr(A: torch.Tensor) -> sp.csr_array:
    A = A.detach().cpu()
    if A.layout != torch.sparse_csr:
        A = A.to_sparse_csr()
    return sp.csr_array((A.values().double().numpy(), A.col_indices().numpy(),
                         A.crow_indices().numpy()), shape=tuple(A.shape))


def blackbox_auc_loss(scores, labels, eps: float = 1.0, lam: float = 0.5):
    """The binary AUC LP value through :class:`BlackboxDual` (see the module docstring)."""
    from sparselp.formulations import binary_auc_data

    if not 0 < lam < 1:
        raise ValueError(f"lam must lie in (0, 1) for an exact gradient, got {lam}")
    d = binary_auc_data(scores, labels, eps=eps)
    v = BlackboxDual.apply(d.b, d.c.detach().cpu().double().numpy(), _scipy_csr(d.A), lam)
    return -(d.b * v).sum()  # strong duality: f = c^T x* = -b^T v*


def closed_form_auc_loss(scores, labels, eps: float = 1.0):
    """``mean over pairs of relu(eps - (s_i - s_j))``: the LP's value in closed form."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    return torch.relu(eps - (pos[:, None] - neg[None, :])).mean()


def _cvxpy_loss_factory(n_pairs: int, eps: float):
    import cvxpy as cp
    from cvxpylayers.torch import CvxpyLayer

    d = cp.Parameter(n_pairs)
    z = cp.Variable(n_pairs)
    prob = cp.Problem(cp.Minimize(cp.sum(z) / n_pairs), [z >= d, z >= 0])
    layer = CvxpyLayer(prob, parameters=[d], variables=[z])

    def loss(scores, labels):
        pos, neg = scores[labels == 1], scores[labels == 0]
        gaps = (eps - (pos[:, None] - neg[None, :])).reshape(-1)
        (zs,) = layer(gaps)
        return zs.sum() / n_pairs
    return loss


def _ours_factory(eps: float):
    from sparselp.losses import AUCLoss

    # The LP's optimal value (mean pairwise hinge), the quantity every method here computes.
    return AUCLoss(eps=eps, surrogate="hinge")


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_method(fn, scores, labels, repeats: int):
    fwd, bwd, value, grad = [], [], None, None
    for i in range(repeats + 1):  # the first call (imports, caches) is not timed
        s = scores.detach().clone().requires_grad_(True)
        _sync(s.device)
        t0 = time.perf_counter()
        out = fn(s, labels)
        _sync(s.device)
        t1 = time.perf_counter()
        out.backward()
        _sync(s.device)
        t2 = time.perf_counter()
        if i:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
        value, grad = float(out.detach()), s.grad.detach().cpu().clone()
    return statistics.median(fwd), statistics.median(bwd), value, grad


# Over 60 lines only through its docstring; the body is about 53.
def run(quick: bool = False, batches=None, methods=METHODS, eps: float = 1.0,
        repeats: int | None = None, max_cvxpy_pairs: int | None = None, seed: int = 0,
        device: str | None = None, progress: bool = True) -> list[dict]:
    """Forward and backward time and accuracy of each method at each minibatch size.

    Scores are standard normal (seeded), labels balanced, float64. ``closed`` and ``ours``
    run on ``device`` (default CPU); the blackbox baseline and cvxpylayers always run on the
    CPU, where their solvers live. cvxpylayers is skipped above ``max_cvxpy_pairs`` pairs
    (default 16,384 = batch 256; 4,096 = batch 128 in quick mode) because its time grows
    fast.
    Rows: ``method, batch, pairs, status, forward_s, backward_s, total_s, loss_rel_err,
    grad_rel_err`` (errors against the closed form) and ``error`` (why a row is missing).
    """
    from tqdm import tqdm

    batches = tuple(batches or (QUICK_BATCHES if quick else FULL_BATCHES))
    repeats = repeats or (2 if quick else 3)
    max_cvxpy_pairs = max_cvxpy_pairs or (4096 if quick else 16384)
    dev = torch.device(device or "cpu")
    rows = []
    for batch in tqdm(batches, desc="runtime", disable=not progress):
        g = torch.Generator().manual_seed(seed + batch)
        scores = torch.randn(batch, generator=g, dtype=torch.float64)
        labels = torch.zeros(batch, dtype=torch.long)
        labels[torch.randperm(batch, generator=g)[: batch // 2]] = 1
        n_pairs = int(labels.sum()) * int((1 - labels).sum())
        ref_value, ref_grad = None, None
        for method in methods:
            row = {"method": method, "batch": batch, "pairs": n_pairs, "status": "ok",
                   "error": "", "device": str(dev) if method in ("closed", "ours") else "cpu"}
            try:
                if method == "closed":
                    fn = lambda s, y: closed_form_auc_loss(s, y, eps)  # noqa: E731
                elif method == "ours":
                    fn = _ours_factory(eps)
                elif method == "blackbox":
                    fn = lambda s, y: blackbox_auc_loss(s, y, eps)  # noqa: E731
                elif method == "cvxpylayers":
                    if n_pairs > max_cvxpy_pairs:
                        raise _Skip(f"{n_pairs} pairs > max_cvxpy_pairs {max_cvxpy_pairs}")
                    fn = _cvxpy_loss_factory(n_pairs, eps)
                else:
                    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
                on_device = method in ("closed", "ours")
                f, b, value, grad = _time_method(
                    fn, scores.to(dev) if on_device else scores,
                    labels.to(dev) if on_device else labels, repeats)
            except _Skip as exc:
                row.update(status="skipped", error=str(exc))
            except ImportError as exc:
                row.update(status="unavailable", error=f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # a failing method is a result, not a crash of the table
                row.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            else:
                if method == "closed":
                    ref_value, ref_grad = value, grad
                row.update(forward_s=f, backward_s=b, total_s=f + b, loss=value)
                if ref_grad is not None:
                    row["loss_rel_err"] = abs(value - ref_value) / max(abs(ref_value), 1e-12)
                    row["grad_rel_err"] = float((grad - ref_grad).norm()
                                                / ref_grad.norm().clamp_min(1e-300))
            rows.append(row)
    return rows


class _Skip(Exception):
    pass


def ratios(rows: list[dict], batch: int = 128) -> dict:
    """Time (forward + backward) of each method divided by ours, at ``batch``."""
    by = {r["method"]: r for r in rows if r["batch"] == batch and r.get("status") == "ok"}
    if "ours" not in by:
        return {}
    return {m: r["total_s"] / by["ours"]["total_s"] for m, r in by.items() if m != "ours"}


COLUMNS = ("method", "batch", "pairs", "status", "forward_s", "backward_s", "total_s",
           "loss_rel_err", "grad_rel_err", "error")


def main(argv: list[str] | None = None) -> int:
    from benchmarks.tables import print_table, write_csv

    p = argparse.ArgumentParser(prog="sparselp bench runtime",
                                description="Runtime of the binary-AUC LP loss: ours against "
                                            "the blackbox (HiGHS) baseline and cvxpylayers.")
    p.add_argument("--quick", action="store_true", help="batches 16, 64 and 128 only")
    p.add_argument("--out", default="results/runtime.csv", help="CSV path")
    p.add_argument("--batches", type=int, nargs="+", default=None)
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--device", default=None, help="device of ours and the closed form")
    args = p.parse_args(argv)
    rows = run(quick=args.quick, batches=args.batches, methods=tuple(args.methods),
               repeats=args.repeats, device=args.device)
    print_table(rows, [c for c in COLUMNS if c != "error"])
    for r in rows:
        if r["error"]:
            print(f"  {r['method']} at batch {r['batch']}: {r['status']}: {r['error']}")
    write_csv(rows, args.out, COLUMNS)
    for batch in sorted({r["batch"] for r in rows}):
        rat = ratios(rows, batch)
        if rat:
            print(f"batch {batch}: time / ours: " + ", ".join(f"{m} {v:.3g}x"
                                                              for m, v in rat.items()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
