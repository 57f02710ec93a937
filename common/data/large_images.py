"""ImageNet-style folder trees of large images: torchvision ImageFolder + DataLoader workers.

Train: RandomResizedCrop(S) + RandomHorizontalFlip (+ RandAugment(2, 9), Cubuk et al. 2020);
val: Resize(S * 256 / 224) + CenterCrop(S), the standard ImageNet evaluation (He et al. 2016).
Workers return uint8 tensors; `DeviceBatches` moves them to the device (non-blocking, from
pinned memory on CUDA) and normalises there. The training sampler follows
`common.data.sharding` (same global order on every rank, contiguous rank slices, reshuffled by
(seed, epoch)); the validation sampler gives each rank a contiguous shard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler
from torchvision import datasets
from torchvision import transforms as T

from common.data.device_augment import channel_stats, normalise
from common.data.seeding import STREAM_WORKERS, make_generator
from common.data.sharding import per_rank_batch, rank_batch_indices, val_shard


def train_transform(size: int, flip: bool, randaugment: bool) -> T.Compose:
    """PIL -> augmented uint8 tensor (3, size, size)."""
    steps: list = [T.RandomResizedCrop(size)]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if randaugment:
        steps.append(T.RandAugment(num_ops=2, magnitude=9))
    steps.append(T.PILToTensor())
    return T.Compose(steps)


def val_transform(size: int) -> T.Compose:
    """PIL -> centre-cropped uint8 tensor (3, size, size)."""
    return T.Compose([T.Resize(round(size * 256 / 224)), T.CenterCrop(size), T.PILToTensor()])


class ShardedEpochSampler(Sampler[int]):
    """This rank's indices of every global batch of an epoch (see `common.data.sharding`)."""

    def __init__(
        self, num_samples: int, global_batch: int, seed: int, rank: int, world_size: int
    ) -> None:
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.local_batch = per_rank_batch(global_batch, world_size)
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_step = 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch's order; skip its first `start_step` steps (resuming)."""
        self.epoch = epoch
        self.start_step = start_step

    def __iter__(self) -> Iterator[int]:
        batches = rank_batch_indices(
            self.num_samples, self.global_batch, self.seed, self.epoch, self.rank, self.world_size
        )
        for step, indices in enumerate(batches):
            if step >= self.start_step:
                yield from indices.tolist()

    def __len__(self) -> int:
        steps = self.num_samples // self.global_batch - self.start_step
        return steps * self.local_batch


class ShardSampler(Sampler[int]):
    """The contiguous validation shard of one rank, in order."""

    def __init__(self, num_samples: int, rank: int, world_size: int) -> None:
        self.shard = val_shard(num_samples, rank, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.shard)

    def __len__(self) -> int:
        return len(self.shard)


class DeviceBatches:
    """Wraps a DataLoader of uint8 batches: moves them to `device` and normalises them there."""

    def __init__(
        self,
        loader: DataLoader,
        device: torch.device,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
    ) -> None:
        self.loader = loader
        self.device = device
        self.start_step = 0
        self.mean, self.std = channel_stats(mean, std, device)

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch's shuffle; start at `start_step` (a no-op for validation)."""
        sampler = self.loader.sampler
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch, start_step)
        self.start_step = start_step

    def __len__(self) -> int:
        """Steps of a whole epoch (also while resuming from `start_step`)."""
        return len(self.loader) + self.start_step

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, targets in self.loader:
            images = images.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            yield normalise(images, self.mean, self.std), targets


def make_loader(
    dataset: datasets.ImageFolder,
    sampler: Sampler[int],
    *,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    drop_last: bool,
    seed: int,
    rank: int,
) -> DataLoader:
    """A DataLoader over `sampler`; worker augmentation seeds derive from (seed, rank).

    Workers are persistent, so each worker's random stream continues across epochs; with
    `num_workers=0` transforms use the main process's global torch RNG.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        generator=make_generator(seed, rank, STREAM_WORKERS),
    )


def image_folder_splits(
    root: Path, size: int, flip: bool, randaugment: bool
) -> tuple[datasets.ImageFolder, datasets.ImageFolder]:
    """(train, val) ImageFolder data sets of `root/train` and `root/val` (or `root/test`)."""
    val_dir = root / "val" if (root / "val").is_dir() else root / "test"
    train = datasets.ImageFolder(
        str(root / "train"), transform=train_transform(size, flip, randaugment)
    )
    val = datasets.ImageFolder(str(val_dir), transform=val_transform(size))
    return train, val
