"""End to end on the real CIFAR-10 archive: a short teacher run, then KD from its best.pt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.cli import main

REPO = Path(__file__).resolve().parents[1]
TEACHER_RECIPE = REPO / "tools" / "recipes" / "teachers" / "cifar100" / "resnet56.yaml"
KD_RECIPE = REPO / "tools" / "recipes" / "kd" / "cifar100" / "resnet56_resnet20.yaml"


def short_run(root: Path, cache: Path, epochs: int) -> list[str]:
    """Overrides turning a CIFAR-100 protocol recipe into a short CPU run on CIFAR-10."""
    return [
        "data.name=cifar10", f"data.root={root}", f"data.cache_dir={cache}",
        "data.subset=4000", "data.val_subset=2000", "device=cpu",
        f"train.epochs={epochs}", "train.batch_size=64", "train.progress=none",
        "optim.schedule=cosine",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def teacher_run(cifar10_jpg_root: Path, decode_cache_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("e2e") / "teacher"
    overrides = [*short_run(cifar10_jpg_root, decode_cache_dir, 3), "student.name=resnet8"]
    assert main(["--recipe", str(TEACHER_RECIPE), "--out", str(out), *overrides]) == 0
    return out


def test_short_teacher_beats_chance_by_a_wide_margin(teacher_run: Path) -> None:
    summary = json.loads((teacher_run / "summary.json").read_text())
    assert summary["top1_best"] > 30.0  # chance is 10%
    assert len((teacher_run / "metrics.jsonl").read_text().splitlines()) == 3


def test_kd_from_that_teacher_writes_its_run_directory(
    teacher_run: Path, cifar10_jpg_root: Path, decode_cache_dir: Path
) -> None:
    out = teacher_run.parent / "kd"
    overrides = [
        *short_run(cifar10_jpg_root, decode_cache_dir, 1),
        "teacher.name=resnet8", f"teacher.checkpoint={teacher_run / 'best.pt'}",
        "student.name=resnet8",
    ]  # fmt: skip
    assert main(["--recipe", str(KD_RECIPE), "--out", str(out), *overrides]) == 0
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "last.pt", "best.pt"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    teacher = json.loads((teacher_run / "summary.json").read_text())
    # The teacher KD measured before training is exactly the teacher run's best epoch.
    assert summary["teacher_top1"] == pytest.approx(teacher["top1_best"], abs=1e-6)
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"ce", "kd", "top1"} <= set(row)
