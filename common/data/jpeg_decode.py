"""Decode many small image files (JPEG, PNG, ...) into one uint8 array, with worker processes.

PIL does the decoding; greyscale, palette and CMYK images are converted to RGB, and a file it
cannot read stops with one error naming it (`common.data.image_files`). Files whose size
differs from the requested square size are resized with PIL's antialiased bilinear filter.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

from common.data.image_files import image_size, open_rgb

CHUNK_FILES = 1000
SERIAL_BELOW = 2000  # a worker pool costs more than it saves for fewer files than this


def decode_rgb(path: str, size: int) -> np.ndarray:
    """One image as uint8 (size, size, 3) RGB (`UnreadableImageError` naming a bad file)."""
    rgb = open_rgb(path)
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def decode_chunk(paths: Sequence[str], size: int) -> np.ndarray:
    """Images of `paths` as uint8 (N, size, size, 3)."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = decode_rgb(path, size)
    return out


def default_workers() -> int:
    """A few processes: the usable CPU cores, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def decode_files(paths: Sequence[str], size: int, workers: int | None = None) -> np.ndarray:
    """All images of `paths`, in order, as uint8 (N, 3, size, size) (channel-major)."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(paths) < SERIAL_BELOW:
        chunks = [decode_chunk(paths, size)]
    else:
        starts = range(0, len(paths), CHUNK_FILES)
        pieces = [list(paths[s : s + CHUNK_FILES]) for s in starts]
        context = multiprocessing.get_context()
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            chunks = list(pool.map(decode_chunk, pieces, [size] * len(pieces)))
    stacked = np.concatenate(chunks) if chunks else np.empty((0, size, size, 3), np.uint8)
    return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))


def image_size_of(path: str) -> tuple[int, int]:
    """(width, height) of an image file, read from its header (`UnreadableImageError` naming a
    file that is not an image)."""
    return image_size(path)
