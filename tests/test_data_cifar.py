"""CIFAR loaders on small files written in torchvision's exact formats, and root errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.config.schema import DataConfig
from common.data import DataError, build_data
from common.data.cifar import load_cifar

CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def write_pickle(path: Path, entry: dict) -> None:
    with open(path, "wb") as handle:
        pickle.dump(entry, handle, protocol=2)


def write_cifar10_pickles(root: Path, per_batch: int = 6) -> dict[str, np.ndarray]:
    """`cifar-10-batches-py/` with 5 train batches and a test batch; returns what was written."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written: dict[str, list] = {"train_data": [], "train_labels": []}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        write_pickle(folder / name, {"batch_label": name, "data": data, "labels": labels})
        if name == "test_batch":
            written["test_data"], written["test_labels"] = data, np.array(labels)
        else:
            written["train_data"].append(data)
            written["train_labels"].extend(labels)
    write_pickle(folder / "batches.meta", {"label_names": CIFAR10_NAMES, "num_vis": 3072})
    written["train_data"] = np.concatenate(written["train_data"])
    written["train_labels"] = np.array(written["train_labels"])
    return written


def write_cifar100_pickles(root: Path, train: int = 40, test: int = 20) -> dict[str, np.ndarray]:
    """`cifar-100-python/{train,test,meta}`; returns what was written."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    written = {}
    for split, count in (("train", train), ("test", test)):
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, count)]
        coarse = [v // 5 for v in fine]
        entry = {"filenames": [f"{i}.png" for i in range(count)], "batch_label": split}
        write_pickle(
            folder / split, {**entry, "fine_labels": fine, "coarse_labels": coarse, "data": data}
        )
        written[f"{split}_data"], written[f"{split}_labels"] = data, np.array(fine)
    names = [f"fine_{i:02d}" for i in range(100)]
    write_pickle(folder / "meta", {"fine_label_names": names, "coarse_label_names": names[:20]})
    return written


def write_class_tree(root: Path, classes: list[str], per_class: int, size: int = 32) -> None:
    """PNG (lossless) images `root/{train,test}/<class>/NNNN.png`, pixel value = class index."""
    for split in ("train", "test"):
        for index, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.full((size, size, 3), index * 10 + i, dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")


def test_cifar10_pickles_load_exactly(tmp_path: Path) -> None:
    written = write_cifar10_pickles(tmp_path)
    train, test = load_cifar("cifar10", tmp_path, download=False, cache_dir=tmp_path / "cache")
    assert train.images.shape == (30, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (6, 3, 32, 32)
    assert torch.equal(train.images.flatten(1), torch.from_numpy(written["train_data"]))
    assert torch.equal(train.labels, torch.from_numpy(written["train_labels"]))
    assert torch.equal(test.labels, torch.from_numpy(written["test_labels"]))
    assert train.labels.dtype == torch.int64
    assert train.class_names == CIFAR10_NAMES


def test_cifar100_pickles_through_build_data(tmp_path: Path) -> None:
    written = write_cifar100_pickles(tmp_path)
    cfg = DataConfig(name="cifar100", root=str(tmp_path), val_batch_size=8)
    bundle = build_data(cfg, batch_size=8, device="cpu", seed=0)
    spec = bundle.spec
    assert (spec.num_classes, spec.image_size, spec.train_size, spec.val_size) == (100, 32, 40, 20)
    assert spec.class_names[:2] == ["fine_00", "fine_01"]
    assert spec.mean == (0.5071, 0.4867, 0.4408) and spec.std == (0.2675, 0.2565, 0.2761)
    images = torch.cat([x for x, _ in bundle.val])
    labels = torch.cat([y for _, y in bundle.val])
    raw = torch.from_numpy(written["test_data"]).view(-1, 3, 32, 32).float() / 255
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    assert torch.allclose(images, (raw - mean) / std, atol=1e-6)
    assert torch.equal(labels, torch.from_numpy(written["test_labels"]))
    assert len(bundle.train) == 5


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_folder_tree_is_detected(tmp_path: Path, nested: bool) -> None:
    tree = tmp_path / "cifar10" if nested else tmp_path
    write_class_tree(tree, CIFAR10_NAMES, per_class=2)
    cfg = DataConfig(name="cifar10", root=str(tmp_path), cache_dir=str(tmp_path / "cache"))
    bundle = build_data(cfg, batch_size=4, device="cpu", seed=0)
    assert bundle.spec.class_names == CIFAR10_NAMES
    assert (bundle.spec.train_size, bundle.spec.val_size) == (20, 20)
    train, _ = load_cifar("cifar10", tmp_path, download=False, cache_dir=tmp_path / "cache")
    assert train.labels.tolist() == [c for c in range(10) for _ in range(2)]
    expected = torch.tensor([c * 10 + i for c in range(10) for i in range(2)], dtype=torch.uint8)
    assert torch.equal(train.images[:, :, 0, 0], expected[:, None].expand(20, 3))
    assert (tmp_path / "cache" / "decoded").is_dir()


def test_missing_root_names_path_and_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        build_data(
            DataConfig(name="cifar10", root=str(missing)), batch_size=8, device="cpu", seed=0
        )
    message = str(info.value)
    assert str(missing) in message and "cifar10" in message
    assert "data.root" in message and "DATA_ROOT" in message and "data.download=true" in message
    assert "cifar-10-batches-py" in message  # the expected layout
    assert isinstance(info.value, ValueError)


def test_empty_root_without_env_is_a_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATA_ROOT", raising=False)
    with pytest.raises(DataError, match="DATA_ROOT is not set"):
        build_data(DataConfig(name="cifar100"), batch_size=8, device="cpu", seed=0)


def test_data_root_env_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar100_pickles(tmp_path)
    monkeypatch.setenv("DATA_ROOT", str(tmp_path))
    bundle = build_data(DataConfig(name="cifar100"), batch_size=8, device="cpu", seed=0)
    assert bundle.spec.train_size == 40


def test_wrong_layout_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "something_else").mkdir()
    for name, layout in (("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")):
        with pytest.raises(DataError) as info:
            build_data(
                DataConfig(name=name, root=str(tmp_path)), batch_size=8, device="cpu", seed=0
            )
        message = str(info.value)
        assert str(tmp_path) in message and layout in message and "data.root" in message
    with pytest.raises(DataError, match="tiny-imagenet-200"):
        cfg = DataConfig(name="tiny_imagenet", root=str(tmp_path))
        build_data(cfg, batch_size=8, device="cpu", seed=0)


def test_cifar10_tree_with_wrong_class_count_is_refused(tmp_path: Path) -> None:
    write_class_tree(tmp_path, ["a", "b", "c"], per_class=1)
    with pytest.raises(DataError, match="10 class folders"):
        load_cifar("cifar10", tmp_path, download=False, cache_dir=tmp_path / "cache")


def test_unknown_name_and_indivisible_batch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown data set"):
        build_data(DataConfig(name="mnist"), batch_size=8, device="cpu", seed=0)
    with pytest.raises(ValueError, match="not divisible"):
        build_data(DataConfig(name="synthetic"), batch_size=9, device="cpu", seed=0, world_size=2)
