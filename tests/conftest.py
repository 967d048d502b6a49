"""Test-wide settings.

One torch thread: the suite is thousands of small tensor operations, for which the
thread pool's start-up costs more than it saves (and, on a loaded 2-core machine, tens of
times more). Benchmarks choose their own thread counts.
"""
import torch

torch.set_num_threads(1)
