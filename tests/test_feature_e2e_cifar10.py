"""FitNet, AT, CRD and ReviewKD on the real CIFAR-10 archive from the shared test teacher: one
short epoch each: the path works on real data (their ranking is the CIFAR-10 study's, README.md
"Results")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_runs import short_cifar10_run

from common.cli import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")
OWN = {"fitnet": "regressor.", "at": None, "crd": "memory.", "reviewkd": "fusion."}
LOSS = {"fitnet": "feat", "at": "feat", "crd": "crd", "reviewkd": "feat"}


@pytest.mark.parametrize("method", ["fitnet", "at", "crd", "reviewkd"])
def test_a_short_real_run_trains(
    method: str, cifar10_teacher: Path, cifar10_jpg_root: Path, decode_cache_dir: Path, tmp_path
) -> None:
    recipe = REPO / "tools" / "recipes" / method / "cifar100" / "resnet56_resnet20.yaml"
    overrides = [
        *short_cifar10_run(cifar10_jpg_root, decode_cache_dir, 1, 2000, 1000),
        "teacher.name=resnet8", f"teacher.checkpoint={cifar10_teacher / 'final.pt'}",
        "student.name=resnet8",
        *(["method.n_negatives=1024"] if method == "crd" else []),  # K below the set's size
    ]  # fmt: skip
    out = tmp_path / method
    assert main(["--recipe", str(recipe), "--out", str(out), *overrides]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["top1"] > 15.0  # chance is 10%
    row = json.loads((out / "metrics.jsonl").read_text())
    assert row[LOSS[method]] == row[LOSS[method]] and row[LOSS[method]] > 0
    if OWN[method]:
        last = torch.load(out / "last.pt", weights_only=True)
        assert any(k.startswith(OWN[method]) for k in last["method"])
