"""Tiny-ImageNet-200 (Le & Yang 2015): 200 classes, 100,000 train / 10,000 val, 64x64 RGB.

Official layout: `tiny-imagenet-200/wnids.txt`, `train/<wnid>/images/*.JPEG`,
`val/images/*.JPEG` with labels in `val/val_annotations.txt` (file, wnid, box). Labels index
the SORTED wnids (the order of torchvision's ImageFolder on train/). Class names are the wnids.
Val images keep the order of val_annotations.txt. Greyscale files are converted to RGB.
"""

from __future__ import annotations

import os
from pathlib import Path

from common.data.arrays import ImageArrays
from common.data.roots import data_error
from common.data.small_folder import decode_split

FOLDER = "tiny-imagenet-200"


def find_tiny_imagenet(root: Path) -> Path | None:
    """`root/tiny-imagenet-200` or `root` itself when it has the official layout."""
    for candidate in (root / FOLDER, root):
        needed = [candidate / "wnids.txt", candidate / "val" / "val_annotations.txt"]
        if all(p.is_file() for p in needed) and (candidate / "train").is_dir():
            return candidate
    return None


def read_wnids(folder: Path) -> list[str]:
    """The 200 class ids, sorted."""
    lines = (folder / "wnids.txt").read_text().splitlines()
    return sorted(line.strip() for line in lines if line.strip())


def read_val_annotations(folder: Path) -> list[tuple[str, str]]:
    """(file name, wnid) of each val image, in the annotation file's order."""
    lines = (folder / "val" / "val_annotations.txt").read_text().splitlines()
    rows = [line.split("\t") for line in lines]
    return [(row[0], row[1]) for row in rows if len(row) >= 2]


def train_files(folder: Path, wnids: list[str]) -> tuple[list[str], list[int]]:
    """Sorted train files of each class and their labels."""
    files: list[str] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        images = os.path.join(folder, "train", wnid, "images")
        if not os.path.isdir(images):
            raise data_error("tiny_imagenet", folder.resolve(), f"no folder {images}")
        names = sorted(n for n in os.listdir(images) if n.upper().endswith(".JPEG"))
        found = [os.path.join(images, n) for n in names]
        files.extend(found)
        labels.extend([label] * len(found))
    return files, labels


def load_tiny_imagenet(
    root: Path, *, cache_dir: Path, size: int = 0
) -> tuple[ImageArrays, ImageArrays]:
    """(train, val) at 64x64, or resized once to `size` (e.g. 32) when given."""
    folder = find_tiny_imagenet(root)
    if folder is None:
        raise data_error("tiny_imagenet", root.resolve(), "no Tiny-ImageNet layout found")
    wnids = read_wnids(folder)
    index = {wnid: i for i, wnid in enumerate(wnids)}
    annotations = read_val_annotations(folder)
    unknown = sorted({wnid for _, wnid in annotations} - index.keys())
    if unknown:
        raise data_error("tiny_imagenet", folder, f"val labels not in wnids.txt: {unknown[:3]}")
    wnid_file = str(folder / "wnids.txt")
    annotation_file = str(folder / "val" / "val_annotations.txt")
    files, labels = train_files(folder, wnids)
    train = decode_split(
        files,
        labels,
        wnids,
        tag="tiny_imagenet-train",
        key_root=folder,
        cache_dir=cache_dir,
        size=size,
        extra_files=(wnid_file,),
    )
    val = decode_split(
        [os.path.join(folder, "val", "images", name) for name, _ in annotations],
        [index[wnid] for _, wnid in annotations],
        wnids,
        tag="tiny_imagenet-val",
        key_root=folder,
        cache_dir=cache_dir,
        size=size,
        extra_files=(wnid_file, annotation_file),
    )
    return train, val
