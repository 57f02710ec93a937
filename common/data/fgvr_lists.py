"""The official train/test split files of the four FGVR data sets, read into (path, label) lists.

* CUB-200-2011 (Wah et al. 2011): `images.txt` (id, path below `images/`),
  `image_class_labels.txt` (id, 1-based class id), `train_test_split.txt` (id, 1 = train,
  0 = test), `classes.txt` (class id, name). 200 classes, 5,994 train / 5,794 test.
  Labels follow the class ids of `classes.txt`.
* Stanford Dogs (Khosla et al. 2011): `train_list.mat` / `test_list.mat` (`file_list`: paths
  below `Images/`, `labels`: 1-based), or their text equivalents `train_list.txt` /
  `test_list.txt`. 120 classes, 12,000 train / 8,580 test. Labels index the sorted breed
  folders (`<wnid>-<breed>`), the order of the official 1-based labels, which are checked.
* MIT Indoor 67 (Quattoni & Torralba 2009): `TrainImages.txt` / `TestImages.txt` (paths below
  `Images/`, `<class>/<file>.jpg`). 67 classes, 5,360 train / 1,340 test. Labels index the
  sorted class folders.
* Stanford 40 Actions (Yao et al. 2011): `ImageSplits/actions.txt` (the 40 actions, after a
  header line), `ImageSplits/<action>_{train,test}.txt` (file names in `JPEGImages/`).
  4,000 train / 5,532 test. Labels follow the order of `actions.txt`.

Samples keep the order of the split files. Every reader raises `DataError` (through
`fgvr_error`) naming the file that is missing or malformed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.data.fgvr_layouts import fgvr_error
from common.data.matlab_v5 import MatFileError, read_mat

Sample = tuple[str, int]


@dataclass(frozen=True)
class SplitLists:
    """A data set's class names and its train and test samples (absolute path, label)."""

    classes: list[str]
    train: list[Sample]
    test: list[Sample]


def read_lines(name: str, path: Path) -> list[str]:
    """The non-empty, stripped lines of a split file (DataError when it is missing)."""
    if not path.is_file():
        raise fgvr_error(name, path.resolve(), f"missing split file {path.name}")
    return [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]


def read_pairs(name: str, path: Path) -> dict[str, str]:
    """A file of `<key> <value>` lines (CUB's id tables) as {key: value}, in file order."""
    pairs: dict[str, str] = {}
    for number, line in enumerate(read_lines(name, path), start=1):
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise fgvr_error(name, path.resolve(), f"line {number} is not '<id> <value>': {line!r}")
        pairs[parts[0]] = parts[1]
    return pairs


# --------------------------------------------------------------------------------------------
# CUB-200-2011
# --------------------------------------------------------------------------------------------


def read_cub200(folder: Path, name: str = "cub200") -> SplitLists:
    """CUB-200-2011 from its id tables (see the module docstring)."""
    images = read_pairs(name, folder / "images.txt")
    labels = read_pairs(name, folder / "image_class_labels.txt")
    is_train = read_pairs(name, folder / "train_test_split.txt")
    class_table = read_pairs(name, folder / "classes.txt")
    try:
        class_ids = sorted(class_table, key=int)
    except ValueError:
        raise fgvr_error(name, folder / "classes.txt", "class ids are not integers") from None
    index = {cid: i for i, cid in enumerate(class_ids)}
    train: list[Sample] = []
    test: list[Sample] = []
    for image_id, rel in images.items():
        for table, file in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt")):
            if image_id not in table:
                raise fgvr_error(name, folder / file, f"image id {image_id} of images.txt missing")
        if labels[image_id] not in index:
            raise fgvr_error(
                name, folder / "classes.txt", f"class id {labels[image_id]} not in classes.txt"
            )
        if is_train[image_id] not in ("0", "1"):
            raise fgvr_error(
                name, folder / "train_test_split.txt", f"image {image_id}: flag is not 0 or 1"
            )
        sample = (str(folder / "images" / rel), index[labels[image_id]])
        (train if is_train[image_id] == "1" else test).append(sample)
    return SplitLists([class_table[cid] for cid in class_ids], train, test)


# --------------------------------------------------------------------------------------------
# Stanford Dogs
# --------------------------------------------------------------------------------------------

MAT_CONVERSION = (
    "write {txt} instead (one Images/-relative path per line, optionally followed by the "
    "1-based label), e.g. with scipy: python -c \"import scipy.io as s; open('{txt}', 'w')"
    ".write('\\n'.join(f[0][0] for f in s.loadmat('{mat}')['file_list']))\" (for a v7.3 "
    "file, re-save it with MATLAB/Octave's -v7 option or read it with h5py)"
)


def dogs_list(folder: Path, split: str, name: str) -> list[tuple[str, int | None]]:
    """(path below Images/, official 1-based label or None) of `<split>_list.mat` or `.txt`."""
    mat, txt = folder / f"{split}_list.mat", folder / f"{split}_list.txt"
    if mat.is_file():
        try:
            variables = read_mat(mat)
        except MatFileError as err:
            hint = MAT_CONVERSION.format(txt=txt.name, mat=mat.name)
            raise fgvr_error(name, mat.resolve(), f"{err}; {hint}") from None
        if "file_list" not in variables:
            raise fgvr_error(name, mat.resolve(), "no 'file_list' variable")
        files = [str(f) for f in variables["file_list"]]
        labels = variables.get("labels")
        flat = [int(v) for v in labels.reshape(-1)] if labels is not None else [None] * len(files)
        if len(flat) != len(files):
            raise fgvr_error(name, mat.resolve(), "'labels' and 'file_list' differ in length")
        return list(zip(files, flat))
    if not txt.is_file():
        raise fgvr_error(name, folder.resolve(), f"neither {mat.name} nor {txt.name} found")
    rows: list[tuple[str, int | None]] = []
    for number, line in enumerate(read_lines(name, txt), start=1):
        parts = line.split()
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            raise fgvr_error(name, txt.resolve(), f"line {number} is not '<path> [label]'")
        rows.append((parts[0], int(parts[1]) if len(parts) == 2 else None))
    return rows


def read_stanford_dogs(folder: Path, name: str = "stanford_dogs") -> SplitLists:
    """Stanford Dogs from its split lists (see the module docstring)."""
    splits = {split: dogs_list(folder, split, name) for split in ("train", "test")}
    classes = sorted({rel.split("/")[0] for rows in splits.values() for rel, _ in rows})
    index = {breed: i for i, breed in enumerate(classes)}
    out: dict[str, list[Sample]] = {}
    for split, rows in splits.items():
        out[split] = []
        for rel, official in rows:
            label = index[rel.split("/")[0]]
            if official is not None and official != label + 1:
                raise fgvr_error(
                    name,
                    folder.resolve(),
                    f"{split} list: {rel} has label {official}, but its folder is class "
                    f"{label + 1} of the sorted breed folders",
                )
            out[split].append((str(folder / "Images" / rel), label))
    return SplitLists(classes, out["train"], out["test"])


# --------------------------------------------------------------------------------------------
# MIT Indoor 67
# --------------------------------------------------------------------------------------------


def read_mit67(folder: Path, name: str = "mit67") -> SplitLists:
    """MIT Indoor 67 from TrainImages.txt / TestImages.txt (see the module docstring)."""
    lists = {
        split: [line.replace("\\", "/") for line in read_lines(name, folder / file)]
        for split, file in (("train", "TrainImages.txt"), ("test", "TestImages.txt"))
    }
    for file, rows in zip(("TrainImages.txt", "TestImages.txt"), lists.values()):
        bad = [rel for rel in rows if "/" not in rel]
        if bad:
            raise fgvr_error(name, folder / file, f"{bad[0]!r} is not '<class>/<file>'")
    classes = sorted({rel.split("/")[0] for rows in lists.values() for rel in rows})
    index = {c: i for i, c in enumerate(classes)}

    def samples(rows: list[str]) -> list[Sample]:
        return [(str(folder / "Images" / rel), index[rel.split("/")[0]]) for rel in rows]

    return SplitLists(classes, samples(lists["train"]), samples(lists["test"]))


# --------------------------------------------------------------------------------------------
# Stanford 40 Actions
# --------------------------------------------------------------------------------------------


def read_stanford40(folder: Path, name: str = "stanford40") -> SplitLists:
    """Stanford 40 Actions from ImageSplits/ (see the module docstring)."""
    splits_dir = folder / "ImageSplits"
    actions = [line.split()[0] for line in read_lines(name, splits_dir / "actions.txt")]
    if actions and actions[0] == "action_name":  # the header line of the official file
        actions = actions[1:]
    if len(set(actions)) != len(actions):
        raise fgvr_error(name, splits_dir / "actions.txt", "an action is listed twice")
    out: dict[str, list[Sample]] = {"train": [], "test": []}
    for label, action in enumerate(actions):
        for split in out:
            for file in read_lines(name, splits_dir / f"{action}_{split}.txt"):
                out[split].append((str(folder / "JPEGImages" / file), label))
    return SplitLists(actions, out["train"], out["test"])


READERS: dict[str, Callable[[Path, str], SplitLists]] = {
    "cub200": read_cub200,
    "stanford_dogs": read_stanford_dogs,
    "mit67": read_mit67,
    "stanford40": read_stanford40,
}
