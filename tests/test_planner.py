"""The memory planner: the model's arithmetic, the choices, the budget errors, the CLI."""
import subprocess
import sys

import pytest
import torch

import sparselp
from sparselp import AUCLoss, FScoreLoss, MemoryBudgetError, MultiClassAUCLoss, plan
from sparselp.memory_model import C0, PREFERRED_BLOCK, MiB, LPSize, lp_peak_bytes, parse_bytes

F64 = torch.float64


@pytest.mark.parametrize("text,expected", [("8GB", 8 * 10**9), ("512MiB", 512 * 2**20),
                                           ("2G", 2 * 2**30), (" 1.5 kb ", 1500),
                                           (1e9, 10**9), (4096, 4096), ("3e3", 3000)])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["lots", "-1GB", "0", True, None, float("inf"), "5 parsecs"])
def test_parse_bytes_refuses_by_name(bad):
    with pytest.raises(ValueError, match="memory_budget"):
        parse_bytes(bad)


def test_pair_model_is_linear_in_pairs_and_itemsize():
    """184 bytes a pair in float32 and 336 in float64 over the one-off C0 (module doc)."""
    for P in (10, 1000, 10**7):
        assert lp_peak_bytes(LPSize.pairs(P, 4)) - C0 == 184 * P
        assert lp_peak_bytes(LPSize.pairs(P, 8)) - C0 == 336 * P
    # CUDA counts tensors only: no interpreter constant
    assert lp_peak_bytes(LPSize.pairs(10, 4), device="cuda") == 184 * 10


def test_auc_plan_counts_pairs_and_chooses_as_is_when_it_fits():
    p = plan("auc", batch_size=1000, memory_budget="8GB")
    assert p.details["pairs"] == 500 * 500
    assert p.fits and p.chosen.name == "as is"
    assert p.peak_bytes == p.options[0].peak_bytes
    p = plan("auc", batch_size=1000, positive_fraction=0.1, memory_budget="8GB")
    assert p.details["pairs"] == 100 * 900


def test_auc_plan_falls_back_to_chunks_sized_from_the_budget():
    p = plan(AUCLoss(), batch_size=20000, memory_budget="2GB")
    assert [o.name for o in p.options][:2] == ["as is", "chunked"]
    assert not p.options[0].fits
    assert p.chosen.name == "chunked"
    bs = p.chosen.settings["block_size"]
    assert bs % 10000 == 0 and 0 < bs <= PREFERRED_BLOCK  # whole positives, at most the fast size
    assert p.peak_bytes <= 0.9 * parse_bytes("2GB")
    # a tight budget gives smaller blocks, still whole positives
    tight = plan("auc", batch_size=20000, memory_budget="40MiB").chosen
    assert tight.name == "chunked" and tight.settings["block_size"] < bs
    assert tight.settings["block_size"] % 10000 == 0
    assert tight.peak_bytes <= 0.9 * 60 * MiB


def test_sharded_options_divide_the_pairs_and_the_coupled_losses_rows():
    p = plan("auc", batch_size=4000, memory_budget="8GB", world_sizes=(2, 4))
    as_is, w2, w4 = (p.options[0], p.options[2], p.options[3])
    assert w2.settings == {"world_size": 2} and w4.settings == {"world_size": 4}
    assert (w2.peak_bytes - C0) == pytest.approx((as_is.peak_bytes - C0) / 2, rel=1e-3)
    # the coupled losses: each rank's own rows, plus the gathered batch on every rank
    f = plan("fscore", batch_size=10**6, memory_budget="8GB", world_sizes=(1, 2, 4))
    one, two, four = (o.peak_bytes - C0 for o in f.options[1:])
    # as is: the certified closed form, no solve (the solver's peak is over 3x larger);
    # over ranks, every rank also holds the gathered batch
    assert one == f.options[0].peak_bytes - C0 + 24 * 10**6
    solved = plan(FScoreLoss(closed_form=False), 10**6, memory_budget="8GB")
    assert solved.peak_bytes > 3 * f.options[0].peak_bytes
    assert f.details["strategy"] == "closed-form"
    assert 0.5 < two / one < 0.6 and 0.25 < four / one < 0.35
    assert "rows" in f.options[1].note
    p = plan("precision-at-recall", batch_size=10**6, memory_budget="120MB", world_sizes=(4,))
    assert not p.options[0].fits and p.options[1].fits and p.chosen.name == "sharded x4"


def test_multiclass_plan_counts_class_pairs():
    p = plan(MultiClassAUCLoss(num_classes=4), batch_size=400, memory_budget="8GB")
    assert p.details["pairs"] == 6 * 100 * 100
    ova = plan(MultiClassAUCLoss(num_classes=4, variant="ova"), batch_size=400,
               memory_budget="8GB")
    assert ova.details["pairs"] == 4 * 100 * 300
    assert "chunked" not in [o.name for o in p.options]


def test_coupled_plan_reads_the_lp_size_off_small_batches():
    """Rows, columns and nonzeros of the F-score LP extrapolated from batches of 256 and
    512 equal those of the LP actually built at 3,000 (the nonzeros up to the rounding
    of the positives in the small batches)."""
    p = plan("fscore", batch_size=3000, positive_fraction=0.2, memory_budget="8GB")
    s = torch.rand(3000, dtype=F64)
    y = torch.zeros(3000, dtype=torch.long)
    y[:600] = 1
    lp = sparselp.formulations.fscore(s, y)
    q = plan(lp, memory_budget="8GB")
    assert p.details["rows"] == q.details["rows"]
    assert p.details["columns"] == q.details["columns"]
    assert p.details["nnz"] == pytest.approx(q.details["nnz"], rel=1e-3)


def test_nothing_fits_names_the_largest_batch_that_would():
    p = plan("fscore", batch_size=200000, memory_budget="40MB", world_sizes=())
    assert not p.fits and p.chosen is None
    limit = p.details["max_batch_as_is"]
    assert 2 <= limit < 200000
    assert plan("fscore", batch_size=limit, memory_budget="40MB", world_sizes=()).fits
    assert not plan("fscore", batch_size=limit + 50, memory_budget="40MB", world_sizes=()).fits
    assert f"batch_size <= {limit}" in p.table()


def test_loss_with_budget_chunks_and_matches_the_unbudgeted_loss():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(300, generator=g, dtype=F64)
    y = (torch.arange(300) % 3 == 0).long()
    budget = int((C0 + 400 * 5000) / 0.9)  # room for 5,000 float64 pairs, not 20,000
    loss = AUCLoss(eps=0.05, memory_budget=budget)
    a = s.clone().requires_grad_(True)
    va = loss(a, y)
    va.backward()
    assert loss.last_block_size is not None and loss.last_block_size < 100 * 200
    b = s.clone().requires_grad_(True)
    vb = AUCLoss(eps=0.05)(b, y)
    vb.backward()
    assert abs(float(va.detach()) - float(vb.detach())) < 1e-12
    assert float((a.grad - b.grad).abs().max()) < 1e-12


def test_over_budget_loss_raises_before_building_the_lp():
    with pytest.raises(MemoryBudgetError, match=r"FScoreLoss on a batch of 50000: predicted "
                                                r"peak .* exceeds memory_budget .*"
                                                r"batch_size <= \d+ would fit") as info:
        FScoreLoss(memory_budget="25MB")(torch.rand(50000), torch.arange(50000) % 2)
    assert info.value.estimate > 0.9 * info.value.budget
    assert info.value.budget == 25 * 10**6
    with pytest.raises(MemoryBudgetError, match="block_size=1000000"):
        AUCLoss(memory_budget="50MB", block_size=10**6)(torch.rand(4000),
                                                         torch.arange(4000) % 2)
    with pytest.raises(ValueError, match="memory_budget"):
        AUCLoss(memory_budget="a lot")


def test_over_budget_refusal_allocates_little():
    """A batch of 10^6 scores (2.5e11 pairs, ~50 TB as is) is refused with less than
    50 MB allocated: the refusal happens before any pair exists."""
    code = (
        "import torch, sparselp, benchmarks.peakmem as pm\n"
        "s = torch.rand(10**6); y = torch.arange(10**6) % 2\n"
        "loss = sparselp.MultiClassAUCLoss(2, memory_budget='1GB')\n"
        "S = torch.stack([s, -s], 1)\n"
        "pm._reset_peak(); base = pm.current_rss()\n"
        "try:\n    loss(S, y)\nexcept sparselp.MemoryBudgetError as e:\n"
        "    print('REFUSED', pm._peak_now() - base)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert "REFUSED" in out.stdout, out.stderr
    assert int(out.stdout.split()[-1]) < 50 * 10**6


def test_solve_and_layer_take_a_budget():
    c = torch.ones(50, dtype=F64)
    A = -torch.eye(50, dtype=F64)
    b = -torch.ones(50, dtype=F64)
    lp = sparselp.LinearProgram(c, A, b)
    with pytest.raises(MemoryBudgetError, match="solve on LP 50x50"):
        sparselp.solve(lp, memory_budget=1000)
    assert sparselp.solve(lp, memory_budget="1GB").status.name == "OPTIMAL"
    with pytest.raises(MemoryBudgetError, match="lp_solve"):
        sparselp.LPLayer(memory_budget=1000)(c, A, b)
    x = sparselp.lp_solve(c, A, b, memory_budget="1GB")
    torch.testing.assert_close(x, torch.ones(50, dtype=F64))


def test_plan_of_a_problem_with_a_reduction_option():
    lp = sparselp.formulations.fscore(torch.rand(500, dtype=F64), torch.arange(500) % 4 == 0)
    p = plan(lp, memory_budget="4GB", reduced_rows=20)
    assert [o.name for o in p.options] == ["as is", "reduced 20"]
    assert p.options[1].settings == {"reduced_rows": 20}


@pytest.mark.parametrize("kwargs,match", [
    ({"batch_size": None}, "batch_size"), ({"batch_size": 1}, "batch_size"),
    ({"batch_size": 100, "positive_fraction": 1.5}, "positive_fraction"),
    ({"batch_size": 100, "memory_budget": "x"}, "memory_budget")])
def test_plan_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan("auc", **kwargs)
    with pytest.raises(ValueError, match="loss"):
        plan("hinge-loss", batch_size=10)


def test_cli_plan_exit_codes(capsys):
    from benchmarks.cli import main
    assert main(["plan", "--loss", "auc", "--batch-size", "20000", "--memory", "2GB"]) == 0
    out = capsys.readouterr().out
    assert "* chunked" in out and f"block_size={PREFERRED_BLOCK // 10000 * 10000}" in out
    assert main(["plan", "--loss", "fscore", "--batch-size", "1000000", "--memory", "40MB"]) == 1
    assert "nearest that fits: batch_size <=" in capsys.readouterr().out
    assert main(["plan", "--loss", "auc"]) == 2
    assert "--batch-size" in capsys.readouterr().err
    assert main(["plan", "--loss", "auc", "--batch-size", "10", "--memory", "lots"]) == 2


def test_coupled_plan_follows_the_loss_linear_solver():
    """The structured path (auto) is linear in the batch; a loss pinned to SciPy's LU gets
    the measured n^2 model."""
    auto = plan(FScoreLoss(closed_form=False), 4096, memory_budget="8GB")
    lu = plan(FScoreLoss(linear_solver="scipy", closed_form=False), 4096, memory_budget="8GB")
    assert auto.details["strategy"] == "structured" and lu.details["strategy"] == "scipy"
    assert lu.peak_bytes > 5 * auto.peak_bytes
    small, big = (plan("fscore", b, memory_budget="8GB").peak_bytes for b in (16384, 65536))
    assert (big - C0) < 4.5 * (small - C0)  # linear, not quadratic
