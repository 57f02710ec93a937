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

from common.batch import Batch, IndexedDataset
from common.data.device_augment import channel_stats, normalise
from common.data.image_files import open_rgb
from common.data.seeding import STREAM_WORKERS, make_generator
from common.data.sharding import (
    per_rank_batch,
    rank_batch_indices,
    rank_sizes,
    step_sizes,
    val_shard,
)
from common.errors import DataError


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


class ShardedEpochSampler(Sampler[list[int]]):
    """A batch sampler: this rank's indices of every global batch of an epoch, one list a step
    (see `common.data.sharding`; the partial last batch is kept unless `drop_last`)."""

    def __init__(
        self,
        num_samples: int,
        global_batch: int,
        seed: int,
        rank: int,
        world_size: int,
        drop_last: bool = True,
    ) -> None:
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.local_batch = per_rank_batch(global_batch, world_size)
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.step_sizes = step_sizes(num_samples, global_batch, world_size, drop_last)
        self.steps = len(self.step_sizes)
        self.epoch = 0
        self.start_step = 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch's order; skip its first `start_step` steps (resuming)."""
        self.epoch = epoch
        self.start_step = start_step

    def __iter__(self) -> Iterator[list[int]]:
        batches = rank_batch_indices(
            self.num_samples,
            self.global_batch,
            self.seed,
            self.epoch,
            self.rank,
            self.world_size,
            self.drop_last,
        )
        for step, indices in enumerate(batches):
            if step >= self.start_step:
                yield indices.tolist()

    def __len__(self) -> int:
        """Steps left in the epoch (all of them unless resuming from `start_step`)."""
        return self.steps - self.start_step


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
        sampler = self.loader.batch_sampler
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch, start_step)
        self.start_step = start_step

    def __len__(self) -> int:
        """Steps of a whole epoch (also while resuming from `start_step`)."""
        return len(self.loader) + self.start_step

    @property
    def step_sizes(self) -> list[int]:
        """The global number of images of each training step of an epoch."""
        return list(getattr(self.loader.batch_sampler, "step_sizes", []))

    def __iter__(self) -> Iterator[Batch | tuple[torch.Tensor, torch.Tensor]]:
        """Training (a batch sampler): `Batch`es with sample indices; validation: pairs."""
        training = isinstance(self.loader.dataset, IndexedDataset)
        sampler = self.loader.batch_sampler
        sizes = list(getattr(sampler, "step_sizes", []))[self.start_step :]
        world = getattr(sampler, "world_size", 1)
        for step, item in enumerate(self.loader):
            batch = Batch.of(item).to(self.device)
            batch.images = normalise(batch.images, self.mean, self.std)
            if training and step < len(sizes):
                batch.rank_sizes = rank_sizes(sizes[step], world)
            yield batch if training else (batch.images, batch.targets)


def make_loader(
    dataset: datasets.ImageFolder,
    *,
    num_workers: int,
    device: torch.device,
    seed: int,
    rank: int,
    batch_sampler: Sampler[list[int]] | None = None,
    sampler: Sampler[int] | None = None,
    batch_size: int = 1,
) -> DataLoader:
    """A DataLoader over `batch_sampler` (training: one list of indices a step) or over
    `sampler` in batches of `batch_size` (validation); worker augmentation seeds derive from
    (seed, rank).

    Workers are persistent, so each worker's random stream continues across epochs; with
    `num_workers=0` transforms use the main process's global torch RNG.
    """
    batching = (
        {"batch_sampler": batch_sampler}
        if batch_sampler is not None
        else {"sampler": sampler, "batch_size": batch_size}
    )
    if batch_sampler is not None:  # training: each item also carries its sample index
        dataset = IndexedDataset(dataset)
    return DataLoader(
        dataset,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
        generator=make_generator(seed, rank, STREAM_WORKERS),
        **batching,
    )


def image_folder(split_dir: Path, transform: T.Compose) -> datasets.ImageFolder:
    """torchvision's ImageFolder of `split_dir`, reading files with `image_files.open_rgb` (a
    file that cannot be read is named in one line, also from a worker); a class folder without
    images is a DataError naming it."""
    try:
        return datasets.ImageFolder(str(split_dir), transform=transform, loader=open_rgb)
    except FileNotFoundError as err:  # "Found no valid file for the class ..." / no classes
        reason = " ".join(str(err).split())
        raise DataError(
            f"{split_dir.resolve()}: {reason}; every class folder needs at least one image"
        ) from None


def image_folder_splits(
    root: Path, size: int, flip: bool, randaugment: bool
) -> tuple[datasets.ImageFolder, datasets.ImageFolder]:
    """(train, val) ImageFolder data sets of `root/train` and `root/val` (or `root/test`)."""
    val_dir = root / "val" if (root / "val").is_dir() else root / "test"
    train = image_folder(root / "train", train_transform(size, flip, randaugment))
    val = image_folder(val_dir, val_transform(size))
    return train, val
