"""SoKD through the engine: a short run over each base, resume in the middle of the search,
two processes against one, and the mistakes a recipe can make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ddp_worker import PlainConvNet  # also registers test_plain_convnet
from test_distributed import launch
from tiny_runs import assert_same_weights, run_interrupted_by_sigterm, same_metrics, tiny_recipe

from common.cli import main
from common.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    """A random resnet20 whose BatchNorm statistics are calibrated on random images: the
    features of a trained network have that scale (an uncalibrated deep random net's grow
    through every residual block, which no distillation loss survives)."""
    torch.manual_seed(11)
    teacher = build_model("resnet20", 8).train()
    with torch.no_grad():
        for _ in range(20):
            teacher(torch.randn(32, 3, 16, 16))
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    torch.save({"model": teacher.state_dict()}, path)
    return path


def sokd_recipe(tmp_path: Path, teacher: Path, base: str, extra: str = "") -> Path:
    options = "{n_negatives: 16}" if base == "crd" else "{}"
    text = (
        f"method: {{name: sokd, base: {base}, base_options: {options}, search_epochs: 1"
        f"{', ' + extra if extra else ''}}}\n"
        f"teacher: {{name: resnet20, checkpoint: {teacher}}}\ntrain: {{epochs: 2}}\n"
    )
    return tiny_recipe(tmp_path, text, f"sokd_{base}.yaml")


def rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("base", ["fitnet", "at", "crd", "reviewkd"])
def test_a_short_run_over_each_base_searches_then_fixes_the_policy(
    tmp_path: Path, teacher_file: Path, base: str
) -> None:
    out = tmp_path / "run"
    assert (
        main(["--recipe", str(sokd_recipe(tmp_path, teacher_file, base)), "--out", str(out)]) == 0
    )
    first, second = rows(out)
    assert first["sokd_searching"] is True and second["sokd_searching"] is False
    assert "+" in second["sokd_subpolicy"] and len(second["sokd_alpha"]) == 36
    assert {"ce", "dam", "da"} <= set(first)
    assert ("feat" in first) == (base in ("at", "reviewkd"))  # FitNet's hint loss is replaced
    last = torch.load(out / "last.pt", weights_only=True)
    assert "policy.logits" in last["method"] and int(last["method"]["policy.chosen"]) >= 0
    assert "sokd_policy_optimizer" in last["method_extra"]
    best = torch.load(out / "best.pt", weights_only=True)
    assert set(best["model"]) == set(build_model("resnet8", 8).state_dict())


def test_resume_in_the_middle_of_the_search_is_bit_exact(
    tmp_path: Path, teacher_file: Path, monkeypatch
) -> None:
    recipe = sokd_recipe(tmp_path, teacher_file, "fitnet", "search_epochs: 2")
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert main(["--recipe", str(recipe), "--out", str(straight)]) == 0
    run_interrupted_by_sigterm(main, recipe, cut, monkeypatch)  # epoch 2 of 2, mid-search
    assert main(["--resume", str(cut)]) == 0
    assert_same_weights(straight, cut)
    assert same_metrics(straight, cut)


def test_two_processes_keep_one_policy_and_agree_with_one_process(tmp_path: Path) -> None:
    """The networks have no BatchNorm, but FitNet's regressor has: per-process statistics make
    the two runs agree closely, not exactly; the policy is the same on both processes."""
    torch.manual_seed(3)
    teacher = tmp_path / "teacher.pt"
    torch.save({"model": PlainConvNet(8).state_dict()}, teacher)
    extra = (
        "method: {name: sokd, base: fitnet, base_options: {hint_layer: 1}, search_epochs: 2,"
        " alpha: 1.0, beta: 1.0}\n"
        f"teacher: {{name: test_plain_convnet, checkpoint: {teacher}}}\n"
        "student: {name: test_plain_convnet}\ntrain: {epochs: 2}\n"
    )
    recipe = tiny_recipe(tmp_path, extra)
    one, two = tmp_path / "one", tmp_path / "two"
    launch(["--recipe", str(recipe), "--out", str(one)], 1)
    dump = str(tmp_path / "state")
    launch(["--recipe", str(recipe), "--out", str(two)], 2, {"KDZOO_DUMP_RANKS": dump})
    ranks = [torch.load(f"{dump}.rank{r}.pt", weights_only=True) for r in (0, 1)]
    for key in ("policy.logits", "policy.probability", "policy.magnitude"):
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    single = torch.load(one / "last.pt", weights_only=True)["method"]
    for key in ("policy.logits", "policy.probability", "policy.magnitude"):
        torch.testing.assert_close(single[key], ranks[0][key], rtol=0, atol=2e-3)  # BN stats
    assert rows(one)[0]["ce"] == pytest.approx(rows(two)[0]["ce"], rel=1e-3)


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        ("manual_augment: Solarize", "not one of: , ShearX"),
        ("base: fitnett", "not one of: at, crd, fitnet, reviewkd; did you mean 'fitnet'?"),
        ("base: kd", "method.base 'kd' is not one of: at, crd, fitnet, reviewkd"),
        ("base_options: {hint_layr: 2}", "method.base_options.hint_layr"),
        ("relaxation: gumbel", "weighted, sampled"),
    ],
)
def test_a_mistake_in_a_sokd_recipe_ends_in_one_line(
    tmp_path: Path, teacher_file: Path, capsys, extra: str, expect: str
) -> None:
    recipe = sokd_recipe(tmp_path, teacher_file, "fitnet", extra)
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0], err


def test_a_base_whose_maps_cannot_be_masked_is_refused(
    tmp_path: Path, teacher_file: Path, capsys
) -> None:
    """At 4 x 4 images CRD's last stage map is 1 x 1: nothing for DAM to mask."""
    recipe = sokd_recipe(tmp_path, teacher_file, "crd")
    args = ["data.synthetic.image_size=4", "data.crop_padding=0"]
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at least 2 x 2" in err[0], err
    assert "fitnet | at | crd | reviewkd" in err[0]
