"""The training engine: schedules, run directory, resume exactness, signals, NaN, messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from tiny_runs import assert_same_weights, run_interrupted_by_sigterm, same_metrics, tiny_recipe

from common.cli import main
from common.config.schema import OptimConfig
from common.engine.checkpoint import atomic_save
from common.engine.optim import build_scheduler
from common.methods.base import Distiller
from common.methods.registry import register_method


def lrs(cfg: OptimConfig, steps_per_epoch: int, epochs: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch, epochs)
    out = []
    for _ in range(steps_per_epoch * epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_multistep_decays_at_the_milestone_epochs() -> None:
    cfg = OptimConfig(lr=0.05, schedule="multistep", milestones=[2, 3], gamma=0.1)
    got = lrs(cfg, steps_per_epoch=4, epochs=4)
    assert got[:8] == [pytest.approx(0.05)] * 8
    assert got[8:12] == [pytest.approx(0.005)] * 4
    assert got[12:] == [pytest.approx(0.0005)] * 4


def test_cosine_with_warmup_and_onecycle() -> None:
    cfg = OptimConfig(lr=0.1, schedule="cosine", warmup_epochs=1, min_lr=0.0)
    got = lrs(cfg, steps_per_epoch=10, epochs=5)
    assert got[0] == pytest.approx(0.01) and got[9] == pytest.approx(0.1)
    assert got[-1] < 0.001 and all(a >= b for a, b in zip(got[10:], got[11:]))
    one = OptimConfig(lr=1e-3, schedule="onecycle", pct_start=0.1)
    got = lrs(one, steps_per_epoch=10, epochs=10)
    peak = max(range(len(got)), key=got.__getitem__)
    assert got[peak] == pytest.approx(1e-3, rel=1e-3) and 8 <= peak <= 11
    assert got[-1] < 1e-5


def test_atomic_save_never_spoils_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    atomic_save({"x": torch.ones(3)}, path)

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        atomic_save({"x": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.ones(3))


def test_run_directory_contents(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["--recipe", str(tiny_recipe(tmp_path)), "--out", str(out)]) == 0
    assert {"config.yaml", "metrics.jsonl", "summary.json", "last.pt", "best.pt"} <= {
        p.name for p in out.iterdir()
    }
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    for key in ("epoch", "lr", "top1", "top5", "ce", "loss"):
        assert key in lines[0]
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "top1",
        "top1_best",
        "top5",
        "ece",
        "nll",
        "entropy",
        "train_seconds",
        "images_per_second",
    ):
        assert key in summary
    assert summary["top1_best"] == max(r["top1"] for r in lines)
    assert "git_commit" in (out / "config.yaml").read_text()
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["arch"] == "resnet8" and "model" in best


def test_flags_may_follow_the_overrides(tmp_path: Path) -> None:
    """`--out` between or after `key=value` overrides: every override still applies."""
    out = tmp_path / "run"
    argv = ["--recipe", str(tiny_recipe(tmp_path)), "train.seed=5", "--out", str(out)]
    assert main([*argv, "train.epochs=1"]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    assert "seed: 5" in (out / "config.yaml").read_text()


def test_resume_after_sigterm_mid_epoch_is_bit_exact(tmp_path: Path, monkeypatch) -> None:
    recipe = tiny_recipe(tmp_path)
    straight = tmp_path / "straight"
    assert main(["--recipe", str(recipe), "--out", str(straight)]) == 0

    cut = tmp_path / "cut"
    run_interrupted_by_sigterm(main, recipe, cut, monkeypatch)  # epoch 2 of 3, mid-way
    state = torch.load(cut / "last.pt", weights_only=True)["state"]
    assert state["epoch"] == 1 and state["step_in_epoch"] == 3
    assert main(["--resume", str(cut)]) == 0

    assert_same_weights(straight, cut, part="model")
    assert same_metrics(straight, cut)


def test_existing_run_is_never_overwritten(tmp_path: Path, capsys) -> None:
    recipe = tiny_recipe(tmp_path, "train: {epochs: 1}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out)]) == 0
    before = (out / "last.pt").read_bytes()
    assert main(["--recipe", str(recipe), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a run" in err[0] and "--resume" in err[0]
    assert (out / "last.pt").read_bytes() == before


@register_method("test_nan_after_steps")
class NanAfterSteps(Distiller):
    """Test-only: cross-entropy that turns NaN from the 8th step on."""

    needs_teacher = False
    steps = 0

    def forward_train(self, batch):
        logits, _ = self.student(batch.images)
        ce = torch.nn.functional.cross_entropy(logits, batch.targets)
        type(self).steps += 1
        if type(self).steps >= 8:
            ce = ce * float("nan")
        return logits, {"ce": ce, "aux": ce.detach() * 0}


def test_nan_loss_stops_with_step_and_losses_and_keeps_checkpoint(tmp_path: Path, capsys) -> None:
    NanAfterSteps.steps = 0
    recipe = tiny_recipe(tmp_path, "method: {name: test_nan_after_steps}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "non-finite at step 7 (epoch 2)" in err[0] and "ce=nan" in err[0]
    kept = torch.load(out / "last.pt", weights_only=True)
    assert kept["state"]["epoch"] == 1  # the last good epoch's checkpoint survives
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def test_user_mistakes_give_one_clear_line(tmp_path: Path, capsys) -> None:
    recipe = tiny_recipe(tmp_path)
    assert main(["--recipe", str(recipe), "train.epohcs=2"]) == 2
    assert "did you mean 'train.epochs'" in one_error_line(capsys)

    missing = tmp_path / "no_such_folder"
    assert main(["--recipe", str(recipe), "data.name=cifar100", f"data.root={missing}"]) == 2
    line = one_error_line(capsys)
    assert str(missing) in line and "data.root" in line

    kd = tiny_recipe(tmp_path, "method: {name: kd}\nteacher: {name: resnet20}\n", "kd.yaml")
    assert main(["--recipe", str(kd), "--out", str(tmp_path / "k1")]) == 2
    assert "teacher.checkpoint" in one_error_line(capsys)

    assert main(["--recipe", str(kd), f"teacher.checkpoint={tmp_path / 'nope.pt'}"]) == 2
    assert "nope.pt" in one_error_line(capsys)

    # A real checkpoint of the wrong architecture names both.
    src = tmp_path / "r8"
    assert main(["--recipe", str(recipe), "--out", str(src), "train.epochs=1"]) == 0
    assert (
        main(
            [
                "--recipe",
                str(kd),
                "--out",
                str(tmp_path / "k2"),
                f"teacher.checkpoint={src / 'best.pt'}",
            ]
        )
        == 2
    )
    line = one_error_line(capsys)
    assert "resnet20" in line and "resnet8" in line

    assert main(["--resume", str(tmp_path / "never_ran")]) == 2
    assert "cannot resume" in one_error_line(capsys)


def test_bf16_autocast_with_channels_last_runs_and_resumes_cleanly(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, "train: {epochs: 1, amp: bf16, channels_last: true}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["top1"] > 0 and summary["nll"] == summary["nll"]  # finite, not NaN
    created = yaml.safe_load((out / "config.yaml").read_text())["created"]
    assert main(["--resume", str(out), "train.epochs=2"]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    saved = yaml.safe_load((out / "config.yaml").read_text())  # says what the run now is
    assert saved["train"]["epochs"] == 2 and saved["created"] == created
