"""ImageNet-style folder trees: large images via DataLoader, small ones decoded and cached."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.config.schema import DataConfig
from common.data import DataError, build_data
from common.data.decoded_cache import cache_entry
from common.data.device_loader import DeviceTrainLoader
from common.data.image_files import UnreadableImageError, original_message
from common.data.large_images import DeviceBatches, ShardedEpochSampler

CLASSES = ["n01", "n02", "n03"]


def write_tree(root: Path, size: int, per_class: dict[str, int], ext: str = "JPEG") -> None:
    rng = np.random.default_rng(0)
    for split, count in per_class.items():
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)
                mode = "L" if i == 0 else "RGB"  # one greyscale image per class
                Image.fromarray(pixels).convert(mode).save(folder / f"{name}_{i}.{ext}")


@pytest.fixture
def imagenet_root(tmp_path: Path) -> Path:
    write_tree(tmp_path, 96, {"train": 6, "val": 3})
    return tmp_path


@pytest.mark.parametrize("workers", [0, 2])
def test_large_images_use_a_sharded_dataloader(imagenet_root: Path, workers: int) -> None:
    cfg = DataConfig(
        name="imagenet", root=str(imagenet_root), image_size=32, num_workers=workers,
        val_batch_size=4, randaugment=True,
    )  # fmt: skip
    bundles = [
        build_data(cfg, batch_size=4, device="cpu", seed=0, rank=r, world_size=2) for r in (0, 1)
    ]
    spec = bundles[0].spec
    assert (spec.num_classes, spec.image_size, spec.train_size, spec.val_size) == (3, 32, 18, 9)
    assert spec.class_names == CLASSES and spec.mean == (0.485, 0.456, 0.406)
    for bundle in bundles:
        assert isinstance(bundle.train, DeviceBatches)
        bundle.train.set_epoch(1)
        batches = list(bundle.train)
        assert len(batches) == len(bundle.train) == 18 // 4
        for x, y in batches:
            assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    val_targets = [torch.cat([y for _, y in bundle.val]) for bundle in bundles]
    assert sorted(torch.cat(val_targets).tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_sharded_sampler_matches_the_global_order() -> None:
    """A batch sampler: one list a step; 52 at batch 8 is 6 full steps and a tail of 4."""
    samplers = [
        ShardedEpochSampler(52, 8, seed=1, rank=r, world_size=2, drop_last=False) for r in range(2)
    ]
    single = ShardedEpochSampler(52, 8, seed=1, rank=0, world_size=1, drop_last=False)
    for sampler in (*samplers, single):
        sampler.set_epoch(2)
    parts = [list(s) for s in samplers]
    whole = list(single)
    assert len(whole) == len(single) == 7 and len(parts[0]) == len(samplers[0]) == 7
    assert [len(b) for b in whole] == [8] * 6 + [4] and [len(b) for b in parts[1]] == [4] * 6 + [2]
    for step in range(7):
        assert parts[0][step] + parts[1][step] == whole[step]
    assert sorted(i for b in whole for i in b) == list(range(52))
    assert not {i for b in parts[0] for i in b} & {i for b in parts[1] for i in b}
    dropping = ShardedEpochSampler(52, 8, seed=1, rank=0, world_size=1, drop_last=True)
    dropping.set_epoch(2)
    assert list(dropping) == whole[:6]


def test_small_image_folder_is_device_resident_and_cached(tmp_path: Path) -> None:
    write_tree(tmp_path / "data", 16, {"train": 4, "val": 2}, ext="png")
    cache = tmp_path / "cache"
    cfg = DataConfig(name="imagefolder", root=str(tmp_path / "data"), cache_dir=str(cache))
    bundle = build_data(cfg, batch_size=4, device="cpu", seed=0)
    assert isinstance(bundle.train, DeviceTrainLoader)
    assert (bundle.spec.image_size, bundle.spec.train_size, bundle.spec.val_size) == (16, 12, 6)
    assert bundle.train.padding == 2  # image_size // 8
    entries = sorted(p.name for p in (cache / "decoded").iterdir())
    assert len(entries) == 2 and all(not name.startswith(".") for name in entries)
    # a second build reads the same entries; a changed file makes a new one
    build_data(cfg, batch_size=4, device="cpu", seed=0)
    assert sorted(p.name for p in (cache / "decoded").iterdir()) == entries
    changed = tmp_path / "data" / "train" / "n01" / "n01_1.png"
    Image.fromarray(np.zeros((16, 24, 3), np.uint8)).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    build_data(cfg, batch_size=4, device="cpu", seed=0)
    assert len(list((cache / "decoded").iterdir())) == 3


def test_decoded_pixels_match_pil(tmp_path: Path) -> None:
    write_tree(tmp_path / "data", 16, {"train": 2, "val": 1}, ext="png")
    cfg = DataConfig(name="imagefolder", root=str(tmp_path / "data"), cache_dir=str(tmp_path))
    bundle = build_data(cfg, batch_size=2, device="cpu", seed=0)
    images = bundle.train.images
    # 16x24 files are resized to 16x16 (the first file's width), greyscale becomes RGB
    first = Image.open(tmp_path / "data" / "train" / "n01" / "n01_0.png").convert("RGB")
    expected = np.asarray(first.resize((16, 16), Image.Resampling.BILINEAR))
    assert torch.equal(images[0], torch.from_numpy(expected.copy()).permute(2, 0, 1))


def test_missing_val_folder_is_a_data_error(tmp_path: Path) -> None:
    write_tree(tmp_path, 96, {"train": 1})
    with pytest.raises(DataError, match="val"):
        build_data(
            DataConfig(name="imagenet", root=str(tmp_path)), batch_size=1, device="cpu", seed=0
        )


def test_cache_entry_depends_on_key(tmp_path: Path) -> None:
    first = cache_entry(tmp_path, "x", {"root": "/a", "count": 1})
    assert first == cache_entry(tmp_path, "x", {"count": 1, "root": "/a"})
    assert first != cache_entry(tmp_path, "x", {"root": "/a", "count": 2})


def test_sharded_sampler_resumes_mid_epoch() -> None:
    sampler = ShardedEpochSampler(50, 8, seed=1, rank=1, world_size=2)
    sampler.set_epoch(4)
    full = list(sampler)
    sampler.set_epoch(4, start_step=2)
    assert list(sampler) == full[2:] and len(sampler) == len(full) - 2


@pytest.mark.parametrize(("size", "workers"), [(16, 0), (96, 0), (96, 1)])
def test_a_corrupt_image_is_named_in_one_line(tmp_path: Path, size: int, workers: int) -> None:
    """Small trees are decoded at load time, large ones in DataLoader workers: either way the
    error is one line naming the file (a worker's traceback text does not reach the message)."""
    write_tree(tmp_path, size, {"train": 2, "val": 1})
    bad = tmp_path / "train" / CLASSES[1] / "zz_broken.JPEG"
    bad.write_bytes(b"\xff\xd8 not really a JPEG" * 50)
    cfg = DataConfig(
        name="imagefolder", root=str(tmp_path), image_size=32 if size > 64 else 0,
        num_workers=workers, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    with pytest.raises(UnreadableImageError) as error:
        bundle = build_data(cfg, batch_size=2, device="cpu", seed=0)
        bundle.train.set_epoch(0)
        for _ in bundle.train:
            pass
    message = str(error.value)
    assert str(bad) in message and "\n" not in message and "Traceback" not in message
    assert isinstance(error.value, DataError)


def test_original_message_is_recovered_from_a_worker_traceback() -> None:
    text = (
        "Caught UnreadableImageError in DataLoader worker process 0.\nOriginal Traceback "
        '(most recent call last):\n  File "x.py", line 1, in f\n    raise unreadable()\n'
        "common.data.image_files.UnreadableImageError: cannot read image file /d/a.jpg (x)\n"
    )
    assert str(UnreadableImageError(text)) == "cannot read image file /d/a.jpg (x)"
    assert original_message("plain", "UnreadableImageError") == "plain"


def test_an_empty_class_folder_of_large_images_is_named(tmp_path: Path) -> None:
    write_tree(tmp_path, 96, {"train": 2, "val": 1})
    (tmp_path / "train" / "n04").mkdir()
    cfg = DataConfig(name="imagenet", root=str(tmp_path), image_size=32, num_workers=0)
    with pytest.raises(DataError, match=r"n04.*every class folder needs at least one image"):
        build_data(cfg, batch_size=2, device="cpu", seed=0)
