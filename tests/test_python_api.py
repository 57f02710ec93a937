"""The README's Python snippet (between the `python-api` markers), run exactly as written in a
folder holding what it names: a small real CIFAR-10 tree and a teacher file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from common.models import build_model

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


def readme_snippet() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(
        r"<!-- python-api -->\s*```python\n(.*?)```\s*<!-- /python-api -->", text, re.S
    )
    assert block, "README.md has no python-api block"
    return block.group(1)


def small_tree(source: Path, target: Path, per_class: int) -> None:
    """`target/<class>/` with the first `per_class` images of each class of `source`."""
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:per_class]:
            (target / folder.name / image.name).symlink_to(image)


def test_the_readme_snippet_distils_and_writes_a_run_folder(
    cifar10_jpg_root: Path, tmp_path: Path, monkeypatch
) -> None:
    cifar = cifar10_jpg_root / "cifar10"
    small_tree(cifar / "train", tmp_path / "data/cifar10/train", 30)
    small_tree(cifar / "test", tmp_path / "data/cifar10/test", 10)
    teacher = tmp_path / "runs/teachers/cifar10/resnet56/seed0/final.pt"
    teacher.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save({"model": build_model("resnet56", 10).state_dict()}, teacher)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_snippet(), "README.md python-api", "exec"), namespace)
    summary = namespace["summary"]
    run = tmp_path / "runs/python_kd"
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "summary.json", "last.pt",
                 "best.pt", "final.pt"):  # fmt: skip
        assert (run / name).is_file(), name
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and {"ce", "kd", "top1"} <= set(rows[0])
    assert summary["top1"] == rows[-1]["top1"] and summary["method"] == "kd"
    assert json.loads((run / "summary.json").read_text())["top1"] == summary["top1"]
    assert summary["teacher_top1"] >= 0 and "resnet20" in (run / "config.yaml").read_text()
