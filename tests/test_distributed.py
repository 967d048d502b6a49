"""Global-batch losses over torch.distributed (``process_group=``): 2 and 4 CPU processes
(gloo) against the one-process loss of the concatenated batch, value and gradient slices.

One spawn per world size runs every case (process start-up dominates the time).
"""
import datetime
import os
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sparselp import MemoryBudgetError
from sparselp.chunked import chunked_auc_loss
from sparselp.formulations import multiclass_auc_data
from sparselp.losses import AUCLoss, FScoreLoss, MultiClassAUCLoss, PrecisionAtRecallLoss

F64 = torch.float64


class WrongShardFScoreLoss(FScoreLoss):
    """Proposes a wrong multiplier for the normalisation row: the sharded certificate must
    refuse it, and the loss solve the whole LP on every rank."""

    def _coupled_value(self, s, group, whole, shard, constant=0.0):
        return super()._coupled_value(
            s, group, whole, lambda lo, hi: shard(lo, hi)._replace(mu=shard(lo, hi).mu / 2),
            constant)


LOSSES = {"AUCLoss": AUCLoss, "MultiClassAUCLoss": MultiClassAUCLoss,
          "FScoreLoss": FScoreLoss, "PrecisionAtRecallLoss": PrecisionAtRecallLoss,
          "WrongShardFScoreLoss": WrongShardFScoreLoss}
# Local batch sizes per world size: uneven, and an empty one in the 4-process run.
SIZES = {2: [9, 14], 4: [7, 0, 10, 6]}


def _binary(sizes, n_pos, seed):
    """Global float64 scores and 0/1 labels with n_pos positives, none on rank 0."""
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    s = torch.rand(n, generator=g, dtype=F64)
    y = torch.zeros(n, dtype=torch.long)
    y[sizes[0] + torch.randperm(n - sizes[0], generator=g)[:n_pos]] = 1
    return s, y


def _multiclass(sizes, counts, seed):
    """Global (n, K) scores and labels with the given class counts; rank 0 lacks the last
    class."""
    g = torch.Generator().manual_seed(seed)
    n, K = sum(sizes), len(counts)
    y = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    assert y.numel() == n
    y = y[torch.argsort(y == K - 1, stable=True)]  # the last class away from the front
    return torch.randn(n, K, generator=g, dtype=F64), y


def _cases(sizes):
    """(name, loss class, kwargs, global scores, global labels)."""
    n = sum(sizes)
    s, y = _binary(sizes, n // 3, 0)
    few_s, few_y = _binary(sizes, 3, 1)  # 3 positives: some ranks get no positive pair
    S, Y = _multiclass(sizes, [n // 3, n // 3, n - 2 * (n // 3)], 2)
    tiny = [2, 2, n - 4]  # class 0 and 1 have 2 anchors: ranks 2, 3 of 4 have no pair
    St, Yt = _multiclass(sizes, tiny, 3)
    Sm, Ym = S.clone(), Y.clone()
    Ym[Ym == 1] = 0  # class 1 missing globally
    return [
        ("auc-paper", "AUCLoss", dict(eps=0.05), s, y),
        ("auc-hinge", "AUCLoss", dict(eps=0.3, surrogate="hinge"), s, y),
        ("auc-paper-block", "AUCLoss", dict(eps=0.05, block_size=7), s, y),
        ("auc-hinge-block", "AUCLoss", dict(eps=0.3, surrogate="hinge", block_size=20), s, y),
        ("auc-few-positives", "AUCLoss", dict(eps=0.3), few_s, few_y),
        ("auc-few-positives-hinge", "AUCLoss", dict(eps=0.3, surrogate="hinge"), few_s, few_y),
        ("mauc-mu", "MultiClassAUCLoss", dict(num_classes=3, eps=0.4), S, Y),
        ("mauc-ova", "MultiClassAUCLoss", dict(num_classes=3, eps=0.4, variant="ova"), S, Y),
        ("mauc-tiny", "MultiClassAUCLoss", dict(num_classes=3, eps=0.4), St, Yt),
        ("mauc-skip", "MultiClassAUCLoss", dict(num_classes=3, eps=0.4, missing="skip"),
         Sm, Ym),
        ("fscore", "FScoreLoss", dict(eps=1.0), (s - 0.5) * 0.8, y),
        ("precision", "PrecisionAtRecallLoss", dict(recall=0.6, eps=1.0), s - 0.5, y),
        # ramps clipped on both sides (degenerate vertices), and a wrong sharded proposal
        ("fscore-clipped", "FScoreLoss", dict(eps=0.2), (s - 0.5) * 0.8, y),
        ("precision-clipped", "PrecisionAtRecallLoss", dict(recall=0.8, eps=0.1), s - 0.5, y),
        ("fscore-refused", "WrongShardFScoreLoss", dict(eps=1.0), (s - 0.5) * 0.8, y),
        # hinge bounds: beyond the kinks on both sides, and a negative bound on TP (t = t_min,
        # whose right-hand side holds the scores: the global row's gradient)
        ("fscore-hinge", "FScoreLoss", dict(eps=0.1, surrogate="hinge"), (s - 0.3) * 0.8, y),
        ("fscore-hinge-negative", "FScoreLoss", dict(eps=0.02, surrogate="hinge"),
         (s - 0.8) * 0.8, y),
        ("missing-auc", "AUCLoss", dict(eps=0.05), s, torch.zeros_like(y)),
        ("missing-fscore", "FScoreLoss", dict(), s, torch.ones_like(y)),
        ("missing-mauc", "MultiClassAUCLoss", dict(num_classes=3, eps=0.4), Sm, Ym),
    ]


def _run_case(name, cls, kwargs, s, y, sizes, rank, group):
    lo = sum(sizes[:rank])
    local = s[lo:lo + sizes[rank]].clone().requires_grad_(True)
    loss = LOSSES[cls](process_group=group, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = loss(local, y[lo:lo + sizes[rank]])
        value.backward()
    return {"value": float(value.detach()), "dtype": value.dtype, "grad": local.grad,
            "warnings": [str(w.message) for w in caught], "path": loss.last_path}


def _worker(rank, world, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=60))
    sizes = SIZES[world]
    results = {}
    for name, cls, kwargs, s, y in _cases(sizes):
        results[name] = _run_case(name, cls, kwargs, s, y, sizes, rank, dist.group.WORLD)
    # The string "world" is resolved at the call; non-finite scores on one rank raise on all.
    results["world-string"] = _run_case("", "AUCLoss", dict(eps=0.05), *_cases(sizes)[0][3:],
                                        sizes, rank, "world")
    s, y = _cases(sizes)[0][3:]
    s = s.clone()
    s[-1] = float("nan")  # on the last rank only
    try:
        _run_case("", "AUCLoss", {}, s, y, sizes, rank, dist.group.WORLD)
        results["nan"] = "no error"
    except ValueError as exc:
        results["nan"] = str(exc)
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


def _reference(cls, kwargs, s, y):
    t = s.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v = LOSSES[cls](**kwargs)(t, y)
        v.backward()
    return float(v.detach()), t.grad


@pytest.mark.parametrize("world", [2, 4])
def test_distributed_losses_equal_the_one_process_loss_of_the_global_batch(world, tmp_path):
    mp.spawn(_worker, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world)]
    sizes = SIZES[world]
    starts = [sum(sizes[:r]) for r in range(world)]
    cases = _cases(sizes)
    for name, cls, kwargs, s, y in cases:
        v0, g0 = _reference(cls, kwargs, s, y)
        for r, res in enumerate(ranks):
            got = res[name]
            assert got["dtype"] == F64
            assert abs(got["value"] - v0) <= 1e-10, (name, r, got["value"], v0)
            g = g0[starts[r]:starts[r] + sizes[r]]
            assert got["grad"].shape == g.shape
            assert float((got["grad"] - g).abs().sum()) <= 1e-10, (name, r)
            zero_warned = any("zero loss" in m and "global minibatch" in m
                              for m in got["warnings"])
            assert zero_warned == name.startswith("missing-"), (name, r, got["warnings"])
            # the coupled LPs: each rank's own rows, certified; the wrong proposal refused
            path = {"FScoreLoss": "closed-form", "PrecisionAtRecallLoss": "closed-form",
                    "WrongShardFScoreLoss": "solver"}.get(cls) if v0 else None
            assert got["path"] == path, (name, r, got["path"])
        if name.startswith("missing-"):
            assert v0 == 0.0
        elif name == "fscore-hinge-negative":  # F* < 0: the loss above 1, and a gradient
            assert v0 > 1 and float(g0.abs().max()) > 0
        elif name != "mauc-skip":  # the cases are not trivial: the gradient is not zero
            assert float(g0.abs().max()) > 0, name
    # A rank's local batch without positives (rank 0 has none) still gets its gradient.
    assert float(ranks[0]["auc-hinge"]["grad"].abs().max()) > 0
    assert any("left out" in m for m in ranks[-1]["mauc-skip"]["warnings"])
    v0, _ = _reference(*cases[0][1:])
    assert all(abs(res["world-string"]["value"] - v0) <= 1e-10 for res in ranks)
    assert all("NaN or Inf" in res["nan"] and "process_group" in res["nan"] for res in ranks)


def test_process_group_needs_torch_distributed_initialized(tmp_path):
    assert not dist.is_initialized()
    s, y = torch.rand(6, dtype=F64), torch.tensor([0, 1, 0, 1, 1, 0])
    for cls, kw in [(AUCLoss, {}), (MultiClassAUCLoss, {"num_classes": 2}),
                    (FScoreLoss, {}), (PrecisionAtRecallLoss, {})]:
        loss = cls(process_group="world", **kw)  # may be built before init_process_group
        scores = torch.stack([s, -s], 1) if cls is MultiClassAUCLoss else s
        with pytest.raises(RuntimeError, match="process_group.*not initialized"):
            loss(scores, y)
    with pytest.raises(TypeError, match="process_group must be"):
        AUCLoss(process_group="WORLD")
    # A real ProcessGroup: accepted while initialized (one process: the local loss) and
    # refused once torch.distributed is torn down.
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0,
                            world_size=1)
    try:
        group = dist.group.WORLD
        loss = AUCLoss(eps=0.1, process_group=group)
        assert float(loss(s, y)) == pytest.approx(float(AUCLoss(eps=0.1)(s, y)), abs=1e-14)
        # a coupled loss's budget is judged on its row-sharded peak per rank
        big = torch.rand(10**6)
        with pytest.raises(MemoryBudgetError, match="row-sharded over 1 ranks"):
            FScoreLoss(memory_budget="100MB", process_group=group)(big, big > 0.7)
        with pytest.raises(MemoryBudgetError, match=r"batch of 1000000: predicted"):
            # solving, each rank holds the whole LP: judged on it, not on the shard
            FScoreLoss(memory_budget="300MB", process_group=group,
                       closed_form=False)(big, big > 0.7)
        fs = FScoreLoss(memory_budget="100MB", process_group=group)
        assert float(fs(s, y)) == pytest.approx(float(FScoreLoss()(s, y)), abs=1e-14)
        assert fs.last_path == "closed-form"
    finally:
        dist.destroy_process_group()
    with pytest.raises(RuntimeError, match="process_group.*not initialized"):
        AUCLoss(process_group=group)
    with pytest.raises(RuntimeError, match="process_group.*not initialized"):
        loss(s, y)


def _pairs(data):
    """The LP's pairs as sorted rows (b_p = gap_p - eps, c_p = weight_p)."""
    P = data.c.numel()
    rows = torch.stack([data.b[:P], data.c], 1)
    return rows[torch.argsort(rows[:, 0])]


@pytest.mark.parametrize("variant", ["mu", "ova"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_multiclass_auc_data_shards_partition_the_lp(variant, reduction):
    g = torch.Generator().manual_seed(5)
    S = torch.randn(29, 4, generator=g, dtype=F64)
    Y = torch.randint(0, 4, (29,), generator=g)
    whole = multiclass_auc_data(S, Y, eps=0.3, reduction=reduction, variant=variant)
    assert torch.equal(_pairs(whole), _pairs(multiclass_auc_data(
        S, Y, eps=0.3, reduction=reduction, variant=variant, shard=(0, 1))))
    for world in (2, 3, 5):
        shards = [multiclass_auc_data(S, Y, eps=0.3, reduction=reduction, variant=variant,
                                      shard=(r, world)) for r in range(world)]
        sizes = [d.c.numel() for d in shards]
        # about 1/world each: at most one anchor more than 1/world of them in each of the
        # groups (6 for "mu" with K=4, 4 for "ova"), each with fewer than n partners
        assert max(sizes) <= whole.c.numel() / world + 6 * 29 and min(sizes) > 0
        union = _pairs(whole._replace(
            c=torch.cat([d.c for d in shards]),
            b=torch.cat([d.b[:d.c.numel()] for d in shards] * 2)))
        # the same (gap, weight) pairs, global weights included: the shards are the LP's blocks
        assert torch.equal(union, _pairs(whole))
        value = sum(float((d.c * (-d.b[:d.c.numel()]).clamp_min(0)).sum()) for d in shards)
        assert value == pytest.approx(float((whole.c * (-whole.b[:whole.c.numel()])
                                             .clamp_min(0)).sum()), rel=1e-13)


def test_multiclass_auc_data_shard_validation():
    S, Y = torch.randn(6, 3, dtype=F64), torch.tensor([0, 1, 2, 0, 1, 2])
    for bad in [(2, 2), (-1, 2), (0, 0), [0, 1], (True, 2), (0, 2.0), (0, 1, 2)]:
        with pytest.raises(ValueError, match="shard must be"):
            multiclass_auc_data(S, Y, shard=bad)
    # a shard with no anchor at all is an LP with no variable (the loss counts it zero)
    assert multiclass_auc_data(S, Y, shard=(3, 4)).c.numel() == 0


@pytest.mark.parametrize("surrogate", ["paper", "hinge"])
def test_chunked_auc_shards_sum_to_the_loss(surrogate):
    """One process: the shards' partial values and gradients sum to the whole loss's."""
    s, y = _binary([0, 31], 11, 7)
    t = s.clone().requires_grad_(True)
    AUCLoss(eps=0.2, surrogate=surrogate)(t, y).backward()
    total, grad = 0.0, torch.zeros_like(s)
    for r in range(3):
        u = s.clone().requires_grad_(True)
        part = chunked_auc_loss(u, y, 0.2, surrogate, 25, {}, shard=(r, 3))
        part.backward()
        total, grad = total + float(part.detach()), grad + u.grad
    assert total == pytest.approx(float(AUCLoss(eps=0.2, surrogate=surrogate)(s, y)),
                                  abs=1e-13)
    assert float((grad - t.grad).abs().max()) <= 1e-13


def test_ddp_example_takes_the_steps_of_one_process_on_the_global_batch(capsys):
    from benchmarks.ddp_example import main, train
    args = dict(steps=4, batch=24, loss="auc", lr=0.5, seed=1, dtype="float64")
    out = main(["--nproc", "2"] + [f"--{k}={v}" for k, v in args.items()])
    assert "step   3  global auc loss" in capsys.readouterr().out
    r0, r1 = out["ranks"]
    assert r0["params"] == r1["params"] and r0["losses"] == r1["losses"]
    assert r0["losses"][-1] < r0["losses"][0]
    # DDP's average times the rescale (world * loss): the one-process SGD on 48 samples
    ref = train(0, 1, **dict(args, batch=48))
    assert max(abs(a - b) for a, b in zip(r0["losses"], ref["losses"])) <= 1e-10
    assert max(abs(a - b) for a, b in zip(r0["params"], ref["params"])) <= 1e-10


def test_dist_scaling_rows_and_per_rank_memory_halves(tmp_path, capsys):
    from benchmarks.dist_scaling import main, run
    # 1e6 pairs: large enough that the LP, not the runtime, holds the memory
    rows = run((1, 2), "strong", global_batch=2000, timeout=120)
    one, two = rows
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    assert one["pairs"] == two["pairs"] == 1000 * 1000 and two["rank_pairs"] == 500 * 1000
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-6)  # the same global loss
    assert one["peak_mb"] > 50 and 0.4 < two["peak_mb"] / one["peak_mb"] < 0.65
    assert two["mem_vs_ideal"] == pytest.approx(2 * two["peak_mb"] / one["peak_mb"])
    # the coupled F-score LP, rows sharded: each rank holds its samples' rows
    rows = run((1, 2), "strong", global_batch=200_000, timeout=120, loss="fscore")
    assert [(r["status"], r["sharded"]) for r in rows] == [("ok", True)] * 2, rows
    assert rows[1]["rank_pairs"] == rows[0]["rank_pairs"] // 2 == 200_000
    assert rows[1]["loss"] == pytest.approx(rows[0]["loss"], abs=1e-6)
    assert rows[0]["peak_mb"] > 30 and rows[1]["peak_mb"] / rows[0]["peak_mb"] < 0.7
    with pytest.raises(ValueError, match="mode must be"):
        run((1,), "medium")
    with pytest.raises(ValueError, match="loss must be"):
        run((1,), loss="hinge")
    out = tmp_path / "scaling.csv"
    main(["--quick", "--mode", "weak", "--worlds", "2", "--out", str(out)])
    assert "weak" in capsys.readouterr().out
    assert out.read_text().splitlines()[1].startswith("weak,2,632,99856,49928,ok,")
