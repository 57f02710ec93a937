"""`build_data`: from a `DataConfig` to a `DataBundle` of device-ready train/val loaders.

Small-image data sets (CIFAR, Tiny-ImageNet, synthetic, folder trees of <= 64 px images) live
on the training device as one uint8 tensor and are augmented there (`device_loader`); ImageNet-
style trees go through a torchvision DataLoader (`large_images`).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import torch
from torch.utils.data import Subset

from common.config.schema import DataConfig
from common.data.arrays import ImageArrays, subset_indices
from common.data.cifar import load_cifar
from common.data.decoded_cache import default_cache_dir
from common.data.device_loader import DeviceEvalLoader, DeviceTrainLoader
from common.data.fgvr import FGVR_DATASETS, fgvr_splits
from common.data.file_tree import class_folders, is_image_file
from common.data.jpeg_decode import image_size_of
from common.data.large_images import (
    DeviceBatches,
    ShardedEpochSampler,
    ShardSampler,
    image_folder_splits,
    make_loader,
)
from common.data.normalisation import IMAGENET_STATS, NORMALISATION
from common.data.roots import data_error, resolve_root
from common.data.sharding import check_rank
from common.data.small_folder import load_class_tree
from common.data.spec import DataBundle, DataSpec
from common.data.synthetic import make_synthetic, pixel_stats
from common.data.tiny_imagenet import load_tiny_imagenet
from common.errors import DataError

DATASETS = ("cifar10", "cifar100", "tiny_imagenet", "imagenet", "imagefolder", "synthetic")
DATASETS += FGVR_DATASETS  # cub200, stanford_dogs, mit67, stanford40 (R2KD Table IV)
SMALL_IMAGE_LIMIT = 64  # folder images up to this side are held on the device
DEFAULT_LARGE_SIZE = 224


def build_data(
    cfg: DataConfig,
    *,
    batch_size: int,
    device: torch.device | str,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> DataBundle:
    """The train and val loaders of `cfg` for process `rank` of `world_size`.

    `batch_size` is global; each process gets `batch_size // world_size` (a ValueError unless it
    divides: a run refuses that before reading any data, `common.engine.run_builder`). Raises
    `DataError` when the data cannot be found or read.
    """
    device = torch.device(device)
    check_rank(rank, world_size)
    check_name(cfg.name)
    if cfg.name in ("imagenet", *FGVR_DATASETS) or (
        cfg.name == "imagefolder" and not has_small_images(folder_root(cfg))
    ):
        return build_large(cfg, batch_size, device, seed, rank, world_size)
    return build_small(cfg, batch_size, device, seed, rank, world_size)


def check_name(name: str) -> None:
    """Refuse a `data.name` that is not one of DATASETS, naming the nearest one."""
    if name not in DATASETS:
        guess = difflib.get_close_matches(name, DATASETS, n=1, cutoff=0.5)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        raise DataError(
            f"unknown data set data.name={name!r}{hint} (choose one of {', '.join(DATASETS)})"
        )


def folder_root(cfg: DataConfig) -> Path:
    """The root of an imagenet/imagefolder data set, checked to have `train/`."""
    root = resolve_root(cfg.name, cfg.root)
    if not (root / "train").is_dir() or not class_folders(root / "train"):
        raise data_error(cfg.name, root.resolve(), "no train/<class>/ folders found")
    if not any((root / split).is_dir() for split in ("val", "test")):
        raise data_error(cfg.name, root.resolve(), "no val/ folder found")
    return root


def has_small_images(root: Path) -> bool:
    """Whether the first training image is at most SMALL_IMAGE_LIMIT pixels on each side."""
    for folder, _, names in os.walk(root / "train"):
        for name in sorted(names):
            if is_image_file(name):
                return max(image_size_of(os.path.join(folder, name))) <= SMALL_IMAGE_LIMIT
    raise data_error("imagefolder", root.resolve(), "no image files below train/")


def load_small_splits(
    cfg: DataConfig,
) -> tuple[ImageArrays, ImageArrays, tuple[tuple[float, ...], tuple[float, ...]]]:
    """(train, val, (mean, std)) of a small-image data set, resized to `cfg.image_size`."""
    cache_dir = default_cache_dir(cfg.cache_dir)
    if cfg.name == "synthetic":
        train, val = make_synthetic(cfg.synthetic)
    elif cfg.name in ("cifar10", "cifar100"):
        root = resolve_root(cfg.name, cfg.root, cfg.download)
        train, val = load_cifar(cfg.name, root, download=cfg.download, cache_dir=cache_dir)
    elif cfg.name == "tiny_imagenet":
        root = resolve_root(cfg.name, cfg.root)
        train, val = load_tiny_imagenet(root, cache_dir=cache_dir, size=cfg.image_size)
    else:
        train, val = load_small_folder(folder_root(cfg), cache_dir, cfg.image_size)
    if cfg.image_size:
        train, val = train.resized(cfg.image_size), val.resized(cfg.image_size)
    stats = pixel_stats(train.images) if cfg.name == "synthetic" else NORMALISATION[cfg.name]
    return train.subset(cfg.subset), val.subset(cfg.val_subset), stats


def load_small_folder(root: Path, cache_dir: Path, size: int) -> tuple[ImageArrays, ImageArrays]:
    """An ImageFolder tree of small images (`train/` and `val/` or `test/`), decoded once."""
    val_dir = root / "val" if (root / "val").is_dir() else root / "test"
    train = load_class_tree(root / "train", tag="imagefolder-train", cache_dir=cache_dir, size=size)
    val = load_class_tree(val_dir, tag="imagefolder-val", cache_dir=cache_dir, size=size)
    if train.class_names != val.class_names:
        raise data_error("imagefolder", root.resolve(), "train/ and val/ class folders differ")
    return train, val


def build_small(
    cfg: DataConfig, batch_size: int, device: torch.device, seed: int, rank: int, world_size: int
) -> DataBundle:
    """Device-resident loaders (see `device_loader`)."""
    train, val, (mean, std) = load_small_splits(cfg)
    check_enough(cfg.name, len(train), batch_size)
    size = train.image_size
    padding = cfg.crop_padding if cfg.crop_padding >= 0 else size // 8
    train_loader = DeviceTrainLoader(
        train.images.to(device),
        train.labels.to(device),
        global_batch=batch_size,
        seed=seed,
        padding=padding,
        flip=cfg.flip,
        mean=mean,
        std=std,
        rank=rank,
        world_size=world_size,
        drop_last=cfg.drop_last,
    )
    val_loader = DeviceEvalLoader(
        val.images.to(device),
        val.labels.to(device),
        batch_size=max(1, cfg.val_batch_size // world_size),
        mean=mean,
        std=std,
        rank=rank,
        world_size=world_size,
    )
    spec = DataSpec(
        num_classes=len(train.class_names),
        image_size=size,
        mean=tuple(mean),
        std=tuple(std),
        train_size=len(train),
        val_size=len(val),
        class_names=list(train.class_names),
        train_targets=train.labels.cpu(),
    )
    return DataBundle(spec, train_loader, val_loader, cfg, batch_size)


def build_large(
    cfg: DataConfig, batch_size: int, device: torch.device, seed: int, rank: int, world_size: int
) -> DataBundle:
    """DataLoader-based loaders for large images (see `large_images`)."""
    size = cfg.image_size or DEFAULT_LARGE_SIZE
    if cfg.name in FGVR_DATASETS:  # official split files, not train/ and val/ folders
        train_set, val_set = fgvr_splits(cfg.name, cfg.root, size, cfg.flip, cfg.randaugment)
    else:
        root = folder_root(cfg)
        train_set, val_set = image_folder_splits(root, size, cfg.flip, cfg.randaugment)
        if train_set.classes != val_set.classes:
            raise data_error(cfg.name, root.resolve(), "train/ and val/ class folders differ")
    classes = list(train_set.classes)
    train_data = keep_subset(train_set, cfg.subset)
    val_data = keep_subset(val_set, cfg.val_subset)
    check_enough(cfg.name, len(train_data), batch_size)
    mean, std = NORMALISATION.get(cfg.name, IMAGENET_STATS)  # FGVR: ImageNet statistics
    common = {"num_workers": cfg.num_workers, "device": device, "seed": seed, "rank": rank}
    train_loader = make_loader(
        train_data,
        batch_sampler=ShardedEpochSampler(
            len(train_data), batch_size, seed, rank, world_size, cfg.drop_last
        ),
        **common,
    )
    val_loader = make_loader(
        val_data,
        sampler=ShardSampler(len(val_data), rank, world_size),
        batch_size=max(1, cfg.val_batch_size // world_size),
        **common,
    )
    spec = DataSpec(
        num_classes=len(classes),
        image_size=size,
        mean=mean,
        std=std,
        train_size=len(train_data),
        val_size=len(val_data),
        class_names=classes,
        train_targets=dataset_targets(train_data),
    )
    return DataBundle(
        spec=spec,
        train=DeviceBatches(train_loader, device, mean, std),
        val=DeviceBatches(val_loader, device, mean, std),
        config=cfg,
        batch_size=batch_size,
    )


def dataset_targets(dataset) -> torch.Tensor | None:
    """The labels of a (subset of an) ImageFolder-like data set, in its order, without
    reading an image; None when the data set does not list them."""
    if isinstance(dataset, Subset):
        inner = dataset_targets(dataset.dataset)
        return None if inner is None else inner[torch.as_tensor(dataset.indices)]
    targets = getattr(dataset, "targets", None)
    return None if targets is None else torch.as_tensor(targets, dtype=torch.long)


def keep_subset(dataset, count: int):
    """The fixed-shuffle subset of `dataset` (see `arrays.subset_indices`)."""
    keep = subset_indices(len(dataset), count)
    return dataset if keep is None else Subset(dataset, keep.tolist())


def check_enough(name: str, train_size: int, batch_size: int) -> None:
    """Refuse a training set smaller than one global batch (an epoch would have no step)."""
    if train_size < batch_size:
        raise DataError(
            f"{name}: the training set has {train_size} images, fewer than one global batch of "
            f"{batch_size}; lower train.batch_size or raise data.subset"
        )
