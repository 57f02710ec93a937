"""Timing helpers for `make bench`: blocks of calls timed with `torch.utils.benchmark`
(which synchronises the accelerator around a block), candidates timed against each other in
interleaved repeats (`interleaved_seconds`: every share and "x its base" of `make bench`), and
the peak memory of a measurement."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

DEFAULT_REPEATS = 5  # interleaved repeats of `interleaved_seconds` (`tools/bench.py --repeats`)


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


@dataclass(frozen=True)
class Spread:
    """A figure over interleaved repeats: the median and the lowest and highest repeat."""

    median: float
    lo: float
    hi: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        """Median, min and max of `samples` (one per repeat)."""
        return cls(statistics.median(samples), min(samples), max(samples))

    def scaled(self, factor: float) -> Spread:
        """The same figure times `factor` (seconds -> milliseconds)."""
        return Spread(self.median * factor, self.lo * factor, self.hi * factor)

    def bounds(self) -> list[float]:
        """[lo, hi]: what `make bench` prints and writes as a figure's `*_spread`."""
        return [self.lo, self.hi]


@dataclass
class Interleaved:
    """What `interleaved_seconds` measured: per candidate, the seconds per call of each repeat
    (one block of calls per candidate per repeat, the candidates interleaved)."""

    samples: dict[str, list[float]]
    clock: str  # "thread_time (1 thread)" on the CPU, "wall (synchronised)" on CUDA
    calls: int  # calls per block
    repeats: int

    def seconds(self, name: str) -> Spread:
        """Seconds per call of `name`: median [min, max] over the repeats."""
        return Spread.of(self.samples[name])

    def ratio(self, num: str, den: str) -> Spread:
        """`num` over `den` ("x its base"), taken within each repeat (the two blocks timed
        next to each other, so a drift of the machine cancels), then median [min, max]."""
        pairs = zip(self.samples[num], self.samples[den], strict=True)
        return Spread.of([a / b for a, b in pairs])

    def share_outside(self, whole: str, part: str) -> Spread:
        """(whole - part) / whole within each repeat (the share of `whole`, e.g. an engine
        step, beyond `part`, e.g. its networks' bare work), then median [min, max]; not
        clipped at 0, so a spread reaching below 0 shows a share within the noise."""
        pairs = zip(self.samples[whole], self.samples[part], strict=True)
        return Spread.of([(a - b) / a for a, b in pairs])


def interleaved_seconds(
    candidates: Mapping[str, Callable[[], object]],
    calls: int,
    repeats: int | None = None,
    warmup: int = 2,
    device: torch.device | str = "cpu",
    clock: Callable[[], float] | None = None,
    thread_time: bool = True,
) -> Interleaved:
    """Time several candidates fairly against each other: `warmup` calls of each, then
    `repeats` rounds, each timing one block of `calls` calls of every candidate, the order
    rotated by one each round (A B C, B C A, C A B, ...), so that a change of the machine's
    load hits every candidate alike; a repeat's figure is its block's time / `calls` (single
    calls are never timed).

    On the CPU the blocks run with one intra-op thread (`torch.set_num_threads(1)`, the
    process's count restored after) and are timed by `time.thread_time()`: the CPU time of the
    calling thread, which other processes on a loaded machine do not inflate (work done in
    other threads or processes, e.g. DataLoader workers, is not counted). On CUDA they are
    timed by the wall clock between two synchronisations of the device, with the process's
    thread count. `thread_time=False` times the CPU as CUDA is timed (wall clock, the process's
    threads): for a loop whose work runs partly in other processes (DataLoader workers), whose
    cost the calling thread's CPU time would not see. `clock` replaces the clock (tests).
    """
    if not candidates:
        raise ValueError("interleaved_seconds needs at least one candidate")
    device = torch.device(device)
    cuda = device.type == "cuda"
    one_thread = thread_time and not cuda
    repeats = DEFAULT_REPEATS if repeats is None else repeats
    calls, repeats = max(calls, 1), max(repeats, 1)
    tick = clock or (time.thread_time if one_thread else time.perf_counter)
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    threads = torch.get_num_threads()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    try:
        if one_thread:
            torch.set_num_threads(1)
        for _ in range(warmup):
            for name in names:
                candidates[name]()
        for r in range(repeats):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                fn = candidates[name]
                sync()
                start = tick()
                for _ in range(calls):
                    fn()
                sync()
                samples[name].append((tick() - start) / calls)
    finally:
        torch.set_num_threads(threads)
    if one_thread:
        what = "thread_time (1 thread)"
    else:
        what = "wall (synchronised)" if cuda else f"wall ({threads} threads)"
    return Interleaved(samples, what, calls, repeats)


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
