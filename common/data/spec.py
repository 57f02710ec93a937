"""What `build_data` hands back: the data set's description and its two loaders."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from common.config.schema import DataConfig


@dataclass
class DataSpec:
    """Facts about a built data set that models and training loops need."""

    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    train_size: int
    val_size: int
    class_names: list[str]
    # Every training image's label in data-set order (CRD samples negatives of other classes).
    train_targets: torch.Tensor | None = None


@runtime_checkable
class TrainLoader(Protocol):
    """An epoch-based iterator over `(images, targets)` already on the training device.

    `images` are float32 `(B, 3, H, W)`, augmented and normalised; `targets` are int64 `(B,)`.
    `B` is the per-process batch (global batch // world size), smaller on the partial last
    step (see `common.data.sharding`). `len()` is the number of steps per epoch. Call
    `set_epoch(epoch)` before iterating each epoch: it selects that epoch's shuffle and
    augmentation. With
    `start_step=k` (resuming) the next iteration yields only steps k.. of that epoch, identical
    to those of an uninterrupted epoch.
    """

    step_sizes: list[int]  # the global number of images of each step of an epoch

    def set_epoch(self, epoch: int, start_step: int = 0) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


@dataclass
class DataBundle:
    """The result of `build_data`: spec, training loader and validation loader.

    `val` yields normalised, un-augmented `(images, targets)` on the device. Each process gets a
    disjoint contiguous shard; together the shards cover the validation set exactly once.
    """

    spec: DataSpec
    train: TrainLoader
    val: Iterable[tuple[torch.Tensor, torch.Tensor]]
    config: DataConfig | None = None  # what it was built from (a run records it in config.yaml)
    batch_size: int = 0  # the global training batch it was built for (0: not known)
