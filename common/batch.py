"""What one training step receives: a small structure the data path fills, whatever the path
(a leaf module: the data path fills it, the methods read it, neither imports the other).

`Batch.images` (float, normalised, on the training device) and `Batch.targets` (int64) always;
`Batch.indices`, each sample's position in the training set (int64), from every built-in
loader (the device-resident and the DataLoader path alike) and from a user's DataLoader that
yields `(images, targets, indices)` (wrap its data set in `IndexedDataset`); `extras` holds
anything else a data path adds. A method states the fields it needs in
`Distiller.batch_fields` (e.g. CRD's memory bank needs `indices`); the engine checks them once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from common.errors import DataError

OPTIONAL_FIELDS = ("indices",)


@dataclass
class Batch:
    """One step's images, targets, sample indices and room for more."""

    images: Tensor
    targets: Tensor
    indices: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)
    # Every process's number of images in this step (host integers; None = all equal): what a
    # method gathering rows across processes needs for the uneven partial last batch.
    rank_sizes: tuple[int, ...] | None = None

    @property
    def size(self) -> int:
        """The number of samples (host metadata: reading it never waits on the device)."""
        return self.images.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        """`images, targets = batch`, like the pairs a plain DataLoader yields."""
        return iter((self.images, self.targets))

    def to(self, device: torch.device, non_blocking: bool = True) -> Batch:
        """The batch on `device` (tensors already there are not copied)."""

        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return Batch(
            move(self.images),
            move(self.targets),
            move(self.indices),
            {k: move(v) for k, v in self.extras.items()},
            self.rank_sizes,
        )

    def has(self, name: str) -> bool:
        """Whether the field `name` (`indices` or an extra) is filled."""
        if name in OPTIONAL_FIELDS:
            return getattr(self, name) is not None
        return name in self.extras

    @classmethod
    def of(cls, item: Any) -> Batch:
        """A Batch from what a DataLoader yields: a Batch, `(images, targets[, indices])`, or
        a mapping with `images`, `targets` (and `indices`; other keys become extras)."""
        if isinstance(item, Batch):
            return item
        if isinstance(item, Mapping):
            rest = {k: v for k, v in item.items() if k not in ("images", "targets", "indices")}
            try:
                return cls(item["images"], item["targets"], item.get("indices"), rest)
            except KeyError:
                raise DataError(
                    f"a batch mapping needs 'images' and 'targets', got keys {sorted(item)}"
                ) from None
        if isinstance(item, (tuple, list)) and len(item) in (2, 3):
            return cls(*item)
        raise DataError(
            "a DataLoader batch must be (images, targets), (images, targets, indices) or a "
            f"mapping with 'images' and 'targets'; got {type(item).__name__}"
            + (f" of length {len(item)}" if isinstance(item, Sequence) else "")
        )


class IndexedDataset(Dataset):
    """`dataset` whose items are `(image, target, index)`: gives a DataLoader the sample
    indices a method such as CRD needs."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        image, target = self.dataset[index][:2]
        return image, target, index

    def __getattr__(self, name: str) -> Any:  # classes, targets, ... of the wrapped data set
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
