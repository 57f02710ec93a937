"""The `data` benchmark: images/s of the device-resident CIFAR pipeline vs torchvision's.

Both produce the same training batches: RandomCrop(32, padding=4) + RandomHorizontalFlip +
ToTensor + Normalize, batch 128. Ours gathers, crops, flips and normalises whole batches of a
uint8 tensor held on the device (`common.data.device_loader`); the references are the usual
torchvision DataLoader (2 workers) over (a) the JPEG files (ImageFolder) and (b) PIL images
already decoded in memory. `default_root()` unpacks the shared `cifar10-jpg.tar.gz` once into
the test cache ($KD_DATA_CACHE, default ~/.cache/kdzoo/shared), as `tests/conftest.py` does.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets
from torchvision import transforms as T

from common.batch import Batch
from common.config.schema import DataConfig
from common.data import build_data
from common.data.archives import unpack_once
from common.data.cifar import find_cifar_tree
from common.data.normalisation import CIFAR10_STATS
from common.engine.distributed import check_device
from common.errors import DataError

REPO = Path(__file__).resolve().parents[2]
WARMUP_STEPS = 3


def reference_transform() -> T.Compose:
    mean, std = CIFAR10_STATS
    return T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )


class InMemoryPIL(Dataset):
    """Decoded PIL images and labels in memory, transformed per sample (no file reads)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = [Image.fromarray(x.permute(1, 2, 0).numpy()) for x in images]
        self.labels = labels.tolist()
        self.transform = reference_transform()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), self.labels[index]


def images_per_second(
    batches: Iterable, steps: int, batch_size: int, device: torch.device
) -> float:
    """Throughput over `steps` batches after WARMUP_STEPS (worker start-up excluded)."""
    iterator = iter(batches)
    for _ in range(WARMUP_STEPS):
        next(iterator)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        item = next(iterator)
        images = item.images if isinstance(item, Batch) else item[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    assert images.shape == (batch_size, 3, 32, 32)
    return steps * batch_size / (time.perf_counter() - started)


def torchvision_loader(dataset: Dataset, batch_size: int, workers: int) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True
    )


def bench_data_pipeline(
    root: str,
    steps: int = 50,
    batch_size: int = 128,
    *,
    device: str = "cpu",
    workers: int = 2,
) -> dict:
    """Images/s of ours and of torchvision's DataLoader on the CIFAR-10 tree below `root`."""
    tree = find_cifar_tree(Path(root))
    if tree is None:
        raise DataError(
            f"--root {root}: no CIFAR-10 ImageFolder tree (train/<class>/, test/<class>/) "
            "there or in its cifar10/ folder; give the folder of the unpacked cifar10-jpg archive"
        )
    target = check_device(device)
    started = time.perf_counter()
    cfg = DataConfig(name="cifar10", root=str(tree))
    bundle = build_data(cfg, batch_size=batch_size, device=target, seed=0)
    load_seconds = time.perf_counter() - started

    def ours_batches() -> Iterator[Batch]:
        for epoch in itertools.count():
            bundle.train.set_epoch(epoch)
            yield from bundle.train

    ours = images_per_second(ours_batches(), steps, batch_size, target)
    folder = datasets.ImageFolder(str(tree / "train"), transform=reference_transform())
    jpeg = images_per_second(
        torchvision_loader(folder, batch_size, workers), steps, batch_size, torch.device("cpu")
    )
    memory = InMemoryPIL(bundle.train.images.cpu(), bundle.train.labels.cpu())
    pil = images_per_second(
        torchvision_loader(memory, batch_size, workers), steps, batch_size, torch.device("cpu")
    )
    return {
        "device": str(target),
        "batch_size": batch_size,
        "steps": steps,
        "torchvision_workers": workers,
        "ours_load_seconds": round(load_seconds, 2),
        "ours_images_per_s": round(ours),
        "torchvision_jpeg_images_per_s": round(jpeg),
        "torchvision_pil_memory_images_per_s": round(pil),
        "speedup_vs_jpeg": round(ours / jpeg, 1),
        "speedup_vs_pil_memory": round(ours / pil, 1),
    }


def default_root() -> Path:
    """The shared CIFAR-10 archive, unpacked once into the test cache."""
    shared = Path(os.environ.get("KD_SHARED_DATA") or REPO.parent / "shared" / "data")
    cache = Path(os.environ.get("KD_DATA_CACHE") or "~/.cache/kdzoo/shared").expanduser()
    archive = shared / "cifar10-jpg.tar.gz"
    if not archive.is_file():
        raise DataError(
            f"no --root given and the shared archive {archive} is missing; give --root DIR "
            "(a CIFAR-10 JPEG tree) or set KD_SHARED_DATA to the folder holding the archive"
        )
    return unpack_once(archive, cache / "cifar10-jpg")
