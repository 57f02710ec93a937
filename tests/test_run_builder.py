"""The command line, `fit()` and the sweep put a run together through one builder
(`common.engine.run_builder`): the same config.yaml for the same recipe, the same refusal for the
same mistake, the device policy resolved once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from tiny_runs import tiny_recipe

from common.cli import main, one_line
from common.config import load_recipe
from common.data import build_data
from common.engine import fit
from common.engine import run_builder as builder
from common.engine import trainer as trainer_module
from common.engine.build import build_distiller
from common.errors import ConfigError, UserError
from common.methods import Vanilla
from common.models import build_model
from common.report.grouping import flatten
from common.sweep.check import check_runs
from common.sweep.plan import PlannedRun

pytestmark = pytest.mark.usefixtures("one_thread")


def saved(run: Path) -> dict:
    return flatten(yaml.safe_load((run / "config.yaml").read_text()))


def fit_recipe(recipe: Path, out: Path, overrides: list[str], **kwargs):
    """`fit()` given what the recipe describes: its data (build_data), distiller and keys."""
    cfg = load_recipe(recipe, overrides)
    data = build_data(cfg.data, batch_size=cfg.train.batch_size, device="cpu", seed=0)
    return fit(build_distiller(cfg, data.spec), data, epochs=cfg.train.epochs, out=out,
               optimizer=cfg.optim, train=cfg.train, device=cfg.device,
               writers=cfg.log.writers, name=cfg.name, **kwargs)  # fmt: skip


def test_fit_and_the_command_line_write_the_same_config_for_one_recipe(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path)
    overrides = ["train.epochs=1", "log.writers=[jsonl]"]
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "cli"), *overrides]) == 0
    fit_recipe(recipe, tmp_path / "fit", overrides)
    cli, python = saved(tmp_path / "cli"), saved(tmp_path / "fit")
    assert set(cli) == set(python)  # every key, git_commit and created included
    assert cli["git_commit"] == python["git_commit"] == builder.git_commit()
    assert {k: v for k, v in cli.items() if k != "created"} == {
        k: v for k, v in python.items() if k != "created"
    }


def test_fit_on_its_own_loaders_records_no_data_defaults(tmp_path: Path) -> None:
    images, labels = torch.randn(16, 3, 8, 8), torch.arange(16) % 4
    pairs = list(zip(images, labels))
    train = torch.utils.data.DataLoader(pairs, batch_size=8)
    val = torch.utils.data.DataLoader(pairs, batch_size=16)
    torch.manual_seed(0)
    fit(Vanilla(build_model("resnet8", 4), None), train, val, epochs=1, out=tmp_path / "run",
        device="cpu", writers=["jsonl"])  # fmt: skip
    config = yaml.safe_load((tmp_path / "run/config.yaml").read_text())
    assert config["data"] == {"name": "dataloader"}
    assert config["git_commit"] == builder.git_commit() and config["created"]
    assert config["train"]["batch_size"] == 8 and config["student"]["name"] == "resnet8"


def test_a_bad_batch_size_is_the_same_line_from_every_front_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = tiny_recipe(tmp_path)
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "a"), "train.batch_size=0"]) == 2
    cli_line = capsys.readouterr().err.strip()
    model = Vanilla(build_model("resnet8", 4), None)
    with pytest.raises(ConfigError) as refused:
        fit(model, [], [], epochs=1, out=tmp_path / "b", train={"batch_size": 0})
    assert cli_line == f"error: {one_line(refused.value)}"
    assert cli_line.endswith("train.batch_size 0 is out of range: must be >= 1")

    # the batch split over the processes: the command line under torchrun, the sweep for nproc
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "c"), "train.batch_size=33"]) == 2
    cli_line = capsys.readouterr().err.strip()
    monkeypatch.delenv("WORLD_SIZE")
    run = PlannedRun("tiny/seed0", tmp_path / "d", recipe, 0, ["train.batch_size=33"])
    with pytest.raises(UserError) as swept:
        check_runs([run], world_size=2)
    assert str(swept.value).startswith("run tiny/seed0")
    assert cli_line.endswith(one_line(swept.value).split(": ", 1)[1])
    assert "not divisible by the world size 2" in cli_line
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_the_device_policy_is_resolved_once_and_refuses_before_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    resolve = builder.resolve_policy
    monkeypatch.setattr(builder, "resolve_policy", lambda *a: calls.append(a) or resolve(*a))
    monkeypatch.setattr(trainer_module, "resolve_policy", lambda *a: pytest.fail("resolved twice"))
    recipe = tiny_recipe(tmp_path)
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "run"), "train.epochs=1"]) == 0
    assert len(calls) == 1
    with pytest.raises(ConfigError, match="train.graph=cudagraph"):
        fit_recipe(recipe, tmp_path / "graph", ["train.graph=cudagraph"])
    assert not (tmp_path / "graph").exists()


def test_fit_keeps_the_run_folder_rules_in_its_own_words(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ConfigError, match="is a file; choose a folder with out="):
        fit_recipe(recipe, tmp_path / "a_file", ["train.epochs=1"])
    fit_recipe(recipe, tmp_path / "run", ["train.epochs=1"])
    with pytest.raises(ConfigError, match="pass resume=True to continue it"):
        fit_recipe(recipe, tmp_path / "run", ["train.epochs=1"])
    before = (tmp_path / "run/config.yaml").read_text()
    with pytest.raises(UserError, match="has already trained 1 epoch"):
        fit_recipe(recipe, tmp_path / "run", ["train.epochs=1"], resume=True)
    fit_recipe(recipe, tmp_path / "run", ["train.epochs=2"], resume=True)
    after = yaml.safe_load((tmp_path / "run/config.yaml").read_text())
    assert after["train"]["epochs"] == 2  # config.yaml says what the run is now
    assert after["created"] == yaml.safe_load(before)["created"]  # the run's own meta kept
