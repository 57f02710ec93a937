"""Shared fixtures: the real data archives (unpacked once into a cache) and the test devices.

The archives live in $KD_SHARED_DATA (default `<repo>/../shared/data`) and are unpacked once
into $KD_DATA_CACHE (default `~/.cache/kdzoo/shared`); a marker file written after a complete
unpack lets later sessions reuse it. The decoded-image cache of the real-data tests lives in
the same folder.

Every test that needs an archive carries the `real_data` marker (given here to each test that
uses one of the fixtures below). CI requires them: `.ci/run` sets KD_REQUIRE_REAL_DATA=1, and
a missing archive then FAILS those tests. A contributor without the archives gets a skip
naming the missing file instead (`pytest -m "not real_data"` leaves them out altogether).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from common.data.archives import unpack_once

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Where the real data archives are."""
    return Path(os.environ.get("KD_SHARED_DATA") or REPO.parent / "shared" / "data")


def data_cache_dir() -> Path:
    """Where the archives are unpacked and their images decoded (reused across sessions)."""
    return Path(os.environ.get("KD_DATA_CACHE") or "~/.cache/kdzoo/shared").expanduser()


REAL_DATA_FIXTURES = {"cifar10_jpg_root", "tiny_imagenet_root", "cifar10_teacher"}


def real_data_required() -> bool:
    """Whether a missing archive is a failure (CI) rather than a skip (a contributor)."""
    return os.environ.get("KD_REQUIRE_REAL_DATA", "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_data: needs the archives in ../shared/data (required in CI)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real-data fixture `real_data`."""
    for item in items:
        if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)


def unpacked_archive(archive_name: str) -> Path:
    """The folder holding the archive's contents, unpacked on first use."""
    archive = shared_data_dir() / archive_name
    if not archive.is_file():
        message = (
            f"real data archive missing: {archive}; set KD_SHARED_DATA to the folder holding "
            "cifar10-jpg.tar.gz and tiny-imagenet-200.tar.gz"
        )
        if real_data_required():
            pytest.fail(f"{message} (KD_REQUIRE_REAL_DATA is set: CI needs them)", pytrace=False)
        pytest.skip(message)
    return unpack_once(archive, data_cache_dir() / archive_name.removesuffix(".tar.gz"))


@pytest.fixture(scope="session")
def cifar10_jpg_root() -> Path:
    """Root holding `cifar10/{train,test}/<class>/NNNN.jpg` (the real CIFAR-10 JPEG tree)."""
    return unpacked_archive("cifar10-jpg.tar.gz")


@pytest.fixture(scope="session")
def tiny_imagenet_root() -> Path:
    """Root holding `tiny-imagenet-200/` in the official layout."""
    return unpacked_archive("tiny-imagenet-200.tar.gz")


@pytest.fixture(scope="session")
def decode_cache_dir() -> Path:
    """`DataConfig.cache_dir` for the real-data tests (decoded once, reused afterwards)."""
    return data_cache_dir()


AVAILABLE_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=AVAILABLE_DEVICES)
def data_device(request: pytest.FixtureRequest) -> torch.device:
    """Each device this machine has: the CPU always, CUDA where a GPU is present."""
    return torch.device(request.param)


@contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op thread inside the block; the previous count is restored afterwards.

    Small networks run as fast on one thread, and on a shared, loaded CPU two spinning OpenMP
    threads run them many times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """`single_thread` for a module: `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    with single_thread():
        yield


@pytest.fixture(scope="session")
def cifar10_teacher(
    cifar10_jpg_root: Path, decode_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The run folder of a resnet8 teacher trained 3 epochs on 4,000 real CIFAR-10 images.

    Trained once per session with one intra-op thread and seed 0 (so its weights do not depend
    on which test asks first) and shared by the end-to-end tests of the baselines and methods.
    """
    from tiny_runs import short_cifar10_run

    from common.cli import main

    out = tmp_path_factory.mktemp("cifar10_teacher") / "teacher"
    recipe = REPO / "tools" / "recipes" / "teachers" / "cifar100" / "resnet56.yaml"
    overrides = [*short_cifar10_run(cifar10_jpg_root, decode_cache_dir, 3), "student.name=resnet8"]
    with single_thread():
        assert main(["--recipe", str(recipe), "--out", str(out), *overrides, "train.seed=0"]) == 0
    return out
