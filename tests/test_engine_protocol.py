"""What the engine logs and saves follows the papers' protocol: the epoch's own learning rate,
the last epoch's student as final.pt, one evaluation at the end, the entry point's method."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch
from tiny_runs import tiny_recipe

from common.cli import main, parse_args
from common.config import load_recipe
from common.data import build_data
from common.engine.build import build_distiller
from common.engine.ddp import TrainedPart, convert_sync_batchnorm
from common.engine.distributed import DistInfo
from common.engine.evaluate import evaluate
from common.engine.trainer import Trainer
from common.errors import ConfigError
from common.methods.kd import KD, KDOptions
from common.models import build_model


def rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_logged_lr_is_the_rate_each_epoch_trained_with(tmp_path: Path) -> None:
    extra = "optim: {schedule: multistep, milestones: [2], gamma: 0.1}\n"
    out = tmp_path / "run"
    assert main(["--recipe", str(tiny_recipe(tmp_path, extra)), "--out", str(out)]) == 0
    lrs = [r["lr"] for r in rows(out)]
    assert lrs == [pytest.approx(0.05), pytest.approx(0.05), pytest.approx(0.005)]


def test_final_pt_is_the_last_epoch_and_the_summary_reuses_its_evaluation(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["--recipe", str(tiny_recipe(tmp_path)), "--out", str(out)]) == 0
    final = torch.load(out / "final.pt", weights_only=True)
    last = torch.load(out / "last.pt", weights_only=True)
    assert final["epoch"] == 3 and final["arch"] == "resnet8"
    for key, value in last["model"].items():
        assert torch.equal(value, final["model"][key]), key
    summary = json.loads((out / "summary.json").read_text())
    assert summary["top1"] == rows(out)[-1]["top1"] == final["top1"]
    # The distillation recipes point at final.pt, never at best.pt (chosen on the test set).
    recipes = Path(__file__).resolve().parents[1].glob("*/recipes/**/*.yaml")
    for recipe in [*recipes, *Path("tools/recipes").glob("**/*.yaml")]:
        assert "seed0/best.pt" not in recipe.read_text(), recipe


def test_evaluation_runs_twice_per_epoch_never(tmp_path: Path, monkeypatch) -> None:
    """3 epochs: one evaluation each, and none more at the end."""
    calls = {"n": 0}
    original = Trainer.evaluate_all

    def counting(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(Trainer, "evaluate_all", counting)
    assert main(["--recipe", str(tiny_recipe(tmp_path)), "--out", str(tmp_path / "r")]) == 0
    assert calls["n"] == 3


def test_a_recipe_without_method_name_trains_the_entry_points_method(tmp_path: Path) -> None:
    recipe = tmp_path / "bare.yaml"
    recipe.write_text("student: {name: resnet8}\ndata: {name: synthetic}\n")
    assert load_recipe(recipe, [], default_method="dkd").method.name == "dkd"
    assert load_recipe(recipe).method.name == "vanilla"
    args = parse_args(["--recipe", str(recipe)], "python -m r2kd.train", "r2kd")
    assert args.default_method == "r2kd"
    stated = tmp_path / "stated.yaml"
    stated.write_text("method: {name: kd}\nstudent: {name: resnet8}\n")
    assert load_recipe(stated, [], default_method="dkd").method.name == "kd"


def kd_pair() -> KD:
    teacher = build_model("resnet8", 10).eval().requires_grad_(False)
    return KD(build_model("resnet8", 10), teacher, KDOptions())


def test_only_the_trained_networks_go_into_ddp() -> None:
    kd = kd_pair()
    part = TrainedPart(kd)
    teacher_tensors = {id(t) for t in [*kd.teacher.parameters(), *kd.teacher.buffers()]}
    assert {id(p) for p in part.parameters()} == {id(p) for p in kd.student.parameters()}
    assert not teacher_tensors & {id(b) for b in part.buffers()}


def test_sync_bn_converts_the_student_only_and_needs_cuda(tmp_path: Path) -> None:
    kd = kd_pair()
    convert_sync_batchnorm(kd)
    kinds = {type(m) for m in kd.student.modules()}
    assert torch.nn.SyncBatchNorm in kinds and torch.nn.BatchNorm2d not in kinds
    assert torch.nn.SyncBatchNorm not in {type(m) for m in kd.teacher.modules()}
    cfg = load_recipe(tiny_recipe(tmp_path), ["train.sync_bn=true"])
    cpu = torch.device("cpu")
    data = build_data(cfg.data, batch_size=32, device=cpu, seed=0)
    with pytest.raises(ConfigError, match="sync_bn"):
        Trainer(cfg, build_distiller(cfg, data.spec), data, tmp_path, DistInfo(0, 2), cpu)


def test_evaluation_of_an_empty_shard_takes_part_with_zeros() -> None:
    result = evaluate(lambda x: x, [], contextlib.nullcontext, torch.device("cpu"))
    assert result["count"] == 0 and result["top1"] == 0.0


def test_the_partial_last_batch_is_trained_on(tmp_path: Path) -> None:
    """199 images at batch 32: six full steps and one of 7 images (the reference protocol's
    DataLoader keeps it); `data.drop_last=true` drops it."""
    extra = "train: {epochs: 1}\ndata: {subset: 199, synthetic: {train_per_class: 25}}\n"
    out, dropped = tmp_path / "kept", tmp_path / "dropped"
    assert main(["--recipe", str(tiny_recipe(tmp_path, extra)), "--out", str(out)]) == 0
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["state"]["global_step"] == 7
    recipe = tiny_recipe(tmp_path, extra, "drop.yaml")
    assert main(["--recipe", str(recipe), "--out", str(dropped), "data.drop_last=true"]) == 0
    assert torch.load(dropped / "last.pt", weights_only=True)["state"]["global_step"] == 6


def test_a_step_leaves_its_batch_tensor_in_place_and_follows_the_resolved_layout(
    tmp_path: Path,
) -> None:
    """train_step must not rebind `batch.images` (under CUDA-graph capture that tensor is the
    static input every replay copies into), and converts the input to channels_last exactly
    when the resolved policy does (the weights' layout), not when the raw option says so."""
    cfg = load_recipe(tiny_recipe(tmp_path), ["train.channels_last=true"])
    cpu = torch.device("cpu")
    data = build_data(cfg.data, batch_size=32, device=cpu, seed=0)
    trainer = Trainer(cfg, build_distiller(cfg, data.spec), data, tmp_path, DistInfo(), cpu)
    seen: list[torch.Tensor] = []
    trainer.method.student.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    batch = next(iter(data.train))
    images = batch.images
    trainer.train_step(batch)
    assert batch.images is images
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    trainer.policy.channels_last = False
    seen.clear()
    trainer.train_step(next(iter(data.train)))
    assert not seen[0].is_contiguous(memory_format=torch.channels_last)


def test_restored_optimiser_scalars_return_to_the_parameters_device() -> None:
    """`Optimizer.load_state_dict` keeps a tensor lr where the checkpoint was read (the CPU);
    it must go back to the parameters' device (here 'meta' stands for the GPU)."""
    from common.engine.optim import scalars_to_parameters_device

    params = [torch.nn.Parameter(torch.randn(3, device="meta"))]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    state = opt.state_dict()
    state["param_groups"][0]["lr"] = torch.tensor(0.05)  # as read with map_location="cpu"
    opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"].device.type == "cpu"  # what torch does
    scalars_to_parameters_device(opt)
    assert opt.param_groups[0]["lr"].device.type == "meta"
