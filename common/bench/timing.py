"""Timing helpers for `make bench`: blocks of calls timed with `torch.utils.benchmark`
(which synchronises the accelerator around a block), and the peak memory of a measurement."""

from __future__ import annotations

import resource
import statistics
from collections.abc import Callable

import torch


def seconds_per_call(
    fn: Callable[[], object], steps: int, warmup: int = 3, blocks: int = 1
) -> float:
    """Seconds per call of `fn`: the median over `blocks` blocks of `steps` calls each (one
    block's time divided by its calls: single calls are never timed), after `warmup` calls.
    Runs with the process's own thread count (the Timer's default would be one thread)."""
    from torch.utils.benchmark import Timer  # imported here: it warns on machines without CUDA

    for _ in range(warmup):
        fn()
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return statistics.median(timer.timeit(steps).mean for _ in range(max(blocks, 1)))


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory measurement (CUDA; the CPU's RSS peak cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated (CUDA) or peak resident set size of the process (CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
