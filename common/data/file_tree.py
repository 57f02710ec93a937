"""Listing class-folder image trees and fingerprinting file sets for the decode cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from common.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def is_image_file(name: str) -> bool:
    """Whether `name` has one of torchvision's image extensions (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def class_folders(split_dir: Path) -> list[str]:
    """Sorted names of the sub-folders of `split_dir` (the ImageFolder class convention)."""
    return sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir())


def list_class_tree(split_dir: Path) -> tuple[list[str], list[int], list[str]]:
    """Images below `split_dir/<class>/` (any depth), like torchvision's ImageFolder.

    Returns (files, labels, class_names): files are absolute paths sorted per class, labels the
    index of their class in the sorted class names.
    """
    classes = class_folders(split_dir)
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = []
        for folder, _, names in os.walk(split_dir / name, followlinks=True):
            found.extend(os.path.join(folder, n) for n in names if is_image_file(n))
        found.sort()
        files.extend(found)
        labels.extend([label] * len(found))
    return files, labels, classes


def fingerprint(paths: list[str]) -> str:
    """A digest of the paths with their sizes and modification times (changes when any does)."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise DataError(f"image file {path} is listed but missing; restore it") from None
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
