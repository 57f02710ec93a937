"""Global-batch sharding shared by every loader, so that N processes see what one process sees.

Each epoch the global order is `randperm(num_samples)` from a CPU generator keyed by
(seed, epoch), identical on every rank. Global batch `i` is `perm[i*B:(i+1)*B]` and rank `r`
takes the `r`-th contiguous slice of it (`B // world_size` images of a full batch).
Concatenating the ranks' slices of step `i` in rank order gives exactly the single-process
batch `i`. Validation uses contiguous, non-overlapping shards instead.

The last, partial batch (the tail that does not fill a global batch: 16 images of CIFAR's
50,000 at batch 64) is trained on, as the reference protocol's DataLoader does (782 steps an
epoch), unless `drop_last`. It is split as evenly as possible into contiguous rank slices, and
dropped when it holds fewer than `MIN_TAIL_PER_RANK` images per process (BatchNorm cannot train
on a single image).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from common.data.seeding import STREAM_SHUFFLE, make_generator


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """`global_batch // world_size`; raise ValueError unless it divides exactly and is >= 1."""
    if world_size < 1 or global_batch < 1:
        raise ValueError(f"batch size {global_batch} and world size {world_size} must be >= 1")
    if global_batch % world_size:
        raise ValueError(
            f"the global batch size {global_batch} is not divisible by the world size "
            f"{world_size}; choose a batch size that is a multiple of the number of processes"
        )
    return global_batch // world_size


def check_rank(rank: int, world_size: int) -> None:
    """Raise ValueError unless 0 <= rank < world_size."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside [0, {world_size})")


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """The global sample order of an epoch (CPU int64), the same on every rank."""
    return torch.randperm(num_samples, generator=make_generator(seed, epoch, STREAM_SHUFFLE))


MIN_TAIL_PER_RANK = 2


def rank_slice(step_size: int, rank: int, world_size: int) -> slice:
    """Which positions of a global batch of `step_size` images belong to `rank`: contiguous,
    in rank order, as even as possible (exactly `step_size // world_size` when it divides)."""
    check_rank(rank, world_size)
    return slice(step_size * rank // world_size, step_size * (rank + 1) // world_size)


def rank_sizes(step_size: int, world_size: int) -> tuple[int, ...]:
    """Every rank's number of images of a step of `step_size` images (`rank_slice`'s sizes)."""
    return tuple(
        step_size * (r + 1) // world_size - step_size * r // world_size for r in range(world_size)
    )


def steps_per_epoch(num_samples: int, global_batch: int, world_size: int, drop_last: bool) -> int:
    """Steps of an epoch: the full batches, plus the partial last one when it is kept."""
    full, tail = divmod(num_samples, global_batch)
    keep_tail = not drop_last and tail >= MIN_TAIL_PER_RANK * world_size
    return full + int(keep_tail)


def step_sizes(num_samples: int, global_batch: int, world_size: int, drop_last: bool) -> list[int]:
    """The global number of images of every step of an epoch."""
    steps = steps_per_epoch(num_samples, global_batch, world_size, drop_last)
    return [min(global_batch, num_samples - step * global_batch) for step in range(steps)]


def rank_batch_indices(
    num_samples: int,
    global_batch: int,
    seed: int,
    epoch: int,
    rank: int,
    world_size: int,
    drop_last: bool = True,
) -> Iterator[torch.Tensor]:
    """The sample indices of this rank for every step of an epoch."""
    check_rank(rank, world_size)
    perm = epoch_permutation(num_samples, seed, epoch)
    for step, size in enumerate(step_sizes(num_samples, global_batch, world_size, drop_last)):
        start = step * global_batch
        yield perm[start : start + size][rank_slice(size, rank, world_size)]


def val_shard(num_samples: int, rank: int, world_size: int) -> range:
    """The contiguous validation shard of `rank`; shards are disjoint and cover everything."""
    check_rank(rank, world_size)
    start = num_samples * rank // world_size
    stop = num_samples * (rank + 1) // world_size
    return range(start, stop)
