"""``sparselp train --nproc N``: one run of :mod:`benchmarks.train` over N processes
(``torch.distributed``, gloo on CPU, NCCL with ``--device cuda``), DistributedDataParallel
with the loss of the GLOBAL minibatch.

Every rank draws the same minibatches (the same sampler and seed) and takes its contiguous
share of each (:func:`local_part`); the LP losses are built with
``process_group=WORLD`` (:mod:`sparselp.distributed`), so the loss is that of the whole
minibatch, its pairs or rows sharded over the ranks. DDP averages the parameter gradients
over the ranks; each rank back-propagates its loss times :func:`grad_scale` so that the
average is the gradient of the global objective: ``world`` for the LP losses (their value
is already the global one), ``world * n_local / n`` for cross-entropy (a mean over the
local share). N processes thus take the steps of one process on the same global
minibatches, up to floating-point reductions (tested). Rank 0 alone writes the
checkpoint, the curve and the metrics; a run resumes on any number of processes.

LibAUC's AUCM loss keeps per-process state and has no global-batch form: ``--nproc``
refuses it. With ``--device cuda`` rank r uses ``cuda:r``. Started by ``torchrun
--nproc_per_node N -m benchmarks.train ...`` instead, the N processes are torchrun's
(:func:`train_torchrun`; on several machines too) and ``--nproc`` stays 1.
"""
from __future__ import annotations

import dataclasses
import datetime
import gc
import json
import os
import sys
import tempfile

import torch
import torch.distributed as dist

__all__ = ["train_distributed", "train_torchrun", "launched_by_torchrun", "local_part",
           "grad_scale", "global_loss"]


def local_part(idx: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's contiguous share of a minibatch's indices (sizes differ by at most 1)."""
    return torch.tensor_split(idx, world)[rank]


def grad_scale(loss_name: str, n_local: int, n: int, world: int) -> float:
    """The factor on this rank's loss that makes DDP's averaged gradient the gradient of the
    global objective (see the module docstring)."""
    return float(world) if loss_name != "ce" else world * n_local / n


def global_loss(loss: torch.Tensor, loss_name: str, n_local: int, n: int, group) -> float:
    """The global minibatch's objective value from this rank's (detached) ``loss``: the LP
    losses return it already; cross-entropy's local means are combined (all-reduce)."""
    if loss_name != "ce":
        return float(loss)
    total = (loss.detach().double() * n_local).reshape(1)
    dist.all_reduce(total, group=group)
    return float(total) / n


def _on_rank(cfg, local_rank: int, world: int):
    """``cfg`` for the process of ``local_rank`` (``cuda:local_rank``; on CPU, its share of
    the threads) and the backend of the group."""
    if torch.device(cfg.device).type == "cuda":
        torch.cuda.set_device(local_rank)
        return dataclasses.replace(cfg, device=f"cuda:{local_rank}"), "nccl"
    torch.set_num_threads(max(1, torch.get_num_threads() // world))
    return cfg, "gloo"


def _worker(rank: int, world: int, init_file: str, train, cfg, out: str, resume: bool,
            progress: bool, result_file: str) -> None:
    cfg, backend = _on_rank(cfg, rank, world)
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=600))
    try:
        result = train(cfg, out, resume=resume, progress=progress and rank == 0,
                       group=dist.group.WORLD)
        if rank == 0:
            with open(result_file, "w") as fh:
                json.dump(result, fh)
        dist.barrier()
    finally:
        gc.collect()  # the DDP wrapper's reference cycles, while the group lives
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown with gloo's threads alive (benchmarks.ddp_example)


def train_distributed(train, cfg, out: str, nproc: int, resume: bool = True,
                      progress: bool = True) -> dict:
    """Run ``train(cfg, out, resume, progress, group=...)`` (:func:`benchmarks.train.train`
    and its :class:`~benchmarks.train.TrainConfig`) on ``nproc`` spawned processes;
    returns rank 0's metrics (what metrics.json holds)."""
    import torch.multiprocessing as mp

    _check_run(cfg, nproc)
    with tempfile.TemporaryDirectory(prefix="sparselp-train-") as tmp:
        result_file = os.path.join(tmp, "result.json")
        mp.spawn(_worker, args=(nproc, os.path.join(tmp, "init"), train, cfg, out, resume,
                                progress, result_file), nprocs=nproc)
        with open(result_file) as fh:
            return json.load(fh)


def launched_by_torchrun() -> bool:
    """Whether this process is one of several started by ``torchrun`` (its environment)."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def train_torchrun(train, cfg, out: str, resume: bool = True, progress: bool = True):
    """This process's part of a run started by ``torchrun --nproc_per_node N -m
    benchmarks.train ...``: the group from torchrun's environment, then as
    :func:`train_distributed`. Returns the metrics on rank 0, None on the others."""
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    _check_run(cfg, world)
    cfg, backend = _on_rank(cfg, int(os.environ.get("LOCAL_RANK", rank)), world)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=600))
    try:
        result = train(cfg, out, resume=resume, progress=progress and rank == 0,
                       group=dist.group.WORLD)
        dist.barrier()
    finally:
        gc.collect()
        dist.destroy_process_group()
    return result if rank == 0 else None


def _check_run(cfg, nproc: int) -> None:
    """Refuse, naming the setting, what N processes cannot run."""
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    if cfg.loss == "libauc-aucm" and nproc > 1:
        raise ValueError("--nproc: libauc-aucm has no global-batch form (its state is per "
                         "process); use ce or an LP loss")
    if cfg.batch_size < 2 * nproc:
        raise ValueError(f"--batch-size {cfg.batch_size} is too small to share over "
                         f"--nproc {nproc} processes (at least 2 samples each)")
    if torch.device(cfg.device).type == "cuda" and torch.cuda.device_count() < nproc:
        raise ValueError(f"--nproc {nproc} needs {nproc} CUDA devices, "
                         f"{torch.cuda.device_count()} visible")
