"""Peak memory and time of forward + backward of the binary-AUC LP layer vs minibatch size.

Three versions of the same loss (the paper's AUC surrogate
``1 - mean(relu(eps - z)) / eps`` with ``z`` the solution of the pairwise hinge LP, eq. 1)
run side by side, each configuration in a fresh Python process:

- ``dense``: the faithful dense port of the paper's algorithm
  (:mod:`benchmarks.dense_port`: dense ``A = [-I; -I]``, 20 Newton steps with dense
  inverses, unrolled autograd). It is given a time limit and a memory cap and stops
  fitting early; the rows record where (``status`` timeout / memory_limit / skipped).
- ``ours``: :class:`sparselp.losses.AUCLoss` (sparse CSR LP, sparselp's Newton solver on
  its diagonal-Hessian path, implicit backward on the active set).
- ``floor``: the closed form ``z = relu(eps - (s_i - s_j))`` evaluated elementwise: the
  physical floor of any method that materializes one number per pair.

Memory. CPU: peak resident set size during the call minus the resident size of the
same fresh interpreter right after ``import torch``, ``sparselp.losses`` and
``benchmarks.dense_port`` (the same imports for every version), i.e. the bytes the
forward + backward itself needed (:func:`benchmarks.peakmem.run_isolated`, ``net_rss``;
the peak mark is reset after the imports). CUDA: ``torch.cuda.max_memory_allocated``
after a reset.

Run ``python -m benchmarks.memory_lp [--quick] [--out results/memory_lp.csv]``.
"""
from __future__ import annotations

import argparse
import os
import time

__all__ = ["run", "main", "step", "SIZES", "QUICK_SIZES"]

SIZES = (16, 32, 64, 128, 160, 200, 400, 1000, 2000, 4000, 6325, 10000)
QUICK_SIZES = (16, 64, 200)
BALANCES = {"balanced": 0.5, "1:9": 0.1}
VERSIONS = ("dense", "ours", "floor")
# Imported before the baseline is taken, in every child alike, so that no version is
# charged for importing code (sparselp pulls in scipy) rather than for running it.
_PRELOAD = ("sparselp.losses", "benchmarks.dense_port")
COLUMNS = ("version", "balance", "batch", "pairs", "status", "peak_mb", "forward_s",
           "backward_s", "total_s", "warm_total_s", "loss", "error")


def _data(batch: int, pos_frac: float, seed: int, device: str, dtype):
    import torch
    g = torch.Generator().manual_seed(seed)
    n_pos = max(1, round(batch * pos_frac))
    labels = torch.zeros(batch, dtype=torch.long)
    labels[:n_pos] = 1
    # Probabilities, as the paper feeds softmax outputs to its AUC layer.
    scores = torch.rand(batch, generator=g, dtype=dtype)
    return scores.to(device).requires_grad_(), labels.to(device)


def _sync(device: str):
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def step(version: str, batch: int, pos_frac: float = 0.5, eps: float = 0.01, seed: int = 0,
         device: str = "cpu", dtype: str = "float32", repeat: int = 1) -> dict:
    """Forward + backward of ``version``; returns times, the loss and the pair count.

    This is the function each child process runs (see :func:`run`). With ``repeat > 1``
    the step runs that many times on fresh scores and the last one is reported (the
    warm, steady-state step of a training loop).
    """
    for _ in range(repeat - 1):
        _one_step(version, batch, pos_frac, eps, seed, device, dtype)
    return _one_step(version, batch, pos_frac, eps, seed, device, dtype)


def _one_step(version, batch, pos_frac, eps, seed, device, dtype) -> dict:
    import torch
    dt = getattr(torch, dtype)
    scores, labels = _data(batch, pos_frac, seed, device, dt)
    n_pos = int(labels.sum())
    t0 = time.perf_counter()
    if version == "dense":
        from benchmarks.dense_port import dense_port_auc_loss
        loss = dense_port_auc_loss(scores, labels, eps)
    elif version == "ours":
        from sparselp.losses import AUCLoss
        loss = AUCLoss(eps=eps, surrogate="paper")(scores, labels)
    elif version == "floor":
        pos, neg = scores[labels == 1], scores[labels == 0]
        z = (eps - (pos.unsqueeze(1) - neg.unsqueeze(0))).clamp_min(0)
        loss = 1.0 - (eps - z).clamp_min(0).mean() / eps
    else:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    _sync(device)
    t1 = time.perf_counter()
    loss.backward()
    _sync(device)
    t2 = time.perf_counter()
    return {"forward_s": t1 - t0, "backward_s": t2 - t1, "total_s": t2 - t0,
            "loss": float(loss.detach()), "pairs": n_pos * (batch - n_pos),
            "grad_norm": float(scores.grad.norm())}


def _dense_bytes(batch: int, pos_frac: float, itemsize: int) -> int:
    from benchmarks.dense_port import dense_port_bytes
    n_pos = max(1, round(batch * pos_frac))
    return dense_port_bytes(n_pos, batch - n_pos, itemsize)


# Over 60 lines only through its docstring; the body is about 47.
def run(sizes=SIZES, balances=tuple(BALANCES), versions=VERSIONS, device: str = "cpu",
        dtype: str = "float32", eps: float = 0.01, timeout: float = 300.0,
        dense_timeout: float | None = None, dense_mem_cap: float = 4e9,
        mem_limit: float | None = 8e9, threads: int | None = None, seed: int = 0,
        progress: bool = False, warm: bool = True) -> list[dict]:
    """Measure every (version, balance, batch) in a fresh process; return one row each.

    Parameters
    ----------
    sizes : iterable of int
        Minibatch sizes (samples). Pairs = n_pos * n_neg.
    balances : iterable of {"balanced", "1:9"}
    versions : iterable of {"dense", "ours", "floor"}
    timeout, dense_timeout : float
        Seconds per configuration (the dense port's own limit defaults to ``timeout``).
    dense_mem_cap : float
        The dense port is not started when its predicted memory exceeds this many bytes
        (``status = "skipped"``); once it fails at one size, larger sizes are skipped.
    mem_limit : float, optional
        Hard per-child allocation limit (bytes) so that no configuration swaps the machine.
    warm : bool
        Also time the second step of a fresh child with the default allocator
        (``warm_total_s``, not for the dense port). The memory child forces every block of
        1 MiB or more through mmap so that its peak RSS counts live bytes only; each fresh
        block then costs page faults, which a training loop under the default allocator
        pays once. Both times are reported.

    Returns
    -------
    list of dict
        Keys: ``version, balance, batch, pairs, status, peak_mb, forward_s, backward_s,
        total_s, warm_total_s, loss, error``.
    """
    from benchmarks.peakmem import run_isolated
    itemsize = 8 if dtype == "float64" else 4
    dense_timeout = dense_timeout or timeout
    rows = []
    for bal in balances:
        frac = BALANCES[bal]
        dense_failed = None
        for batch in sizes:
            n_pos = max(1, round(batch * frac))
            pairs = n_pos * (batch - n_pos)
            for version in versions:
                row = {"version": version, "balance": bal, "batch": batch, "pairs": pairs}
                if version == "dense" and (dense_failed or _dense_bytes(batch, frac, itemsize)
                                           > dense_mem_cap):
                    need = _dense_bytes(batch, frac, itemsize) / 1e9
                    row.update(status="skipped", error=dense_failed or
                               f"predicted >= {need:.1f} GB > cap {dense_mem_cap / 1e9:.1f} GB")
                    rows.append(row)
                    continue
                r = run_isolated("benchmarks.memory_lp:step",
                                 {"version": version, "batch": batch, "pos_frac": frac,
                                  "eps": eps, "seed": seed, "device": device, "dtype": dtype},
                                 timeout=dense_timeout if version == "dense" else timeout,
                                 device=device, threads=threads,
                                 mem_limit=int(mem_limit) if mem_limit else None,
                                 preload=_PRELOAD)
                peak = r["cuda_peak"] if device.startswith("cuda") else r["net_rss"]
                row.update(status=r["status"], error=r["error"],
                           peak_mb=None if peak is None else peak / 2**20)
                if r["result"]:
                    row.update({k: r["result"][k] for k in ("forward_s", "backward_s",
                                                            "total_s", "loss")})
                    if warm and version != "dense":
                        row["warm_total_s"] = _warm_time(version, batch, frac, eps, seed,
                                                         device, dtype, timeout, threads)
                elif version == "dense":
                    dense_failed = f"dense port stopped at batch {batch} ({r['status']})"
                rows.append(row)
                if progress:
                    print(f"  {version:5s} {bal:8s} batch {batch:6d}: {row['status']}",
                          flush=True)
    return rows


def _warm_time(version, batch, frac, eps, seed, device, dtype, timeout, threads):
    """Seconds of the second forward + backward in a fresh child, default allocator."""
    from benchmarks.peakmem import run_isolated
    r = run_isolated("benchmarks.memory_lp:step",
                     {"version": version, "batch": batch, "pos_frac": frac, "eps": eps,
                      "seed": seed, "device": device, "dtype": dtype, "repeat": 2},
                     timeout=2 * timeout, device=device, threads=threads,
                     mmap_threshold=None, preload=_PRELOAD)
    return r["result"]["total_s"] if r["result"] else None


def main(argv=None) -> list[dict]:
    """Command line: print the table and write the CSV."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory_lp",
                                description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help=f"batches {QUICK_SIZES}, balanced only, short limits (< 1 minute)")
    p.add_argument("--sizes", type=lambda s: tuple(int(v) for v in s.split(",")), default=None,
                   help="comma-separated minibatch sizes")
    p.add_argument("--versions", default=",".join(VERSIONS))
    p.add_argument("--balances", default=",".join(BALANCES),
                   help=f"comma-separated subset of {tuple(BALANCES)}")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per configuration")
    p.add_argument("--dense-mem-cap", type=float, default=4e9,
                   help="skip the dense port when its predicted memory exceeds this (bytes)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=os.path.join("results", "memory_lp.csv"))
    a = p.parse_args(argv)
    from benchmarks.tables import emit
    if a.quick:
        rows = run(a.sizes or QUICK_SIZES, ("balanced",), tuple(a.versions.split(",")),
                   a.device, a.dtype, timeout=20.0, dense_mem_cap=5e8, mem_limit=2e9,
                   threads=a.threads)
    else:
        bals = tuple(a.balances.split(","))
        unknown = sorted(set(bals) - set(BALANCES))
        if unknown:
            p.error(f"--balances: unknown {unknown}; choose from {tuple(BALANCES)}")
        rows = run(a.sizes or SIZES, bals, tuple(a.versions.split(",")), a.device,
                   a.dtype, timeout=a.timeout, dense_mem_cap=a.dense_mem_cap,
                   threads=a.threads, progress=True)
    return emit(rows, a.out, COLUMNS)


if __name__ == "__main__":
    main()
