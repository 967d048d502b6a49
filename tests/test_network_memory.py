"""sparselp.network_memory: the meta-device count of a network's training step, the
planner's model= and the check against measured ResNet-18 steps."""
from __future__ import annotations

import pytest
import torch

import sparselp
from sparselp.memory_model import C0
from sparselp.network_memory import C_NET, network_peak_bytes

torchvision = pytest.importorskip("torchvision")

MiB = 2 ** 20


def _mlp(bias=True):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 32, bias=bias), torch.nn.ReLU(),
                               torch.nn.Linear(32, 5, bias=bias))


def test_mlp_counts_match_a_hand_computation():
    B = 7
    d = network_peak_bytes(_mlp(), (10,), B, device="cpu")
    params = (10 * 32 + 32 + 32 * 5 + 5) * 4
    assert d["parameters"] == d["gradients"] == params
    assert d["inputs"] == B * 10 * 4
    # Autograd keeps: the first Linear's input (the batch, not counted again) and weight
    # (a parameter), the ReLU's output (B, 32), which the second Linear saves again as its
    # input: one (B, 32) float32 tensor.
    assert d["activations"] == B * 32 * 4
    assert d["optimizer_state"] == 0 and d["overhead"] == C_NET
    # Forward end: parameters, input, the saved hidden layer and the output (B, 5).
    assert d["forward_end"] == params + B * 10 * 4 + B * 32 * 4 + B * 5 * 4
    assert d["peak_live"] >= d["forward_end"]
    assert d["peak_live"] <= d["forward_end"] + params + 3 * B * 32 * 4 + B * 5 * 4
    assert d["total"] == d["peak_live"] + C_NET
    on_gpu = network_peak_bytes(_mlp(), (10,), B, device="cuda")
    assert on_gpu["overhead"] == 0 and on_gpu["total"] == d["peak_live"]


def test_inplace_relu_and_frozen_parameters():
    net = _mlp()
    net[1] = torch.nn.ReLU(inplace=True)
    B = 5
    d = network_peak_bytes(net, (10,), B)
    # In place: the first Linear's output is the ReLU's saved output: still one tensor.
    assert d["activations"] == B * 32 * 4
    for p in net[0].parameters():
        p.requires_grad_(False)
    frozen = network_peak_bytes(net, (10,), B)
    assert frozen["gradients"] == (32 * 5 + 5) * 4
    assert frozen["parameters"] == d["parameters"]


def test_optimizer_state_and_dtype():
    d = network_peak_bytes(_mlp(), (10,), 4, optimizer="adam")
    m = network_peak_bytes(_mlp(), (10,), 4, optimizer="sgd-momentum")
    assert d["optimizer_state"] == 2 * d["gradients"] == 2 * m["optimizer_state"]
    assert d["total"] - m["total"] == m["optimizer_state"]
    wide = network_peak_bytes(_mlp(), (10,), 4, dtype=torch.float64)
    assert wide["activations"] == 2 * d["activations"]
    assert wide["parameters"] == 2 * d["parameters"]


def test_model_is_left_untouched():
    net = _mlp()
    before = [p.detach().clone() for p in net.parameters()]
    net.eval()
    network_peak_bytes(net, (10,), 3)
    assert not net.training
    assert all(p.device.type == "cpu" and p.grad is None for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_resnet18_grows_linearly_in_batch():
    model = torchvision.models.resnet18(weights=None, num_classes=2)
    rows = {b: network_peak_bytes(model, (3, 32, 32), b) for b in (16, 32, 64, 128)}
    for key in ("activations", "inputs"):  # affine: every activation scales (the
        a, b, c = (rows[k][key] for k in (16, 32, 64))  # batch-norm statistics do not)
        assert 0 < a < b < c and c - b == 2 * (b - a), key
    assert rows[32]["inputs"] == 2 * rows[16]["inputs"]
    # The peak is a maximum over moments of the step, each affine in the batch: it grows,
    # by about the same bytes per sample once the batch is not tiny (the moment settles).
    per = [(rows[2 * b]["total"] - rows[b]["total"]) / b for b in (16, 32, 64)]
    assert 0 < per[0] <= per[1] <= per[2] < 1.1 * per[1], per
    assert rows[16]["parameters"] == rows[128]["parameters"] > 40 * MiB
    # 32 x 32 images: 6.79 MiB saved at batch 16 (counted once per storage).
    assert 6.5 * MiB < rows[16]["activations"] < 7.1 * MiB
    # The gradients and the saved activations are not all alive at once.
    r = rows[128]
    assert r["peak_live"] < r["parameters"] + r["gradients"] + r["inputs"] + \
        r["activations"] + r["backward_transient"]
    assert r["forward_end"] >= r["parameters"] + r["inputs"] + r["activations"]


def test_bad_inputs_name_the_argument():
    model = torchvision.models.resnet18(weights=None, num_classes=2)
    with pytest.raises(ValueError, match="input_shape must have length 3"):
        network_peak_bytes(model, (3, 32), 4)
    with pytest.raises(ValueError, match="input_shape must have length 3.*3 channels"):
        network_peak_bytes(model, (1, 32, 32), 4)
    with pytest.raises(ValueError, match="input_shape must be the shape of one sample"):
        network_peak_bytes(model, (3, 0, 32), 4)
    with pytest.raises(ValueError, match="input_shape must be the shape"):
        network_peak_bytes(model, 32, 4)
    with pytest.raises(ValueError, match="in_features=10"):
        network_peak_bytes(_mlp(), (11,), 4)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        network_peak_bytes(model, (3, 32, 32), 0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        network_peak_bytes(model, (3, 32, 32), 4, optimizer="rmsprop")
    with pytest.raises(ValueError, match="dtype must be a floating"):
        network_peak_bytes(model, (3, 32, 32), 4, dtype=torch.int64)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        network_peak_bytes(lambda x: x, (3, 32, 32), 4)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 6 * 6, 2))
    network_peak_bytes(conv, (3, 8, 8), 2)  # the shape it was built for
    with pytest.raises(ValueError, match=r"input_shape \(3, 10, 10\): the model's forward"):
        network_peak_bytes(conv, (3, 10, 10), 2)


class _HeadFirst(torch.nn.Module):
    """Registers its head before its convolution: the check must follow the call order."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(4, 2)
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


def test_shape_check_follows_the_call_order():
    d = network_peak_bytes(_HeadFirst(), (3, 8, 8), 2)
    assert d["activations"] > 0
    with pytest.raises(ValueError, match="input_shape must have length 3.*Conv2d"):
        network_peak_bytes(_HeadFirst(), (3, 8), 3)  # no silent unbatched convolution


def test_plan_with_a_model_adds_the_network_part():
    model = torchvision.models.resnet18(weights=None, num_classes=2)
    base = sparselp.plan("auc", batch_size=64, memory_budget="4GB")
    with_net = sparselp.plan("auc", batch_size=64, memory_budget="4GB", model=model,
                             input_shape=(3, 32, 32))
    net = network_peak_bytes(model, (3, 32, 32), 64)
    assert with_net.details["network"] == net
    assert with_net.options[0].peak_bytes == base.options[0].peak_bytes + net["total"] - C0
    assert [o.name for o in with_net.options] == [o.name for o in base.options]
    assert with_net.chosen.name == "as is" and "ResNet" in with_net.what
    # A sharded option runs the network on the rank's share of the batch.
    x4 = next(o for o in with_net.options if o.name == "sharded x4")
    part = network_peak_bytes(model, (3, 32, 32), 16)["total"]
    loss_x4 = next(o for o in base.options if o.name == "sharded x4").peak_bytes
    assert abs(x4.peak_bytes - (loss_x4 + part - C0)) < 0.01 * part
    # Without a model nothing changes.
    again = sparselp.plan("auc", batch_size=64, memory_budget="4GB")
    assert again.rows() == base.rows() and again.details == base.details


def test_plan_with_a_model_chooses_against_the_whole_step():
    model = torchvision.models.resnet18(weights=None, num_classes=2)
    alone = network_peak_bytes(model, (3, 32, 32), 2000)["total"]
    # The loss alone fits as is; with the network it does not, so a chunked block is
    # chosen in the room the network leaves, or the batch is cut.
    p = sparselp.plan("auc", batch_size=2000, memory_budget=int(alone * 1.25),
                      model=model, input_shape=(3, 32, 32))
    assert sparselp.plan("auc", batch_size=2000, memory_budget=int(alone * 1.25)).fits
    assert p.chosen is None or p.chosen.name != "as is"
    assert p.chosen is None or p.chosen.peak_bytes <= 0.9 * p.memory_budget
    tiny = sparselp.plan("auc", batch_size=2000, memory_budget="200MB", model=model,
                         input_shape=(3, 32, 32))
    assert not tiny.fits and 2 <= tiny.details["max_batch_as_is"] < 2000
    assert "network alone exceeds" in tiny.options[0].note


def test_plan_model_arguments_are_checked():
    model = torchvision.models.resnet18(weights=None, num_classes=2)
    with pytest.raises(ValueError, match="model and input_shape go together"):
        sparselp.plan("auc", batch_size=64, model=model)
    with pytest.raises(ValueError, match="input_shape must have length 3"):
        sparselp.plan("auc", batch_size=64, model=model, input_shape=(32, 32))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        sparselp.plan("auc", batch_size=64, model=model, input_shape=(3, 32, 32),
                      optimizer="lbfgs")
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        sparselp.plan("auc", batch_size=1, model=model, input_shape=(3, 32, 32))


def test_check_benchmark_quick_configuration(tmp_path):
    from benchmarks import netmem_check

    rows = netmem_check.run(quick=True, batches=(16,), sizes=(32,), losses=("ce", "ours"))
    assert [(r["loss"], r["status"]) for r in rows] == [("ce", "ok"), ("ours", "ok")]
    for r in rows:
        assert 0.75 <= r["ratio"] <= 1.25, r
        assert r["within"]
    assert rows[1]["loss_mb"] > 0 and rows[0]["loss_mb"] == 0
    out = tmp_path / "check.csv"
    from benchmarks.tables import write_csv
    write_csv(rows, str(out), netmem_check.COLUMNS)
    assert out.read_text().startswith("size,batch,loss,status,predicted_mb")
