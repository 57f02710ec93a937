"""The real CIFAR-10 (JPEG tree) and Tiny-ImageNet archives (fixtures in conftest.py).

The first run unpacks and decodes them (cached under $KD_DATA_CACHE); later runs read the
decoded arrays back in seconds. These tests must run in CI: a missing archive is a failure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.config.schema import DataConfig
from common.data import build_data
from common.data.arrays import ImageArrays, resize_uint8
from common.data.tiny_imagenet import load_tiny_imagenet

CIFAR10_TRAIN_MEAN = (0.4913, 0.4821, 0.4465)  # of this JPEG re-encoding, see the data README


def test_cifar10_jpeg_tree(cifar10_jpg_root: Path, decode_cache_dir: Path) -> None:
    cfg = DataConfig(name="cifar10", root=str(cifar10_jpg_root), cache_dir=str(decode_cache_dir))
    bundle = build_data(cfg, batch_size=128, device="cpu", seed=0)
    spec = bundle.spec
    assert (spec.num_classes, spec.image_size, spec.train_size, spec.val_size) == (
        10, 32, 50_000, 10_000,
    )  # fmt: skip
    assert spec.class_names[0] == "airplane" and spec.class_names[-1] == "truck"
    images, labels = bundle.train.images, bundle.train.labels
    assert torch.bincount(labels).tolist() == [5000] * 10
    assert torch.bincount(bundle.val.labels).tolist() == [1000] * 10
    mean = images.to(torch.float64).mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor(CIFAR10_TRAIN_MEAN, dtype=torch.float64), atol=5e-4)
    bundle.train.set_epoch(0)
    x, y = next(iter(bundle.train))
    assert x.shape == (128, 3, 32, 32) and y.shape == (128,)
    assert len(bundle.train) == 391  # 390 full batches + the partial last one (data.drop_last)


@pytest.fixture(scope="module")
def tiny_64(tiny_imagenet_root: Path, decode_cache_dir: Path) -> tuple[ImageArrays, ImageArrays]:
    return load_tiny_imagenet(tiny_imagenet_root, cache_dir=decode_cache_dir)


def pil_rgb(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)


def test_tiny_imagenet_sizes_and_classes(tiny_64, tiny_imagenet_root: Path) -> None:
    train, val = tiny_64
    wnids = (tiny_imagenet_root / "tiny-imagenet-200" / "wnids.txt").read_text().split()
    assert train.class_names == sorted(wnids) and len(wnids) == 200
    assert train.images.shape == (100_000, 3, 64, 64) and val.images.shape == (10_000, 3, 64, 64)
    assert torch.bincount(train.labels).tolist() == [500] * 200
    assert torch.bincount(val.labels).tolist() == [50] * 200


def test_tiny_imagenet_val_labels_and_pixels(tiny_64, tiny_imagenet_root: Path) -> None:
    folder = tiny_imagenet_root / "tiny-imagenet-200"
    _, val = tiny_64
    wnids = sorted((folder / "wnids.txt").read_text().split())
    rows = [
        line.split("\t") for line in (folder / "val/val_annotations.txt").read_text().splitlines()
    ]
    truth = {name: wnids.index(wnid) for name, wnid, *_ in rows}
    position = {name: i for i, name in enumerate(val.files)}
    for name in ("val_0.JPEG", "val_1.JPEG", "val_777.JPEG", "val_5000.JPEG", "val_9999.JPEG"):
        i = position[f"val/images/{name}"]
        assert int(val.labels[i]) == truth[name], name
        assert torch.equal(val.images[i], pil_rgb(folder / "val" / "images" / name)), name


def test_tiny_imagenet_train_pixels_and_greyscale(tiny_64, tiny_imagenet_root: Path) -> None:
    folder = tiny_imagenet_root / "tiny-imagenet-200"
    train, _ = tiny_64
    grey = (train.images[:, 0] == train.images[:, 1]) & (train.images[:, 1] == train.images[:, 2])
    grey_indices = grey.flatten(1).all(1).nonzero().flatten()
    assert len(grey_indices) > 0
    with Image.open(folder / train.files[int(grey_indices[0])]) as image:
        assert image.mode == "L"  # a greyscale file, converted to RGB
    for i in [0, 12_345, 99_999, int(grey_indices[0])]:
        path = folder / train.files[i]
        assert path.parent.parent.name == train.class_names[int(train.labels[i])]
        assert torch.equal(train.images[i], pil_rgb(path)), train.files[i]


@pytest.mark.parametrize("size", [64, 32])
def test_tiny_imagenet_build_data(size: int, tiny_64, tiny_imagenet_root, decode_cache_dir) -> None:
    cfg = DataConfig(
        name="tiny_imagenet",
        root=str(tiny_imagenet_root),
        cache_dir=str(decode_cache_dir),
        image_size=size if size == 32 else 0,
    )
    bundle = build_data(cfg, batch_size=100, device="cpu", seed=0)
    spec = bundle.spec
    assert (spec.num_classes, spec.image_size, spec.train_size, spec.val_size) == (
        200, size, 100_000, 10_000,
    )  # fmt: skip
    assert spec.mean == (0.485, 0.456, 0.406) and bundle.train.padding == size // 8
    bundle.train.set_epoch(0)
    x, _ = next(iter(bundle.train))
    assert x.shape == (100, 3, size, size)
    expected = tiny_64[1].images[:64]
    if size == 32:
        expected = resize_uint8(expected, 32)
    assert torch.equal(bundle.val.images[:64], expected)
