"""SLKD through the engine: exact resume of the SL-teachers, SLKD*'s two stages in order, the
student-only export, and a short run on the real CIFAR-10 archive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_runs import (
    assert_same_weights,
    run_interrupted_by_sigterm,
    same_metrics,
    short_cifar10_run,
    tiny_recipe,
)

from common.cli import main
from common.models import build_model
from slkd.method import SLKD

REPO = Path(__file__).resolve().parents[1]
SLKD_RECIPE = REPO / "slkd" / "recipes" / "cifar100" / "resnet56_resnet8.yaml"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    """A resnet8 teacher for the tiny 8-class data (random weights: only the plumbing is tested)."""
    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    torch.save({"model": build_model("resnet8", 8).state_dict()}, path)
    return path


def slkd_recipe(tmp_path: Path, teacher: Path, method: str = "", name: str = "slkd.yaml") -> Path:
    extra = f"method: {{name: slkd{method}}}\nteacher: {{name: resnet8, checkpoint: {teacher}}}\n"
    return tiny_recipe(tmp_path, extra, name)


def sl_state(ckpt: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in ckpt["method"].items() if k.startswith("sl_teachers.")}


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_resume_restores_the_sl_teachers_exactly(tmp_path: Path, teacher_file: Path, monkeypatch):
    recipe = slkd_recipe(tmp_path, teacher_file)
    straight = tmp_path / "straight"
    assert main(["--recipe", str(recipe), "--out", str(straight)]) == 0

    cut = tmp_path / "cut"
    run_interrupted_by_sigterm(main, recipe, cut, monkeypatch)  # epoch 2 of 3, mid-way
    saved = load(cut / "last.pt")
    assert saved["state"]["step_in_epoch"] == 3 and len(sl_state(saved)) > 0
    assert main(["--resume", str(cut)]) == 0

    weights = assert_same_weights(straight, cut)  # SL-teachers and student, buffers included
    assert set(sl_state({"method": weights})) == set(sl_state(saved))
    assert same_metrics(straight, cut)
    first = json.loads((straight / "metrics.jsonl").read_text().splitlines()[0])
    assert {"top1_sl_teacher1", "top1_sl_teacher2", "sl_kd", "sl_teacher2_kd"} <= set(first)

    # Deployment: best.pt holds the student alone.
    best = load(straight / "best.pt")
    student_keys = set(build_model("resnet8", 8).state_dict())
    assert set(best["model"]) == student_keys and "method" not in best


def spy_on_construction(monkeypatch) -> dict[str, dict[str, torch.Tensor]]:
    """Record the student's and SL-teachers' weights as each SLKD run builds them."""
    seen: dict[str, dict[str, torch.Tensor]] = {}
    build = SLKD.from_config.__func__

    def spy(cls, cfg, student, teacher, spec):
        method = build(cls, cfg, student, teacher, spec)
        seen["student"] = {k: v.clone() for k, v in method.student.state_dict().items()}
        seen["sl"] = {
            f"sl_teachers.{k}": v.clone() for k, v in method.sl_teachers.state_dict().items()
        }
        return method

    monkeypatch.setattr(SLKD, "from_config", classmethod(spy))
    return seen


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sequential_trains_sl_teachers_first_then_the_student(
    tmp_path: Path, teacher_file: Path, monkeypatch, capsys
) -> None:
    seen = spy_on_construction(monkeypatch)
    stage1_dir, stage2_dir = tmp_path / "stage1", tmp_path / "stage2"
    stage2 = slkd_recipe(
        tmp_path,
        teacher_file,
        f", mode: sequential_student, sl_teacher_checkpoint: {stage1_dir / 'last.pt'}",
        "stage2.yaml",
    )
    # Stage 2 refuses to start before stage 1 has produced the SL-teachers.
    assert main(["--recipe", str(stage2), "--out", str(tmp_path / "early")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sequential_sl_teachers" in err[0]

    stage1 = slkd_recipe(tmp_path, teacher_file, ", mode: sequential_sl_teachers", "stage1.yaml")
    assert main(["--recipe", str(stage1), "--out", str(stage1_dir), "train.epochs=2"]) == 0
    first = load(stage1_dir / "last.pt")
    assert same(first["model"], seen["student"])  # the student is untouched
    assert not same(sl_state(first), seen["sl"])  # the SL-teachers learnt
    row = json.loads((stage1_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert "top1_sl_teacher1" in row and "sl_teacher1_kd" in row and "kd" not in row

    assert main(["--recipe", str(stage2), "--out", str(stage2_dir), "train.epochs=2"]) == 0
    assert same(seen["sl"], sl_state(first))  # stage 2 starts from stage 1's SL-teachers
    second = load(stage2_dir / "last.pt")
    assert same(sl_state(second), sl_state(first))  # ... and leaves them unchanged
    assert not same(second["model"], seen["student"])  # while the student learns
    summary = json.loads((stage2_dir / "summary.json").read_text())
    assert "sl_teacher1_top1" in summary  # the frozen SL-teachers are measured once
    row = json.loads((stage2_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert {"ce", "kd", "sl_ce", "sl_kd"} <= set(row) and "sl_teacher1_kd" not in row


def test_short_slkd_run_on_real_cifar10(
    cifar10_teacher: Path, cifar10_jpg_root: Path, decode_cache_dir: Path, tmp_path: Path
) -> None:
    teacher = cifar10_teacher
    out = tmp_path / "slkd"
    overrides = [
        *short_cifar10_run(cifar10_jpg_root, decode_cache_dir, 2, 2000, 1000),
        "teacher.name=resnet8", f"teacher.checkpoint={teacher / 'final.pt'}",
        "student.name=resnet8",
    ]  # fmt: skip
    assert main(["--recipe", str(SLKD_RECIPE), "--out", str(out), *overrides]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "slkd" and summary["epochs"] == 2
    assert summary["top1_best"] > 17.0  # chance is 10% (a measured run: 25.3)
    for name in ("top1_sl_teacher1", "top1_sl_teacher2"):
        assert summary[name] > 15.0  # measured: 27.1, 27.4
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows[1]["sl_teacher1_kd"] < rows[0]["sl_teacher1_kd"]
