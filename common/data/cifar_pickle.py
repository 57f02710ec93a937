"""Reader for the CIFAR-10/100 "python version" pickles, the format torchvision downloads.

Layout (Krizhevsky 2009; torchvision `datasets.CIFAR10` / `CIFAR100`):
`cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}` with keys `data` (uint8
(N, 3072), channel-major 3x32x32), `labels` and `label_names`;
`cifar-100-python/{train, test, meta}` with `data`, `fine_labels` and `fine_label_names`.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.data.arrays import ImageArrays
from common.errors import DataError


@dataclass(frozen=True)
class PickleLayout:
    """Where one CIFAR variant keeps its files and keys."""

    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str


PICKLE_LAYOUTS = {
    "cifar10": PickleLayout(
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        meta_file="batches.meta",
        label_key="labels",
        names_key="label_names",
    ),
    "cifar100": PickleLayout(
        folder="cifar-100-python",
        train_files=("train",),
        test_files=("test",),
        meta_file="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
    ),
}


def find_pickle_folder(root: Path, name: str) -> Path | None:
    """`root/<folder>` or `root` itself when it holds the variant's pickles, else None."""
    layout = PICKLE_LAYOUTS[name]
    for candidate in (root / layout.folder, root):
        needed = (*layout.train_files, *layout.test_files, layout.meta_file)
        if all((candidate / f).is_file() for f in needed):
            return candidate
    return None


def load_cifar_pickles(folder: Path, name: str) -> tuple[ImageArrays, ImageArrays]:
    """The (train, test) splits of `name` ('cifar10' or 'cifar100') from a pickle folder."""
    layout = PICKLE_LAYOUTS[name]
    class_names = [_text(n) for n in _unpickle(folder / layout.meta_file)[layout.names_key]]
    splits = []
    for files in (layout.train_files, layout.test_files):
        batches = [_unpickle(folder / f) for f in files]
        data = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
        labels = np.concatenate([np.asarray(b[layout.label_key], dtype=np.int64) for b in batches])
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
            raise DataError(f"{name}: malformed pickle batch in {folder}: data {data.shape}")
        images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
        splits.append(ImageArrays(images, torch.from_numpy(labels), class_names))
    return splits[0], splits[1]


def _unpickle(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"CIFAR pickle file missing: {path}")
    try:
        with open(path, "rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
    except Exception as err:  # truncated or foreign file: UnpicklingError, EOFError, ...
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DataError(
            f"CIFAR pickle file {path} cannot be read ({reason}); replace it with the "
            "original file (or delete the folder and use data.download=true)"
        ) from None
    if not isinstance(entry, dict):
        raise DataError(f"CIFAR pickle file {path} holds a {type(entry).__name__}, not a batch")
    return {_text(k): v for k, v in entry.items()}


def _text(value: str | bytes) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else value
