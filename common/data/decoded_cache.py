"""A disk cache of decoded image splits, so a folder of small JPEGs is decoded only once.

An entry is a folder `<cache_dir>/<tag>-<hash>/` holding `images.npy` (uint8 N,3,H,W),
`labels.npy` (int64) and `meta.json` (class names, files, key). The hash is taken over a key
that names the absolute root, file count, a size/mtime digest and the image size, so a changed
data set gets a new entry. Entries are written to a temporary folder and renamed into place,
so readers never see a partial entry and concurrent writers cannot corrupt one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.data.arrays import ImageArrays

LOGGER = logging.getLogger(__name__)
CACHE_VERSION = 1


def default_cache_dir(configured: str = "") -> Path:
    """`configured` when given, else `~/.cache/kdzoo`."""
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "kdzoo"


def cache_entry(cache_dir: Path, tag: str, key: dict[str, Any]) -> Path:
    """The folder of the entry for `key` (it may not exist yet)."""
    text = json.dumps({"version": CACHE_VERSION, **key}, sort_keys=True)
    return cache_dir / "decoded" / f"{tag}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def cached_arrays(
    cache_dir: Path, tag: str, key: dict[str, Any], build: Callable[[], ImageArrays]
) -> ImageArrays:
    """The arrays stored for `key`, or `build()`'s result, stored before it is returned."""
    entry = cache_entry(cache_dir, tag, key)
    if (entry / "meta.json").is_file():
        return read_entry(entry)
    arrays = build()
    try:
        write_entry(entry, arrays, key)
    except OSError as error:  # a read-only or full disk must not stop training
        LOGGER.warning("could not write the decode cache %s: %s", entry, error)
    return arrays


def read_entry(entry: Path) -> ImageArrays:
    """Load one cache entry."""
    meta = json.loads((entry / "meta.json").read_text())
    images = torch.from_numpy(np.load(entry / "images.npy"))
    labels = torch.from_numpy(np.load(entry / "labels.npy"))
    return ImageArrays(images, labels, meta["class_names"], meta["files"])


def write_entry(entry: Path, arrays: ImageArrays, key: dict[str, Any]) -> None:
    """Write `arrays` as the entry `entry`, atomically (temporary folder, then rename)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        np.save(staging / "images.npy", arrays.images.cpu().numpy())
        np.save(staging / "labels.npy", arrays.labels.cpu().numpy())
        meta = {"key": key, "class_names": arrays.class_names, "files": arrays.files}
        (staging / "meta.json").write_text(json.dumps(meta))
        try:
            os.rename(staging, entry)
        except OSError:
            if not (entry / "meta.json").is_file():  # not a concurrent writer's success
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
