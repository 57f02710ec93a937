"""Loaders for data sets held as one uint8 tensor on the training device.

The training loader follows `common.data.sharding`: the global order and the augmentation of
every global batch are drawn from CPU generators keyed by (seed, epoch) and (seed, epoch, step),
and each rank takes its contiguous slice of both. Hence the ranks together see exactly what one
process with the same global batch sees, and CPU and GPU runs see the same images.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import torch

from common.batch import Batch
from common.data.device_augment import (
    CropFlipParams,
    channel_stats,
    crop_flip,
    normalise,
    sample_crop_flip,
)
from common.data.seeding import STREAM_AUGMENT, make_generator
from common.data.sharding import (
    check_rank,
    per_rank_batch,
    rank_batch_indices,
    rank_sizes,
    rank_slice,
    step_sizes,
    val_shard,
)


class DeviceTrainLoader:
    """Shuffled, augmented (crop + flip), normalised batches of a device-resident data set."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        global_batch: int,
        seed: int,
        padding: int,
        flip: bool,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ) -> None:
        check_rank(rank, world_size)
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"expected uint8 (N, C, H, W) images, got {images.dtype} {images.shape}"
            )
        if padding < 0:
            raise ValueError(f"crop padding must be >= 0, got {padding}")
        self.images = images
        self.labels = labels.to(images.device)
        self.global_batch = global_batch
        self.batch_size = per_rank_batch(global_batch, world_size)
        self.seed = seed
        self.padding = padding
        self.flip = flip
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.step_sizes = step_sizes(images.shape[0], global_batch, world_size, drop_last)
        self.mean, self.std = channel_stats(mean, std, images.device)
        self._epoch = 0
        self._start_step = 0
        self._iterated_epochs: set[int] = set()

    @property
    def device(self) -> torch.device:
        return self.images.device

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the shuffle and augmentation of `epoch` for the next iteration: every random
        draw of the epoch (order, crop offsets, flips) is made here, on the CPU generators of
        `common.data.seeding`, and moved to the device in one copy, so a step only slices
        device tensors (nothing is copied from the host while the epoch runs).

        `start_step` > 0 resumes inside the epoch: the iteration yields steps
        `start_step .. len(self) - 1`, exactly as an uninterrupted epoch would have.
        """
        if not 0 <= start_step <= len(self):
            raise ValueError(f"start_step {start_step} is outside [0, {len(self)}]")
        self._epoch = epoch
        self._start_step = start_step
        self._iterated_epochs.discard(epoch)
        self._draws = self.epoch_draws(epoch)
        self._draws_epoch = epoch

    def epoch_draws(self, epoch: int) -> tuple[torch.Tensor, CropFlipParams, list[int]]:
        """(this rank's sample indices of every step, their crop/flip parameters, the start of
        each step in them), on the device."""
        steps = rank_batch_indices(
            self.images.shape[0],
            self.global_batch,
            self.seed,
            epoch,
            self.rank,
            self.world_size,
            self.drop_last,
        )
        indices, params, starts = [], [], [0]
        for step, (step_indices, size) in enumerate(zip(steps, self.step_sizes)):
            own = rank_slice(size, self.rank, self.world_size)
            generator = make_generator(self.seed, epoch, step, STREAM_AUGMENT)
            indices.append(step_indices)
            params.append(sample_crop_flip(size, self.padding, self.flip, generator)[own])
            starts.append(starts[-1] + len(step_indices))
        flat = CropFlipParams(
            torch.cat([p.offset_y for p in params]),
            torch.cat([p.offset_x for p in params]),
            torch.cat([p.flipped for p in params]),
        )
        return _to_device(torch.cat(indices), self.device), flat.to(self.device), starts

    def __len__(self) -> int:
        return len(self.step_sizes)

    def __iter__(self) -> Iterator[Batch]:
        epoch = self._epoch
        if epoch in self._iterated_epochs:
            warnings.warn(
                f"iterating epoch {epoch} again with the same order: call set_epoch(epoch) "
                "before each epoch",
                stacklevel=2,
            )
        self._iterated_epochs.add(epoch)
        if getattr(self, "_draws", None) is None or self._draws_epoch != epoch:
            self._draws = self.epoch_draws(epoch)
        self._draws_epoch = epoch
        indices, params, starts = self._draws
        for step, size in enumerate(self.step_sizes):
            if step < self._start_step:
                continue
            rows = slice(starts[step], starts[step + 1])
            batch = self.augment(indices[rows], params[rows])
            batch.rank_sizes = rank_sizes(size, self.world_size)
            yield batch

    def augment(self, indices: torch.Tensor, params: CropFlipParams) -> Batch:
        """The normalised, cropped and flipped images at `indices`, their labels and indices."""
        indices = indices.to(self.device, non_blocking=True)
        images = crop_flip(
            self.images.index_select(0, indices), params.to(self.device), self.padding
        )
        images = normalise(images, self.mean, self.std)
        return Batch(images, self.labels.index_select(0, indices), indices)


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One copy to `device` (from pinned memory, asynchronous, on CUDA)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


class DeviceEvalLoader:
    """This rank's contiguous shard of a device-resident data set, normalised, in order."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"validation batch size must be >= 1, got {batch_size}")
        self.images = images
        self.labels = labels.to(images.device)
        self.batch_size = batch_size
        self.shard = val_shard(images.shape[0], rank, world_size)
        self.mean, self.std = channel_stats(mean, std, images.device)

    def __len__(self) -> int:
        return -(-len(self.shard) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(self.shard.start, self.shard.stop, self.batch_size):
            stop = min(start + self.batch_size, self.shard.stop)
            yield normalise(self.images[start:stop], self.mean, self.std), self.labels[start:stop]
