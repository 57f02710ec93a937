"""Finding a data set's root folder, and the one error message for a missing or wrong one."""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import DataError

EXPECTED_LAYOUTS = {
    "cifar10": (
        "<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (torchvision "
        "pickles), or an ImageFolder tree <root>/{train,test}/<class>/*.jpg or "
        "<root>/cifar10/{train,test}/<class>/*.jpg"
    ),
    "cifar100": "<root>/cifar-100-python/{train,test,meta} (torchvision pickles)",
    "tiny_imagenet": (
        "<root>/tiny-imagenet-200/ (or <root> itself) with wnids.txt, "
        "train/<wnid>/images/*.JPEG, val/images/*.JPEG and val/val_annotations.txt"
    ),
    "imagenet": "<root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG",
    "imagefolder": "<root>/train/<class>/<images> and <root>/val/<class>/<images>",
}
DOWNLOADABLE = ("cifar10", "cifar100")


def data_error(name: str, path: str | Path, problem: str) -> DataError:
    """One message: the data set, what is wrong, the path tried, the layout expected, the fix."""
    fix = "set data.root=<folder> in the recipe or the DATA_ROOT environment variable"
    if name in DOWNLOADABLE:
        fix += ", or data.download=true to let torchvision download it there"
    layout = EXPECTED_LAYOUTS.get(name, "see common/data/README")
    return DataError(f"{name}: {problem} (path tried: {path}). Expected: {layout}. Fix: {fix}.")


def resolve_root(name: str, configured: str, download: bool = False) -> Path:
    """`configured`, else $DATA_ROOT; raise DataError when neither names an existing folder.

    With `download` (CIFAR only) the folder may not exist yet: torchvision creates it.
    """
    root = configured or os.environ.get("DATA_ROOT", "")
    if not root:
        raise data_error(
            name, "(none)", "no data root given: data.root is empty and DATA_ROOT is not set"
        )
    path = Path(root).expanduser()
    if path.is_file():
        raise data_error(name, path.resolve(), "the data root is a file, not a folder")
    if download and name in DOWNLOADABLE:
        return path
    if not path.is_dir():
        raise data_error(name, path.resolve(), "the data root does not exist")
    return path
