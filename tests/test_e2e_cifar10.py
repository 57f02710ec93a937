"""End to end on the real CIFAR-10 archive: a short teacher run, then KD from its final.pt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_runs import short_cifar10_run

from common.cli import main

REPO = Path(__file__).resolve().parents[1]
KD_RECIPE = REPO / "tools" / "recipes" / "kd" / "cifar100" / "resnet56_resnet20.yaml"


def test_short_teacher_beats_chance_by_a_wide_margin(cifar10_teacher: Path) -> None:
    summary = json.loads((cifar10_teacher / "summary.json").read_text())
    assert summary["top1_best"] > 30.0  # chance is 10%
    assert len((cifar10_teacher / "metrics.jsonl").read_text().splitlines()) == 3


def test_kd_from_that_teacher_writes_its_run_directory(
    cifar10_teacher: Path, cifar10_jpg_root: Path, decode_cache_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "kd"
    overrides = [
        *short_cifar10_run(cifar10_jpg_root, decode_cache_dir, 1),
        "teacher.name=resnet8", f"teacher.checkpoint={cifar10_teacher / 'final.pt'}",
        "student.name=resnet8",
    ]  # fmt: skip
    assert main(["--recipe", str(KD_RECIPE), "--out", str(out), *overrides]) == 0
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "last.pt", "best.pt"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    teacher = json.loads((cifar10_teacher / "summary.json").read_text())
    # The teacher KD measured before training is exactly the teacher run's best epoch.
    assert summary["teacher_top1"] == pytest.approx(teacher["top1_best"], abs=1e-6)
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"ce", "kd", "top1"} <= set(row)
