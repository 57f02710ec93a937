"""The four fine-grained visual recognition (FGVR) data sets of R2KD Table IV.

`data.name`: `cub200` (CUB-200-2011), `stanford_dogs`, `mit67` (MIT Indoor 67), `stanford40`
(Stanford 40 Actions), each read in its official layout with its official train/test split
(`fgvr_lists`; where it is looked for: `fgvr_layouts`). The test split is the validation set.
They go through the large-image DataLoader path of `common.data.large_images`: train
RandomResizedCrop(size) + horizontal flip, val Resize(size * 256 / 224) + CenterCrop(size),
normalised with the ImageNet mean/std (`common.data.build.build_large`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from common.data.fgvr_layouts import LAYOUTS, fgvr_error, find_fgvr_root
from common.data.fgvr_lists import READERS, Sample, SplitLists
from common.data.image_files import open_rgb
from common.data.large_images import train_transform, val_transform

FGVR_DATASETS = tuple(LAYOUTS)  # ("cub200", "stanford_dogs", "mit67", "stanford40")
MISSING_EXAMPLES = 3


class ListImageDataset(Dataset):
    """Images given as a list of (path, label), read as RGB (greyscale/CMYK/palette converted).

    Exposes `samples`, `targets` and `classes` like torchvision's ImageFolder.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        classes: Sequence[str],
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.targets = [label for _, label in self.samples]
        self.classes = list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | Image.Image, int]:
        path, label = self.samples[index]
        image = open_rgb(path)  # a file PIL cannot read is named in one line
        return (self.transform(image) if self.transform else image), label


def load_split_lists(name: str, configured_root: str) -> SplitLists:
    """The checked split lists of FGVR data set `name` (DataError naming any problem).

    Checks: both splits non-empty, no image in both, every listed image file present.
    """
    if name not in READERS:
        raise ValueError(f"{name!r} is not an FGVR data set ({', '.join(FGVR_DATASETS)})")
    folder = find_fgvr_root(name, configured_root)
    lists = READERS[name](folder, name)
    for split, samples in (("train", lists.train), ("test", lists.test)):
        if not samples:
            raise fgvr_error(name, folder.resolve(), f"the {split} split lists no image")
    both = sorted({p for p, _ in lists.train} & {p for p, _ in lists.test})
    if both:
        raise fgvr_error(
            name,
            folder.resolve(),
            f"{len(both)} image(s) are in both the train and the test split, e.g. {both[0]}",
        )
    missing = [p for p, _ in (*lists.train, *lists.test) if not os.path.isfile(p)]
    if missing:
        raise fgvr_error(
            name,
            folder.resolve(),
            f"{len(missing)} image file(s) named by the split files are missing, e.g. "
            + ", ".join(missing[:MISSING_EXAMPLES]),
        )
    return lists


def fgvr_splits(
    name: str, configured_root: str, size: int, flip: bool, randaugment: bool
) -> tuple[ListImageDataset, ListImageDataset]:
    """(train, val) data sets of `name` with the large-image train and val transforms."""
    lists = load_split_lists(name, configured_root)
    train = ListImageDataset(lists.train, lists.classes, train_transform(size, flip, randaugment))
    val = ListImageDataset(lists.test, lists.classes, val_transform(size))
    return train, val
