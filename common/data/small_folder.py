"""Small-image folder splits (CIFAR-10 JPEG tree, Tiny-ImageNet, any <= 64 px ImageFolder):
decoded once into a uint8 tensor and served from the decode cache afterwards."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from common.data.arrays import ImageArrays
from common.data.decoded_cache import cached_arrays
from common.data.file_tree import fingerprint, list_class_tree
from common.data.jpeg_decode import decode_files, image_size_of
from common.errors import DataError

LOGGER = logging.getLogger(__name__)


def decode_split(
    files: list[str],
    labels: list[int],
    class_names: list[str],
    *,
    tag: str,
    key_root: Path,
    cache_dir: Path,
    size: int = 0,
    extra_files: tuple[str, ...] = (),
) -> ImageArrays:
    """The decoded images of `files`, square at their native size.

    The native size is the shorter side of the first file; files of another size are resized
    to it (non-square ones squashed), see `jpeg_decode.decode_rgb`.

    With `size` > 0 they are then resized to `size` once (bilinear, antialiased); both the
    native and the resized arrays are cached. `extra_files` (e.g. a label file) are part of the
    fingerprint. The returned `files` are relative to `key_root`.
    """
    if not files:
        raise DataError(
            f"{tag}: no image files below {key_root.resolve()} (expected <class>/<image> "
            "files there); check data.root"
        )
    native = min(image_size_of(files[0]))
    key = {
        "root": str(key_root.resolve()),
        "tag": tag,
        "count": len(files),
        "digest": fingerprint([*files, *extra_files]),
        "labels": fingerprint_labels(labels, class_names),
    }

    def decode() -> ImageArrays:
        started = time.perf_counter()
        LOGGER.info("decoding %d images of %s once (cached under %s)", len(files), tag, cache_dir)
        images = torch.from_numpy(decode_files(files, native))
        LOGGER.info("decoded %s in %.1f s", tag, time.perf_counter() - started)
        relative = [os.path.relpath(f, key_root) for f in files]
        return ImageArrays(images, torch.tensor(labels, dtype=torch.int64), class_names, relative)

    def load_native() -> ImageArrays:
        return cached_arrays(cache_dir, f"{tag}-{native}", {**key, "size": native}, decode)

    if not size or size == native:
        return load_native()
    return cached_arrays(
        cache_dir, f"{tag}-{size}", {**key, "size": size}, lambda: load_native().resized(size)
    )


def fingerprint_labels(labels: list[int], class_names: list[str]) -> str:
    """A short digest of the label assignment, so relabelling invalidates the cache."""
    digest = hashlib.sha256(np.asarray(labels, dtype=np.int64).tobytes())
    digest.update("\0".join(class_names).encode())
    return digest.hexdigest()[:16]


def load_class_tree(split_dir: Path, *, tag: str, cache_dir: Path, size: int = 0) -> ImageArrays:
    """An ImageFolder-style split `split_dir/<class>/**/image`, decoded and cached."""
    files, labels, classes = list_class_tree(split_dir)
    return decode_split(
        files, labels, classes, tag=tag, key_root=split_dir, cache_dir=cache_dir, size=size
    )
