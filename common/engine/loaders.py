"""A user's DataLoaders as the engine's loaders (`common.engine.fit`).

`DataLoaderTrain` gives a `torch.utils.data.DataLoader` (or any re-iterable of batches) the
`TrainLoader` interface of `common.data.spec`: `set_epoch` forwards the epoch to a sampler that
has one (`DistributedSampler`, whose shards and reshuffling are respected) and skips the steps
already done when resuming mid-epoch; every batch becomes a `Batch` on the training device.
`DataLoaderEval` yields `(images, targets)` on the device for evaluation.

Resuming mid-epoch is exact when the loader's order depends only on the epoch (a
`DistributedSampler`, or a sampler/generator the user seeds per epoch); a loader shuffled from
the global random state draws another order after a restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from common.batch import Batch


class DataLoaderTrain:
    """The training side: `Batch`es on `device`, epoch by epoch."""

    def __init__(self, loader: Iterable[Any], device: torch.device) -> None:
        self.loader = loader
        self.device = device
        self.start_step = 0
        self.step_sizes: list[int] = []  # unknown ahead: each step counts as its own shape

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch (a sampler's `set_epoch`); skip `start_step` steps (resuming)."""
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        batch_sampler = getattr(self.loader, "batch_sampler", None)
        if batch_sampler is not sampler and hasattr(batch_sampler, "set_epoch"):
            batch_sampler.set_epoch(epoch)
        self.start_step = start_step

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Batch]:
        for step, item in enumerate(self.loader):
            if step >= self.start_step:
                yield Batch.of(item).to(self.device)


class DataLoaderEval:
    """The validation side: `(images, targets)` on `device`."""

    def __init__(self, loader: Iterable[Any], device: torch.device) -> None:
        self.loader = loader
        self.device = device

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for item in self.loader:
            batch = Batch.of(item)
            yield (
                batch.images.to(self.device, non_blocking=True),
                batch.targets.to(self.device, non_blocking=True),
            )
