"""DistributedDataParallel training with a global-batch LP loss (CPU, gloo).

Each rank takes its slice of a synthetic imbalanced minibatch (about 15% positives), a
small MLP wrapped in ``DistributedDataParallel`` scores it, and the loss is computed with
``process_group=torch.distributed.group.WORLD`` (:mod:`sparselp.distributed`): the loss of
the GLOBAL batch, the same number on every rank, each rank solving its share of the AUC
pairs. Run it with::

    torchrun --nproc_per_node 2 -m benchmarks.ddp_example --steps 20
    python -m benchmarks.ddp_example --nproc 2 --steps 20     # spawns the 2 processes

Gradient scale. Rank ``r``'s backward gives the parameters
:math:`\\partial L/\\partial\\theta` through its own samples only; summed over the ranks
that is the full gradient of the global loss :math:`L`. DDP AVERAGES the parameter
gradients over the ranks, which would leave :math:`(1/\\mathrm{world})\\,\\partial
L/\\partial\\theta` (the same as dividing the learning rate by the world size). This
example therefore back-propagates ``world * loss``: the averaged gradient is then exactly
:math:`\\partial L/\\partial\\theta`, and ``world`` processes take the same SGD steps as one
process on the whole global batch (the test checks this). ``--no-rescale`` leaves DDP's
average.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

__all__ = ["main", "train", "make_loss", "global_batch", "LOSSES"]

LOSSES = ("auc", "auc-hinge", "fscore", "precision")
FEATURES = 8


def make_loss(name: str, group):
    """The loss module for ``--loss``, on ``group`` (None: the local batch)."""
    from sparselp.losses import AUCLoss, FScoreLoss, PrecisionAtRecallLoss
    if name == "auc":  # the paper's surrogate on probabilities
        return AUCLoss(eps=0.05, surrogate="paper", process_group=group)
    if name == "auc-hinge":
        return AUCLoss(eps=0.5, surrogate="hinge", process_group=group)
    if name == "fscore":
        return FScoreLoss(eps=1.0, process_group=group)
    if name == "precision":
        return PrecisionAtRecallLoss(recall=0.8, eps=1.0, process_group=group)
    raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")


def global_batch(step: int, size: int, seed: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The global minibatch of ``step``: features (size, 8) and 0/1 labels (imbalanced)."""
    g = torch.Generator().manual_seed(seed * 100_003 + step)
    x = torch.randn(size, FEATURES, generator=g, dtype=dtype)
    w = torch.linspace(1.0, -1.0, FEATURES, dtype=dtype)
    logit = x @ w + 0.5 * torch.randn(size, generator=g, dtype=dtype)
    return x, (logit > 1.6).long()


def _scores(name: str, out: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(out) if name == "auc" else out


def train(rank: int, world: int, steps: int = 20, batch: int = 64, loss: str = "auc",
          lr: float = 0.5, seed: int = 0, dtype: str = "float32",
          rescale: bool = True) -> dict:
    """SGD on the global-batch loss; ``batch`` samples per rank. Runs under an initialized
    process group when ``world > 1`` (DDP), in this process alone when ``world == 1``.

    Returns the global loss of every step and the final parameters (flat list).
    """
    dt = getattr(torch, dtype)
    torch.manual_seed(seed)  # the same initial model on every rank (DDP broadcasts it too)
    model = nn.Sequential(nn.Linear(FEATURES, 16), nn.Tanh(), nn.Linear(16, 1)).to(dt)
    group = dist.group.WORLD if world > 1 else None
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    criterion = make_loss(loss, group)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        x, y = global_batch(step, world * batch, seed, dt)
        mine = slice(rank * batch, (rank + 1) * batch)
        value = criterion(_scores(loss, model(x[mine]).squeeze(1)), y[mine])
        opt.zero_grad()
        (value * (world if rescale else 1)).backward()
        opt.step()
        losses.append(float(value.detach()))
    params = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {"rank": rank, "world": world, "losses": losses, "params": params.tolist()}


def _worker(rank: int, world: int, init_file: str, out_dir: str, kwargs: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=120))
    try:
        result = train(rank, world, **kwargs)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump(result, fh)
        dist.barrier()
    finally:
        # The DDP wrapper sits in reference cycles (its hooks); collected at interpreter
        # exit, after the group is gone, its reducer's gloo work aborted the process
        # ("terminate called without an active exception", about 1 run in 12 in CI).
        # Collect it while the group lives, and leave without interpreter finalization.
        gc.collect()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks.ddp_example",
                                description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=64, help="samples per rank and step")
    p.add_argument("--loss", choices=LOSSES, default="auc")
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--no-rescale", dest="rescale", action="store_false",
                   help="keep DDP's average: (1/world) of the global loss's gradient")
    p.add_argument("--nproc", type=int, default=2,
                   help="processes to spawn when not started by torchrun (default 2)")
    return p


def main(argv=None) -> dict:
    """Train under torchrun (this rank's result) or spawn ``--nproc`` processes (all ranks'
    results: ``{"ranks": [...]}``); rank 0 prints the global loss of every step."""
    a = _parser().parse_args(argv)
    kwargs = {k: getattr(a, k) for k in ("steps", "batch", "loss", "lr", "seed", "dtype",
                                         "rescale")}
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun
        torch.set_num_threads(1)
        dist.init_process_group("gloo")
        try:
            result = train(dist.get_rank(), dist.get_world_size(), **kwargs)
        finally:
            dist.destroy_process_group()
        results = [result]
    else:
        if a.nproc < 1:
            raise SystemExit("--nproc must be at least 1")
        with tempfile.TemporaryDirectory(prefix="ddp-example-") as tmp:
            mp.spawn(_worker, args=(a.nproc, os.path.join(tmp, "init"), tmp, kwargs),
                     nprocs=a.nproc)
            results = []
            for r in range(a.nproc):
                with open(os.path.join(tmp, f"rank{r}.json")) as fh:
                    results.append(json.load(fh))
    if results[0]["rank"] == 0:
        for step, value in enumerate(results[0]["losses"]):
            print(f"step {step:3d}  global {a.loss} loss {value:.5f}")
    return results[0] if len(results) == 1 and "RANK" in os.environ else {"ranks": results}


if __name__ == "__main__":
    main(sys.argv[1:])
