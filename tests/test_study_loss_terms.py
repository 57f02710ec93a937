"""tools/studies/cifar10/loss_terms.py: the study's loss terms per row, mean over seeds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "studies" / "cifar10" / "loss_terms.py"


def _write(run: Path, rows: list[dict]) -> None:
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_mean_over_seeds_of_first_and_last_epoch_terms(tmp_path: Path) -> None:
    root = tmp_path / "cpu"
    for seed, (feat, top1) in enumerate([(2.0, 40.0), (4.0, 44.0)]):
        _write(root / "at" / f"seed{seed}", [
            {"epoch": 1, "top1": 30.0, "ce": 2.0, "feat": 10.0, "ece_peer1": 0.1},
            {"epoch": 2, "top1": top1, "ce": 1.0, "feat": feat, "top1_sl_teacher1": 9.0},
        ])  # fmt: skip
    _write(root / "sokd" / "seed0", [
        {"epoch": 1, "top1": 50.0, "da": 5.0, "sokd_subpolicy": "ShearX+Cutout",
         "sokd_subpolicy_prob": 0.0281, "sokd_alpha": [0.1, 0.2]},
    ])  # fmt: skip
    out = subprocess.run(
        [sys.executable, str(TOOL), str(root)], capture_output=True, text=True, check=True
    ).stdout
    at = next(line for line in out.splitlines() if line.startswith("| cpu/at "))
    assert "| 2 | 42.00 |" in at and "feat 10 -> 3" in at and "ce 2 -> 1" in at
    assert "ece_peer1" not in at and "top1_sl_teacher1" not in at
    sokd = next(line for line in out.splitlines() if line.startswith("| cpu/sokd "))
    assert "1 different over 1 seeds" in sokd and "0.0281" in sokd and "sokd_alpha" not in sokd


def test_a_missing_folder_is_one_error_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(TOOL), str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and len(result.stderr.splitlines()) == 1
