"""Global-batch sharding shared by every loader, so that N processes see what one process sees.

Each epoch the global order is `randperm(num_samples)` from a CPU generator keyed by
(seed, epoch), identical on every rank. Global batch `i` is `perm[i*B:(i+1)*B]` (the tail that
does not fill a batch is dropped) and rank `r` takes the `r`-th contiguous slice of size
`B // world_size` of it. Concatenating the ranks' slices of step `i` in rank order gives exactly
the single-process batch `i`. Validation uses contiguous, non-overlapping shards instead.
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


def rank_slice(global_batch: int, rank: int, world_size: int) -> slice:
    """Which positions of a global batch belong to `rank`."""
    local = per_rank_batch(global_batch, world_size)
    return slice(rank * local, (rank + 1) * local)


def rank_batch_indices(
    num_samples: int, global_batch: int, seed: int, epoch: int, rank: int, world_size: int
) -> Iterator[torch.Tensor]:
    """The sample indices of this rank for every step of an epoch (drop_last)."""
    check_rank(rank, world_size)
    own = rank_slice(global_batch, rank, world_size)
    perm = epoch_permutation(num_samples, seed, epoch)
    for step in range(num_samples // global_batch):
        yield perm[step * global_batch : (step + 1) * global_batch][own]


def val_shard(num_samples: int, rank: int, world_size: int) -> range:
    """The contiguous validation shard of `rank`; shards are disjoint and cover everything."""
    check_rank(rank, world_size)
    start = num_samples * rank // world_size
    stop = num_samples * (rank + 1) // world_size
    return range(start, stop)
