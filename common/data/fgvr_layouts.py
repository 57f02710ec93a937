"""Where the four fine-grained (FGVR) data sets live, and the one error message when they don't.

Each data set is found in `data.root` (or $DATA_ROOT) itself or in its usual sub-folder
(e.g. `<root>/CUB_200_2011`), recognised by a file or folder only its official layout has
(its split file, e.g. `images.txt`, `train_list.mat`, `TrainImages.txt`, `ImageSplits/`).
A missing root or a wrong layout raises `DataError` naming the data set, the path tried, the
files expected and the fix, in the same shape as `common.data.roots.data_error`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from common.errors import DataError


@dataclass(frozen=True)
class Layout:
    """The official layout of one FGVR data set."""

    title: str
    folders: tuple[str, ...]  # usual sub-folders of the data root, tried after the root itself
    markers: tuple[str, ...]  # files or folders, any of which identifies the layout
    expected: str  # the layout, for error messages
    fix: str  # how to obtain it


LAYOUTS: dict[str, Layout] = {
    "cub200": Layout(
        title="CUB-200-2011",
        folders=("CUB_200_2011", "cub200"),
        markers=("images.txt",),
        expected=(
            "<root>/CUB_200_2011/ (or <root> itself) holding images.txt, image_class_labels.txt, "
            "train_test_split.txt, classes.txt and images/<class>/<file>.jpg"
        ),
        fix=(
            "extract the official CUB_200_2011.tgz "
            "(https://www.vision.caltech.edu/datasets/cub_200_2011/) into the data root"
        ),
    ),
    "stanford_dogs": Layout(
        title="Stanford Dogs",
        folders=("StanfordDogs", "stanford_dogs"),
        markers=("train_list.mat", "train_list.txt"),
        expected=(
            "<root> (or <root>/StanfordDogs) holding Images/<wnid-breed>/<file>.jpg and the "
            "split lists train_list.mat + test_list.mat (from lists.tar), or their text "
            "equivalents train_list.txt + test_list.txt (one Images/-relative path per line, "
            "optionally followed by the 1-based label)"
        ),
        fix=(
            "extract images.tar and lists.tar "
            "(http://vision.stanford.edu/aditya86/ImageNetDogs/) into the data root"
        ),
    ),
    "mit67": Layout(
        title="MIT Indoor 67",
        folders=("indoorCVPR_09", "MIT67", "mit67"),
        markers=("TrainImages.txt",),
        expected=(
            "<root> (or <root>/indoorCVPR_09, <root>/mit67) holding TrainImages.txt, "
            "TestImages.txt and Images/<class>/<file>.jpg"
        ),
        fix=(
            "extract indoorCVPR_09.tar and put TrainImages.txt and TestImages.txt "
            "(http://web.mit.edu/torralba/www/indoor.html) beside its Images/ folder"
        ),
    ),
    "stanford40": Layout(
        title="Stanford 40 Actions",
        folders=("Stanford40", "stanford40"),
        markers=("ImageSplits",),
        expected=(
            "<root> (or <root>/Stanford40) holding ImageSplits/actions.txt, "
            "ImageSplits/<action>_train.txt, ImageSplits/<action>_test.txt and "
            "JPEGImages/<file>.jpg"
        ),
        fix=(
            "extract Stanford40_JPEGImages.zip and ImageSplits.zip "
            "(http://vision.stanford.edu/Datasets/40actions.html) into the data root"
        ),
    ),
}
ROOT_FIX = "set data.root=<folder> in the recipe or the DATA_ROOT environment variable"


def fgvr_error(name: str, path: str | Path, problem: str) -> DataError:
    """One message: the data set, what is wrong, the path tried, the layout expected, the fix."""
    layout = LAYOUTS[name]
    return DataError(
        f"{name} ({layout.title}): {problem} (path tried: {path}). "
        f"Expected: {layout.expected}. Fix: {layout.fix}, and {ROOT_FIX}."
    )


def candidate_folders(name: str, root: Path) -> list[Path]:
    """The folders searched for the layout, in order: the root, then its usual sub-folders."""
    found: list[Path] = []
    for folder in (root, *(root / sub for sub in LAYOUTS[name].folders), root / name):
        if folder not in found:
            found.append(folder)
    return found


def find_fgvr_root(name: str, configured: str) -> Path:
    """The folder holding data set `name`'s official layout, below `configured` or $DATA_ROOT."""
    text = configured or os.environ.get("DATA_ROOT", "")
    if not text:
        raise fgvr_error(
            name, "(none)", "no data root given: data.root is empty and DATA_ROOT is not set"
        )
    root = Path(text).expanduser()
    if not root.is_dir():
        raise fgvr_error(name, root.resolve(), "the data root does not exist")
    markers = LAYOUTS[name].markers
    for folder in candidate_folders(name, root):
        if any((folder / marker).exists() for marker in markers):
            return folder
    tried = ", ".join(str(f.resolve()) for f in candidate_folders(name, root))
    raise fgvr_error(name, tried, f"no {' or '.join(markers)} found")
