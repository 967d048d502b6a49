"""Run one function in a fresh Python process and measure its peak memory.

Peak memory of a process only ever grows, so two configurations measured in one process
contaminate each other. :func:`run_isolated` starts a new interpreter for every call:

- CPU: the child's peak resident set size (VmHWM, reset after the imports) is read by the
  child right after the call; when the child does not finish, the parent reads it from
  ``os.wait4`` (the
  kernel's ``ru_maxrss``), so it is known even when the child is killed at its time limit or
  by the OOM killer. The child also reports its resident size after imports
  (``baseline_rss``) so that the cost of the interpreter and of ``import torch`` can be
  subtracted: ``net_rss = peak_rss - baseline_rss``.
- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.

Usage from another benchmark::

    from benchmarks.peakmem import run_isolated
    r = run_isolated("benchmarks.resnet:train_step", {"batch": 64, "loss": "ce"}, timeout=60)
    r["status"], r["peak_rss"], r["net_rss"], r["cuda_peak"], r["result"]

The target function must be importable at module level (``"package.module:function"``),
take JSON-serialisable keyword arguments and return a JSON-serialisable dict.
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

__all__ = ["run_isolated", "current_peak_rss", "current_rss", "allocate"]

# ru_maxrss is in kilobytes on Linux (bytes on macOS).
_RSS_UNIT = 1 if sys.platform == "darwin" else 1024


def current_peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _RSS_UNIT


def _proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux /proc; else the peak so far)."""
    value = _proc_status("VmRSS")
    return current_peak_rss() if value is None else value


def _reset_peak() -> bool:
    """Reset this process's peak-RSS mark to its current RSS (Linux >= 4.0, clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_now() -> int:
    value = _proc_status("VmHWM")
    return current_peak_rss() if value is None else value


def _resolve(target: str):
    if ":" not in target:
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    module, _, name = target.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"target {target!r} is not callable")
    return obj


def run_isolated(target: str, kwargs: dict | None = None, *, timeout: float = 600.0,
                 import_timeout: float = 300.0, device: str = "cpu", threads: int | None = None,
                 mem_limit: int | None = None, preload: tuple = (),
                 mmap_threshold: int | None = 1 << 20) -> dict:
    """Call ``target(**kwargs)`` in a fresh interpreter and return its peak memory.

    Parameters
    ----------
    target : str
        ``"package.module:function"``; the function returns a JSON-serialisable dict.
    kwargs : dict, optional
        JSON-serialisable keyword arguments.
    timeout : float
        Seconds the call may run, counted from the end of the child's imports (the
        baseline), so that a slow ``import torch`` on a loaded machine does not eat into
        it. The child is then killed; the row has ``status == "timeout"`` and ``peak_rss``
        is a lower bound on the peak the full run would have reached.
    import_timeout : float
        Seconds the child may take to start and import before the call (killed after
        that with ``status == "timeout"`` and no baseline).
    device : str
        ``"cpu"`` or a CUDA device string. For CUDA the child resets and reads
        ``torch.cuda.max_memory_allocated(device)``.
    threads : int, optional
        ``torch.set_num_threads`` in the child.
    mem_limit : int, optional
        Bytes the call may allocate on top of what the imports hold (Linux ``RLIMIT_DATA``,
        which counts the anonymous mappings large tensors live in). An allocation beyond it
        fails at once instead of pushing a shared machine into swap or the OOM killer; the
        row then has ``status == "memory_limit"``: the call needs more than ``mem_limit``.
        Ignored on CUDA devices (the driver's mappings count against the limit).

    preload : tuple of str
        Modules imported before the baseline is taken (e.g. ``("torchvision",)``), so that
        their import is not counted in ``net_rss``; one that fails to import is ignored.

    mmap_threshold : int or None
        glibc's ``MALLOC_MMAP_THRESHOLD_`` for the child (default 1 MiB; None leaves the
        environment alone). By default glibc raises this threshold every time a large block
        is freed, after which large tensors are carved from the heap and freed memory stays
        resident: the peak RSS then depends on the order of allocations (seen: 422 to 470
        MiB for the same ResNet step). With a fixed threshold every tensor above it is its
        own mapping, returned at free, and the peak RSS tracks the peak of live memory
        (seen: 286 and 287 MiB).

    Returns
    -------
    dict
        ``status`` ("ok", "timeout", "memory_limit", "error" or "killed"), ``error``
        (message or ""),
        ``peak_rss`` and ``baseline_rss`` (bytes; baseline is after imports), ``net_rss``
        (their difference), ``cuda_peak`` (bytes or None), ``seconds`` (wall time of the
        call itself, or of the whole child when it did not finish) and ``result`` (the
        function's dict, or None).
    """
    if ":" not in target:
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    if timeout <= 0 or import_timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout} (import_timeout "
                         f"{import_timeout})")
    if mem_limit is not None and mem_limit <= 0:
        raise ValueError(f"mem_limit must be a positive number of bytes, got {mem_limit}")
    spec = {"target": target, "kwargs": kwargs or {}, "device": device, "threads": threads,
            "mem_limit": mem_limit, "preload": list(preload)}
    fd, out_path = tempfile.mkstemp(prefix="peakmem-", suffix=".json")
    os.close(fd)
    env = dict(os.environ)
    # The child must import the same source tree as the parent (benchmarks is not always
    # installed), so put the parent's sys.path in front.
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
    if mmap_threshold is not None:
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(int(mmap_threshold)))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.peakmem", out_path],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    proc.stdin.write(json.dumps(spec).encode())
    proc.stdin.close()
    wstatus, usage, timed_out = _wait(proc, out_path, start, timeout, import_timeout)
    proc.returncode = os.waitstatus_to_exitcode(wstatus)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    peak = usage.ru_maxrss * _RSS_UNIT
    row = {"status": "ok", "error": "", "peak_rss": peak, "baseline_rss": None, "net_rss": None,
           "cuda_peak": None, "seconds": elapsed, "result": None}
    try:
        with open(out_path) as fh:
            text = fh.read()
        child = json.loads(text) if text else {}
    finally:
        os.unlink(out_path)
    if child.get("baseline_rss") is not None:
        row["baseline_rss"] = child["baseline_rss"]
        row["net_rss"] = peak - child["baseline_rss"]
    if timed_out:
        row.update(status="timeout", error=timed_out)
    elif "error" in child:
        out_of_memory = child["error"].startswith("MemoryError") or \
            "can't allocate memory" in child["error"] or "Cannot allocate memory" in child["error"]
        row.update(status="memory_limit" if mem_limit and out_of_memory else "error",
                   error=child["error"][:500])
    elif proc.returncode != 0 or "result" not in child:
        # SIGKILL from the OOM killer, a segfault, or an interpreter crash.
        tail = stderr.strip().splitlines()[-3:]
        row.update(status="killed",
                   error=f"child exited with code {proc.returncode}: {' | '.join(tail)}")
    else:
        row.update(result=child["result"], cuda_peak=child.get("cuda_peak"),
                   seconds=child["seconds"])
        if child.get("peak_rss"):  # measured in the child right after the call
            row["peak_rss"] = child["peak_rss"]
            row["net_rss"] = child["peak_rss"] - child["baseline_rss"]
    return row



def _wait(proc, out_path: str, start: float, timeout: float, import_timeout: float):
    """Wait for the child; kill it past its limits. Returns (wait status, rusage, why
    it was killed or "")."""
    timed_out, ready = "", None
    # Poll with wait4 so that the kernel's rusage of this very child comes back with it.
    while True:
        pid, wstatus, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid != 0:
            return wstatus, usage, ""
        now = time.perf_counter()
        if ready is None and os.path.getsize(out_path) > 0:  # the child wrote its baseline
            ready = now
        if ready is None and now - start > import_timeout:
            timed_out = f"killed after {import_timeout:g} s, still importing"
        elif ready is not None and now - ready > timeout:
            timed_out = f"killed after {timeout:g} s"
        if timed_out:
            os.killpg(proc.pid, signal.SIGKILL)
            _, wstatus, usage = os.wait4(proc.pid, 0)
            return wstatus, usage, timed_out
        time.sleep(0.02)


def allocate(nbytes: int, hold_seconds: float = 0.0) -> dict:
    """Calibration target: touch ``nbytes`` of fresh memory (then sleep ``hold_seconds``).

    Used by the tests to check that :func:`run_isolated` sees an allocation of known size.
    """
    import numpy as np

    buf = np.ones(int(nbytes) // 8, dtype=np.float64)  # ones, so every page is touched
    time.sleep(hold_seconds)
    return {"sum": float(buf.sum())}


def _child(out_path: str) -> None:
    spec = json.loads(sys.stdin.read())
    report: dict = {}
    try:
        fn = _resolve(spec["target"])
        import torch  # imported before the baseline so that it is not counted

        for name in spec.get("preload", []):
            try:
                importlib.import_module(name)
            except ImportError:  # the target reports its own import errors
                pass

        if spec.get("threads"):
            torch.set_num_threads(int(spec["threads"]))
        device = spec.get("device", "cpu")
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.init()
            torch.cuda.reset_peak_memory_stats(device)
        # The resident size now, not the high-water mark: transient peaks of the imports
        # (and library pages the kernel has since dropped) must not hide the target's own.
        # Import transients are no part of the target's peak: restart the mark here.
        _reset_peak()
        report["baseline_rss"] = current_rss()
        # Not under CUDA: its driver maps large private regions that RLIMIT_DATA counts.
        if spec.get("mem_limit") and not cuda:
            data = _proc_status("VmData") or 0
            resource.setrlimit(resource.RLIMIT_DATA,
                               (data + int(spec["mem_limit"]), resource.RLIM_INFINITY))
        with open(out_path, "w") as fh:  # so a killed child still leaves its baseline
            json.dump(report, fh)
        t0 = time.perf_counter()
        result = fn(**spec["kwargs"])
        report["peak_rss"] = _peak_now()
        if cuda:
            torch.cuda.synchronize(device)
            report["cuda_peak"] = int(torch.cuda.max_memory_allocated(device))
        report["seconds"] = time.perf_counter() - t0
        report["result"] = result
    except BaseException as exc:  # reported to the parent, which decides
        report["error"] = f"{type(exc).__name__}: {exc}"
    with open(out_path, "w") as fh:
        json.dump(report, fh, default=float)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: it is slow after import torch and was seen to raise the
    # kernel's peak-RSS record by ~100 MB after the measurement was taken.
    os._exit(0)


if __name__ == "__main__":
    _child(sys.argv[1])
