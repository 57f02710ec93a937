"""FGVR data sets (R2KD Table IV): CUB-200-2011, Stanford Dogs, MIT67, Stanford40.

Each test writes a tiny copy of the official layout (a few small JPEGs per class and the
official split files) and checks class counts, split sizes, labels of named files, that train
and test are disjoint and follow the split files, the loaders of `build_data`, and the error
messages for a missing root or a broken layout.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.cli import main as train
from common.config.schema import DataConfig
from common.data import DATASETS, DataError, build_data
from common.data.fgvr import FGVR_DATASETS, ListImageDataset, load_split_lists
from common.data.matlab_v5 import read_mat


def jpeg(path: Path, value: int, mode: str = "RGB", size: tuple[int, int] = (12, 10)) -> None:
    """A small solid-colour JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, 255 - value, (3 * value) % 256)
    Image.new(mode, size, colour).save(path, format="JPEG")


def write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# Fixtures in the official layouts
# --------------------------------------------------------------------------------------------

CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]


def make_cub(root: Path) -> Path:
    """CUB_200_2011/ with 3 classes x 4 images; per class images 1 and 3 train, 2 and 4 test."""
    folder = root / "CUB_200_2011"
    images, labels, split = [], [], []
    image_id = 0
    for class_id, name in enumerate(CUB_CLASSES, start=1):
        for k in range(1, 5):
            image_id += 1
            rel = f"{name}/{name.split('.')[1]}_{k:04d}.jpg"
            jpeg(folder / "images" / rel, 20 * image_id)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {class_id}")
            split.append(f"{image_id} {1 if k % 2 else 0}")
    write(folder / "images.txt", images)
    write(folder / "image_class_labels.txt", labels)
    write(folder / "train_test_split.txt", split)
    write(folder / "classes.txt", [f"{i} {n}" for i, n in enumerate(CUB_CLASSES, start=1)])
    return folder


DOG_BREEDS = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02085936-Maltese_dog"]


def dog_lists() -> dict[str, list[tuple[str, int]]]:
    """Per breed 3 train and 2 test images, as (Images/-relative path, 1-based label)."""
    out: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for label, breed in enumerate(DOG_BREEDS, start=1):
        wnid = breed.split("-")[0]
        for k in range(5):
            out["train" if k < 3 else "test"].append((f"{breed}/{wnid}_{100 + k}.jpg", label))
    return out


def mat_element(kind: int, payload: bytes) -> bytes:
    """One Level 5 data element (small format when it fits in 4 bytes, as MATLAB writes)."""
    if 0 < len(payload) <= 4:
        return struct.pack("<HH", kind, len(payload)) + payload.ljust(4, b"\0")
    return struct.pack("<II", kind, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def mat_matrix(name: str, mx_class: int, dims: tuple[int, ...], data: bytes) -> bytes:
    """A miMATRIX element: array flags, dimensions, name, then `data` (already elements)."""
    head = mat_element(6, struct.pack("<II", mx_class, 0))
    head += mat_element(5, struct.pack(f"<{len(dims)}i", *dims)) + mat_element(1, name.encode())
    return mat_element(14, head + data)


def write_mat(path: Path, files: list[str], labels: list[int]) -> None:
    """A compressed MAT-file (v7 style) with `file_list` (N x 1 cell of char) and `labels`."""
    chars = [mat_matrix("", 4, (1, len(f)), mat_element(16, f.encode())) for f in files]
    cell = mat_matrix("file_list", 1, (len(files), 1), b"".join(chars))
    numbers = mat_element(9, np.asarray(labels, dtype="<f8").tobytes())
    label_matrix = mat_matrix("labels", 6, (len(labels), 1), numbers)
    body = b""
    for element in (cell, label_matrix):
        packed = zlib.compress(element)
        body += struct.pack("<II", 15, len(packed)) + packed
    header = b"MATLAB 5.0 MAT-file, Platform: test".ljust(116) + b"\0" * 8
    path.write_bytes(header + struct.pack("<H", 0x0100) + b"IM" + body)


def make_dogs(root: Path, text_lists: bool = False) -> Path:
    """Images/<wnid-breed>/ plus train_list/test_list as .mat (default) or .txt."""
    lists = dog_lists()
    for i, (rel, _) in enumerate(lists["train"] + lists["test"]):
        jpeg(root / "Images" / rel, 15 * i)
    for split, rows in lists.items():
        if text_lists:
            write(root / f"{split}_list.txt", [f"{rel} {label}" for rel, label in rows])
        else:
            write_mat(root / f"{split}_list.mat", [r for r, _ in rows], [lab for _, lab in rows])
    return root


MIT_TRAIN = ["kitchen/int474.jpg", "bar/bar_0001.jpg", "kitchen/k2.jpg", "airport_inside/a1.jpg"]
MIT_TEST = ["bar/bar_0002.jpg", "airport_inside/a2.jpg", "kitchen/k3.jpg"]


def make_mit67(root: Path, size: tuple[int, int] = (12, 10)) -> Path:
    """Images/<class>/ + TrainImages.txt / TestImages.txt (one greyscale image, CRLF lines)."""
    for i, rel in enumerate(MIT_TRAIN + MIT_TEST):
        jpeg(root / "Images" / rel, 30 * i, mode="L" if i == 1 else "RGB", size=size)
    jpeg(root / "Images" / "bar" / "unlisted.jpg", 7)  # in no split file: must not appear
    (root / "TrainImages.txt").write_text("\r\n".join(MIT_TRAIN) + "\r\n")
    (root / "TestImages.txt").write_text("\r\n".join(MIT_TEST) + "\r\n")
    return root


ACTIONS = ["applauding", "blowing_bubbles", "brushing_teeth"]


def make_stanford40(root: Path) -> Path:
    """ImageSplits/{actions.txt, <action>_{train,test}.txt} + JPEGImages/; 3 train, 2 test."""
    folder = root / "Stanford40"
    write(
        folder / "ImageSplits" / "actions.txt",
        ["action_name\tnumber_of_images", *(f"{a}\t5" for a in ACTIONS)],
    )
    for a, action in enumerate(ACTIONS):
        names = [f"{action}_{k:03d}.jpg" for k in range(1, 6)]
        for k, name in enumerate(names):
            jpeg(folder / "JPEGImages" / name, 40 * a + 5 * k)
        write(folder / "ImageSplits" / f"{action}_train.txt", names[:3])
        write(folder / "ImageSplits" / f"{action}_test.txt", names[3:])
    return folder


def relative(samples: list[tuple[str, int]], folder: Path) -> dict[str, int]:
    """{path relative to `folder`: label}."""
    return {str(Path(p).relative_to(folder)): label for p, label in samples}


def check_disjoint(lists) -> None:
    train, test = {p for p, _ in lists.train}, {p for p, _ in lists.test}
    assert not train & test


# --------------------------------------------------------------------------------------------
# The four layouts
# --------------------------------------------------------------------------------------------


def test_names_are_registered() -> None:
    assert FGVR_DATASETS == ("cub200", "stanford_dogs", "mit67", "stanford40")
    assert set(FGVR_DATASETS) <= set(DATASETS)


def test_cub200_follows_train_test_split(tmp_path: Path) -> None:
    folder = make_cub(tmp_path)
    lists = load_split_lists("cub200", str(tmp_path))  # found in <root>/CUB_200_2011
    assert lists.classes == CUB_CLASSES
    assert (len(lists.train), len(lists.test)) == (6, 6)
    train, test = relative(lists.train, folder), relative(lists.test, folder)
    assert train["images/002.Laysan_Albatross/Laysan_Albatross_0003.jpg"] == 1
    assert test["images/003.Sooty_Albatross/Sooty_Albatross_0004.jpg"] == 2
    assert test["images/001.Black_footed_Albatross/Black_footed_Albatross_0002.jpg"] == 0
    assert all(p.endswith(("_0001.jpg", "_0003.jpg")) for p in train)
    assert all(p.endswith(("_0002.jpg", "_0004.jpg")) for p in test)
    check_disjoint(lists)


@pytest.mark.parametrize("text_lists", [False, True], ids=["mat", "txt"])
def test_stanford_dogs_reads_mat_or_text_lists(tmp_path: Path, text_lists: bool) -> None:
    make_dogs(tmp_path, text_lists=text_lists)
    lists = load_split_lists("stanford_dogs", str(tmp_path))
    assert lists.classes == DOG_BREEDS
    assert (len(lists.train), len(lists.test)) == (9, 6)
    train, test = relative(lists.train, tmp_path), relative(lists.test, tmp_path)
    expected = dog_lists()
    assert list(train) == [f"Images/{rel}" for rel, _ in expected["train"]]  # file order kept
    assert list(test) == [f"Images/{rel}" for rel, _ in expected["test"]]
    assert train["Images/n02085782-Japanese_spaniel/n02085782_101.jpg"] == 1
    assert test["Images/n02085936-Maltese_dog/n02085936_104.jpg"] == 2
    check_disjoint(lists)


def test_matlab_reader_reads_the_fixture_file(tmp_path: Path) -> None:
    write_mat(tmp_path / "x.mat", ["a/b.jpg", "cc/dd.jpg", "e/f.jpg"], [1, 2, 120])
    values = read_mat(tmp_path / "x.mat")
    assert values["file_list"] == ["a/b.jpg", "cc/dd.jpg", "e/f.jpg"]
    assert values["labels"].shape == (3, 1)
    assert values["labels"].ravel().tolist() == [1.0, 2.0, 120.0]


def test_stanford_dogs_label_mismatch_is_refused(tmp_path: Path) -> None:
    make_dogs(tmp_path, text_lists=True)
    rows = dog_lists()["test"]
    rows[0] = (rows[0][0], 3)  # a Chihuahua labelled as the third breed
    write(tmp_path / "test_list.txt", [f"{rel} {label}" for rel, label in rows])
    with pytest.raises(DataError, match=r"stanford_dogs.*has label 3.*class 1"):
        load_split_lists("stanford_dogs", str(tmp_path))


def test_mit67_follows_train_and_test_images(tmp_path: Path) -> None:
    make_mit67(tmp_path / "indoorCVPR_09")
    folder = tmp_path / "indoorCVPR_09"
    lists = load_split_lists("mit67", str(tmp_path))
    assert lists.classes == ["airport_inside", "bar", "kitchen"]
    assert (len(lists.train), len(lists.test)) == (4, 3)
    assert list(relative(lists.train, folder)) == [f"Images/{r}" for r in MIT_TRAIN]
    assert relative(lists.test, folder) == {
        "Images/bar/bar_0002.jpg": 1,
        "Images/airport_inside/a2.jpg": 0,
        "Images/kitchen/k3.jpg": 2,
    }
    assert not any("unlisted" in p for p, _ in lists.train + lists.test)
    check_disjoint(lists)
    grey = ListImageDataset(lists.train, lists.classes)[1][0]  # bar_0001.jpg was saved as L
    assert grey.mode == "RGB"


def test_stanford40_follows_image_splits(tmp_path: Path) -> None:
    folder = make_stanford40(tmp_path)
    lists = load_split_lists("stanford40", str(tmp_path))
    assert lists.classes == ACTIONS
    assert (len(lists.train), len(lists.test)) == (9, 6)
    train, test = relative(lists.train, folder), relative(lists.test, folder)
    assert train["JPEGImages/blowing_bubbles_002.jpg"] == 1
    assert test["JPEGImages/brushing_teeth_005.jpg"] == 2
    assert set(test) == {f"JPEGImages/{a}_{k:03d}.jpg" for a in ACTIONS for k in (4, 5)}
    check_disjoint(lists)


def test_sets_side_by_side_in_one_data_root(tmp_path: Path, monkeypatch) -> None:
    """$DATA_ROOT holding MIT67 itself (Images/ at the top) and Dogs and CUB in sub-folders."""
    make_mit67(tmp_path)
    make_dogs(tmp_path / "StanfordDogs")
    make_cub(tmp_path)
    monkeypatch.setenv("DATA_ROOT", str(tmp_path))
    dogs = load_split_lists("stanford_dogs", "")
    assert dogs.classes == DOG_BREEDS
    assert all(p.startswith(str(tmp_path / "StanfordDogs" / "Images")) for p, _ in dogs.train)
    assert load_split_lists("mit67", "").classes == ["airport_inside", "bar", "kitchen"]
    assert load_split_lists("cub200", "").classes == CUB_CLASSES


# --------------------------------------------------------------------------------------------
# build_data: the large-image DataLoader path
# --------------------------------------------------------------------------------------------


def test_build_data_serves_the_test_split_as_validation(tmp_path: Path) -> None:
    make_mit67(tmp_path, size=(40, 30))
    cfg = DataConfig(name="mit67", root=str(tmp_path), image_size=32, num_workers=0)
    cfg.val_batch_size = 2
    bundle = build_data(cfg, batch_size=4, device="cpu", seed=0)
    spec = bundle.spec
    assert (spec.num_classes, spec.train_size, spec.val_size) == (3, 4, 3)
    assert spec.class_names == ["airport_inside", "bar", "kitchen"]
    assert spec.mean == (0.485, 0.456, 0.406) and spec.image_size == 32
    images, targets = next(iter(bundle.train))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert sorted(targets.tolist()) == [0, 1, 2, 2]  # the four training images, shuffled
    val_targets = torch.cat([t for _, t in bundle.val]).tolist()
    assert val_targets == [1, 0, 2]  # TestImages.txt order


def test_shipped_teacher_recipe_trains_on_the_fixture(tmp_path: Path) -> None:
    """The MIT67 teacher recipe (FGVR protocol base) runs end to end, shrunk to seconds."""
    make_mit67(tmp_path / "data", size=(40, 30))
    recipe = Path(__file__).resolve().parents[1] / "tools/recipes/teachers/mit67/resnet34.yaml"
    overrides = [
        f"data.root={tmp_path / 'data'}",
        "data.image_size=32",
        "data.num_workers=0",
        "data.val_batch_size=4",
        "train.epochs=1",
        "train.batch_size=4",
        "train.progress=none",
        "student.name=resnet8",
        "device=cpu",
    ]
    run = tmp_path / "run"
    assert train(["--recipe", str(recipe), "--out", str(run), *overrides]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 1 and (run / "best.pt").is_file()


# --------------------------------------------------------------------------------------------
# Errors: one message naming the data set, the path, the files expected and the fix
# --------------------------------------------------------------------------------------------


def test_missing_root_names_dataset_and_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DATA_ROOT", raising=False)
    with pytest.raises(DataError, match=r"^cub200 .*no data root given.*images.txt.*data\.root"):
        load_split_lists("cub200", "")
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=r"stanford40 .*does not exist.*nowhere.*ImageSplits"):
        load_split_lists("stanford40", str(missing))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cub200", r"no images.txt found.*CUB_200_2011.*train_test_split.txt.*CUB_200_2011.tgz"),
        ("stanford_dogs", r"no train_list.mat or train_list.txt found.*Images/.*lists.tar"),
        ("mit67", r"no TrainImages.txt found.*indoorCVPR_09.*TestImages.txt"),
        ("stanford40", r"no ImageSplits found.*Stanford40.*actions.txt.*ImageSplits.zip"),
    ],
)
def test_wrong_layout_names_files_expected(tmp_path: Path, name: str, expected: str) -> None:
    (tmp_path / "train").mkdir()  # an ImageFolder tree is not an FGVR layout
    with pytest.raises(DataError, match=expected) as err:
        build_data(DataConfig(name=name, root=str(tmp_path)), batch_size=2, device="cpu", seed=0)
    assert str(tmp_path.resolve()) in str(err.value) and "Fix:" in str(err.value)


def test_missing_split_file_is_named(tmp_path: Path) -> None:
    folder = make_cub(tmp_path)
    (folder / "train_test_split.txt").unlink()
    with pytest.raises(DataError, match=r"cub200 .*missing split file train_test_split.txt"):
        load_split_lists("cub200", str(tmp_path))


def test_missing_image_file_is_named(tmp_path: Path) -> None:
    folder = make_stanford40(tmp_path)
    (folder / "JPEGImages" / "applauding_004.jpg").unlink()
    with pytest.raises(DataError, match=r"1 image file\(s\).*missing.*applauding_004.jpg"):
        load_split_lists("stanford40", str(tmp_path))


def test_image_in_both_splits_is_refused(tmp_path: Path) -> None:
    make_mit67(tmp_path)
    (tmp_path / "TestImages.txt").write_text("\n".join([*MIT_TEST, MIT_TRAIN[0]]))
    with pytest.raises(DataError, match=r"mit67 .*1 image\(s\) are in both.*int474.jpg"):
        load_split_lists("mit67", str(tmp_path))


def test_unreadable_mat_file_says_how_to_convert(tmp_path: Path) -> None:
    make_dogs(tmp_path)
    (tmp_path / "train_list.mat").write_bytes(b"\x89HDF\r\n" + b"\0" * 200)  # not Level 5
    with pytest.raises(DataError, match=r"train_list.mat.*MAT-file.*write train_list.txt instead"):
        load_split_lists("stanford_dogs", str(tmp_path))
