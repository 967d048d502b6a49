r"""The memory of a network's training step, counted on the ``meta`` device.

:func:`network_peak_bytes` predicts the peak of one training step of ``model`` (forward,
backward, optimizer step) on a batch of ``batch_size`` inputs of shape ``input_shape``
without allocating any of it: a copy of the model on the ``meta`` device (shapes and
dtypes, no data) runs its forward and backward on a meta input, and two things watch it:

- ``torch.autograd.graph.saved_tensors_hooks`` see every tensor autograd keeps for the
  backward; their bytes, counted once per storage (ReLU(inplace) saves its output, which
  the next convolution saves again as its input) and without the parameters, buffers and
  the input batch, are the ``activations``;
- a ``TorchDispatchMode`` records the storage of every tensor each operator creates and,
  after each operator, which are still alive (weak references: the meta device frees a
  storage when its last reference goes, as the CPU allocator does). The largest sum is
  ``peak_live``: parameters + input + saved activations + the gradients and temporaries
  of the backward at the moment they are largest together. The gradients and the saved
  activations are never all alive at once (a node's saved tensors are freed as soon as it
  has run), so the peak is below the sum of the parts; ``backward_transient`` is the
  largest excess, during the backward, of the live bytes over parameters, input, and the
  saved activations and gradients alive at that moment (gradient buffers between
  operators, the gradient of the output).

The backward starts from a gradient of the model's output of the output's full size, as
a loss's backward hands it over; the loss itself is not counted (the planner adds it).

.. math::

    \text{total} = \text{peak\_live} + k_{\text{opt}}\,|\theta| + C_{\text{net}}

with :math:`k_{\text{opt}}` = 0 for plain SGD, 1 for SGD with momentum, 2 for Adam (their
state, alive during the forward and backward of every step after the first: the first
step's peak, before the state exists, is lower), :math:`|\theta|` the bytes of the
trainable parameters. Where the constants come from:

- :data:`C_NET` = 58 MiB (CPU): what the measured step takes beyond ``peak_live``: the
  first call's one-off costs in a fresh process (the autograd engine, oneDNN's kernels,
  primitive caches and scratchpads of the convolutions, allocator slack). Calibrated on
  ResNet-18 (``torchvision.models.resnet18(num_classes=2)``, cross-entropy, one SGD step,
  ``benchmarks.resnet.train_step`` in a fresh process via
  ``benchmarks.peakmem.run_isolated``: peak RSS over the RSS after imports, glibc's mmap
  threshold at 1 MiB, as ``benchmarks.resnet.run`` calls it) at 32 x 32 inputs, batches
  16, 64, 128, 200 and 400: measured minus ``peak_live`` was 51.8, 56.3, 57.6, 60.3 and
  66.8 MiB; 58 MiB is about their median. The 96 x 96 inputs were held out as the check
  (``python -m benchmarks.netmem_check``: 45 to 58 MiB there);
- on CUDA :data:`C_NET` is 0: the model counts tensors, as ``max_memory_allocated`` does
  (not yet checked against a GPU).

With a loss (:func:`sparselp.plan` with ``model=``) the loss part is added without its own
first-call constant ``C_0`` (:mod:`sparselp.memory_model`): :data:`C_NET` already holds
those one-off costs (measured: the AUC loss on ResNet-18's logit difference adds 0.1 to
7.7 MiB over cross-entropy, against ``C_0`` = 16 MiB). The sum is an upper bound: the
loss's LP lives during the loss's forward and backward, when the network holds its saved
activations but not yet its gradients.
"""
from __future__ import annotations

import copy
import math

import torch

from .memory_model import C0, HEADROOM, MiB, Plan, PlanOption, format_bytes

__all__ = ["network_peak_bytes", "with_network", "C_NET", "OPTIMIZER_STATE"]

#: CPU one-off bytes of a training step beyond the live tensors (see the module docstring)
C_NET = 58 * MiB
#: optimizer state in copies of the trainable parameters
OPTIMIZER_STATE = {"sgd": 0, "sgd-momentum": 1, "adam": 2}


def _storage_key(t: torch.Tensor):
    """(identity, bytes) of the storage behind ``t``; tensors without one count alone."""
    try:
        st = t.untyped_storage()
        return st._cdata, st.nbytes(), st
    except (RuntimeError, NotImplementedError, TypeError):
        return id(t), t.numel() * t.element_size(), None


def _check(model, input_shape, batch_size, optimizer, dtype) -> tuple[int, ...]:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if optimizer not in OPTIMIZER_STATE:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZER_STATE)}, got "
                         f"{optimizer!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype, got {dtype!r}")
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if not isinstance(input_shape, (tuple, list)) or not input_shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in input_shape):
        raise ValueError(f"input_shape must be the shape of one sample (positive integers, "
                         f"without the batch dimension), e.g. (3, 32, 32); got "
                         f"{input_shape!r}")
    return tuple(input_shape)


class _ShapeError(ValueError):
    pass


def _first_layer_check(model, shape):
    """Pre-hooks that check the input of the first convolution or linear layer the
    forward calls against ``input_shape`` (a clear error instead of a kernel's, and no
    silent unbatched convolution); returns their handles."""
    kinds = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
    handles, done = [], []

    def check(module, args):
        if done or not args or not isinstance(args[0], torch.Tensor):
            return
        done.append(module)
        x, name = args[0], type(module).__name__
        if isinstance(module, torch.nn.Linear):
            if x.shape[-1] != module.in_features:
                raise _ShapeError(f"input_shape {shape} does not fit the model's first "
                                  f"layer ({name} with in_features={module.in_features}), "
                                  f"which got a tensor of shape {tuple(x.shape)}")
            return
        dims = len(module.kernel_size)
        if x.dim() != dims + 2 or x.shape[1] != module.in_channels:
            raise _ShapeError(f"input_shape must have length {dims + 1} (channels, {dims} "
                              f"spatial) with {module.in_channels} channels for the "
                              f"model's first layer ({name}); got {shape}, so the layer "
                              f"got a tensor of shape {tuple(x.shape)}")

    for m in model.modules():
        if isinstance(m, kinds):
            handles.append(m.register_forward_pre_hook(check))
    return handles


def _meta_copy(model: torch.nn.Module, dtype) -> torch.nn.Module:
    """``model`` on the meta device in training mode, without copying its data."""
    memo = {}

    def meta(t):
        return torch.empty_like(t, device="meta",
                                dtype=dtype if t.is_floating_point() else t.dtype)

    for p in model.parameters():
        memo[id(p)] = torch.nn.Parameter(meta(p), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = meta(b)
    out = copy.deepcopy(model, memo)
    out.train()
    return out


class _Timeline(torch.utils._python_dispatch.TorchDispatchMode):
    """Live storages after every operator (see the module docstring)."""

    def __init__(self, fixed: set, saved: dict, grads: set):
        super().__init__()
        from torch.multiprocessing.reductions import StorageWeakRef
        self._ref = StorageWeakRef
        self.live: dict = {}
        self.fixed, self.saved, self.grads = fixed, saved, grads
        self.peak = self.transient = 0
        self.backward = False

    def add(self, t):
        key, nbytes, st = _storage_key(t)
        old = self.live.get(key)
        if old is None or (old[0] is not None and old[0].expired()):
            if old is not None:  # a freed storage's address taken by a new one
                self.saved.pop(key, None)
            self.live[key] = (self._ref(st) if st is not None else None, nbytes)

    def sweep(self):
        gone = [k for k, v in self.live.items() if v[0] is not None and v[0].expired()]
        for k in gone:
            del self.live[k]
            self.saved.pop(k, None)
        total = sum(v[1] for v in self.live.values())
        self.peak = max(self.peak, total)
        if self.backward:
            known = sum(v[1] for k, v in self.live.items()
                        if k in self.fixed or k in self.saved or k in self.grads)
            self.transient = max(self.transient, total - known)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.add(t)
        self.sweep()
        return out


def _trace(meta_model, shape, dtype) -> dict:
    """Run forward and backward of ``meta_model`` on a meta batch of ``shape``."""
    params = [p for p in meta_model.parameters()]
    fixed_tensors = params + list(meta_model.buffers())
    x = torch.empty(shape, device="meta", dtype=dtype)
    fixed = {_storage_key(t)[0] for t in fixed_tensors}
    input_key = _storage_key(x)[0]
    saved, grads = {}, set()

    def pack(t):  # the graph holds t, so its storage (and identity) lives while counted
        key, nbytes, _ = _storage_key(t)
        if key not in fixed and key != input_key:
            saved[key] = nbytes
        return t

    def on_grad(p):
        grads.add(_storage_key(p.grad)[0])

    hooks = [p.register_post_accumulate_grad_hook(on_grad) for p in params
             if p.requires_grad]
    checks = []
    timeline = _Timeline(fixed | {input_key}, {}, grads)
    try:
        with timeline:
            for t in fixed_tensors + [x]:
                timeline.add(t)
            timeline.sweep()
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                checks = _first_layer_check(meta_model, tuple(shape[1:]))
                try:
                    out = meta_model(x)
                except _ShapeError:
                    raise
                except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                    raise ValueError(f"input_shape {tuple(shape[1:])}: the model's forward "
                                     f"failed on a batch of shape {tuple(shape)}: "
                                     f"{exc}") from exc
            outs = [o for o in torch.utils._pytree.tree_leaves(out)
                    if isinstance(o, torch.Tensor) and o.requires_grad]
            if not outs:
                raise ValueError("model: its output does not require grad (no trainable "
                                 "parameters on the path from the input?)")
            activations = sum(saved.values())
            forward_end = sum(v[1] for v in timeline.live.values())
            timeline.saved, timeline.backward = dict(saved), True
            torch.autograd.backward(outs, [torch.empty_like(o) for o in outs])
    finally:
        for h in hooks + checks:
            h.remove()
    return {"activations": activations, "forward_end": forward_end,
            "peak_live": timeline.peak, "backward_transient": timeline.transient}


def network_peak_bytes(model, input_shape, batch_size, *, optimizer="sgd", device=None,
                       dtype=torch.float32) -> dict:
    """Predicted peak bytes of one training step of ``model``, by part.

    Parameters
    ----------
    model : torch.nn.Module
        Left untouched: a data-less copy on the meta device is traced.
    input_shape : tuple of int
        The shape of one sample, without the batch dimension, e.g. ``(3, 32, 32)``.
    batch_size : int
    optimizer : {"sgd", "sgd-momentum", "adam"}
    device : str or torch.device, optional
        Where the step would run (CPU by default): the CPU adds :data:`C_NET`.
    dtype : floating torch dtype
        Of the parameters and the input.

    Returns
    -------
    dict of int (bytes)
        ``parameters`` (and buffers), ``gradients``, ``optimizer_state``, ``inputs``,
        ``activations`` (saved for backward), ``backward_transient``, ``forward_end`` (live
        tensors when the forward returns, parameters included), ``peak_live`` (the largest
        live sum over forward and backward, parameters included), ``overhead`` and
        ``total`` = peak_live + optimizer_state + overhead.
    """
    shape = _check(model, input_shape, batch_size, optimizer, dtype)
    cpu = torch.device(device or "cpu").type == "cpu"
    meta = _meta_copy(model, dtype)
    trace = _trace(meta, (batch_size,) + shape, dtype)
    itemsize = torch.empty((), dtype=dtype).element_size()
    trainable = sum(p.numel() for p in meta.parameters() if p.requires_grad) * itemsize
    state = sum(_storage_key(t)[1] for t in list(meta.parameters()) + list(meta.buffers()))
    out = {"parameters": state, "gradients": trainable,
           "optimizer_state": OPTIMIZER_STATE[optimizer] * trainable,
           "inputs": batch_size * math.prod(shape) * itemsize,
           "overhead": C_NET if cpu else 0, **trace}
    out["total"] = out["peak_live"] + out["optimizer_state"] + out["overhead"]
    return out


def scale_counts(class_counts, k: int):
    """``class_counts`` scaled to a batch of ``k`` (the remainder to the largest class)."""
    if class_counts is None:
        return None
    counts = [int(c) for c in class_counts]
    n = sum(counts)
    if n == k or n <= 0:
        return counts
    out = [max(1, c * k // n) for c in counts]
    big = max(range(len(out)), key=lambda i: out[i])
    out[big] += k - sum(out)
    return out


class _Network:
    """The network part at any batch: traced exactly at ``n`` and one smaller batch, and
    affine in between (parameters are fixed, every activation is proportional to the
    batch)."""

    def __init__(self, model, input_shape, n, optimizer, device, dtype):
        self.n = n
        self.at_n = network_peak_bytes(model, input_shape, n, optimizer=optimizer,
                                       device=device, dtype=dtype)
        self.m = n // 2 if n >= 4 else 2 * n
        other = network_peak_bytes(model, input_shape, self.m, optimizer=optimizer,
                                   device=device, dtype=dtype)["total"]
        self.slope = (self.at_n["total"] - other) / (n - self.m)

    def total(self, k: int) -> int:
        return int(round(self.at_n["total"] + self.slope * (k - self.n)))


def with_network(loss_at, batch_size, budget, model, input_shape, optimizer="sgd",
                 device=None, dtype=torch.float32) -> Plan:
    """The plan of a loss with ``model``'s training step added to every option.

    ``loss_at(k, budget)`` is the loss's plan at batch ``k`` (``planner.plan_loss``). The
    loss is planned against the budget left by the network, so that the chunked option's
    block fits beside it; a sharded option runs the network on its rank's share of the
    batch. The loss's ``C_0`` is not added twice (see the module docstring).
    """
    base = loss_at(batch_size, budget)  # checks the loss's arguments first
    net = _Network(model, input_shape, batch_size, optimizer, device, dtype)
    c0 = C0 if torch.device(device or "cpu").type == "cpu" else 0
    limit = HEADROOM * budget

    def extra(k):  # what the network adds to the loss's prediction at local batch k
        return net.total(k) - c0

    room = budget - max(extra(batch_size), 0) / HEADROOM
    inner = loss_at(batch_size, max(int(room), 1)) if room < budget else base
    options = []
    for o in inner.options:
        local = math.ceil(batch_size / o.settings.get("world_size", 1))
        peak = o.peak_bytes + extra(local)
        note = f"{o.note}; network {format_bytes(net.total(local))}".lstrip("; ")
        if extra(local) >= limit:
            note = f"the network alone exceeds the budget ({format_bytes(net.total(local))})"
        options.append(PlanOption(o.name, peak, peak <= limit, dict(o.settings), note))
    chosen = next((o for o in options if o.fits), None)
    details = dict(inner.details, network=dict(net.at_n), loss_as_is=base.options[0].peak_bytes)
    details.pop("max_batch_as_is", None)
    if chosen is None or chosen.name != "as is":
        lo, hi, best = 2, batch_size, None
        while lo <= hi:  # the largest batch whose as-is peak fits (monotone in k)
            mid = (lo + hi) // 2
            # an unbounded budget: the loss's own search for a batch is not needed
            if loss_at(mid, 2 ** 62).options[0].peak_bytes + extra(mid) <= limit:
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        details["max_batch_as_is"] = best
    shape = "x".join(str(d) for d in input_shape)
    what = f"{inner.what} + {type(model).__name__} step on {shape} ({optimizer})"
    return Plan(what, budget, options, chosen, details)
