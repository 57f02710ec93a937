"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) as device-ready uint8 splits.

The root is auto-detected: torchvision's pickle folder (`cifar-10-batches-py` or
`cifar-100-python`) first; for CIFAR-10 also an ImageFolder tree at `root/{train,test}` or
`root/cifar10/{train,test}` (the JPEG archive of this project; sorted class folder names give
the standard label order airplane..truck). With `download`, torchvision fetches the pickles.
"""

from __future__ import annotations

from pathlib import Path

from common.data.arrays import ImageArrays
from common.data.cifar_pickle import find_pickle_folder, load_cifar_pickles
from common.data.file_tree import class_folders
from common.data.roots import data_error
from common.data.small_folder import load_class_tree
from common.errors import DataError

CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}


def find_cifar_tree(root: Path) -> Path | None:
    """The folder holding `train/` and `test/` class folders (`root` or `root/cifar10`)."""
    for candidate in (root, root / "cifar10"):
        splits = [candidate / "train", candidate / "test"]
        if all(s.is_dir() and class_folders(s) for s in splits):
            return candidate
    return None


def download_cifar(root: Path, name: str) -> None:
    """Fetch the pickles with torchvision (users with a network)."""
    from torchvision import datasets

    dataset = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        for train in (True, False):
            dataset(str(root), train=train, download=True)
    except (OSError, RuntimeError) as err:  # no network, a refused write, a bad archive
        reason = " ".join(str(err).split())
        raise DataError(
            f"{name}: data.download=true could not download into {root} ({reason}); "
            "download it by hand, or fix the network and run again"
        ) from None


def load_cifar(
    name: str, root: Path, *, download: bool, cache_dir: Path
) -> tuple[ImageArrays, ImageArrays]:
    """(train, test) of `name` ('cifar10' or 'cifar100') found below `root`."""
    folder = find_pickle_folder(root, name)
    if folder is not None:
        return load_cifar_pickles(folder, name)
    tree = find_cifar_tree(root) if name == "cifar10" else None
    if tree is not None:
        train = load_class_tree(tree / "train", tag="cifar10-train", cache_dir=cache_dir)
        test = load_class_tree(tree / "test", tag="cifar10-test", cache_dir=cache_dir)
        check_classes(name, tree, train, test)
        return train, test
    if download:
        download_cifar(root, name)
        return load_cifar_pickles(find_pickle_folder(root, name) or root, name)
    raise data_error(name, root.resolve(), "no CIFAR files in the expected layout were found")


def check_classes(name: str, tree: Path, train: ImageArrays, test: ImageArrays) -> None:
    """Refuse a tree whose train/test class folders differ or are not the CIFAR classes."""
    expected = CIFAR_CLASSES[name]
    if train.class_names != test.class_names or len(train.class_names) != expected:
        raise data_error(
            name,
            tree.resolve(),
            f"expected the same {expected} class folders in train/ and test/, found "
            f"{len(train.class_names)} and {len(test.class_names)}",
        )
