"""`train.graph`: compile gives the eager result within float tolerance on the CPU;
cudagraph is refused with one line off CUDA and for methods that cannot be captured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ddp_worker import PlainConvNet  # noqa: F401  (registers test_plain_convnet)
from tiny_runs import tiny_recipe

from common.cli import main
from common.methods import get_method
from common.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_compile_trains_like_eager_on_the_cpu(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, "student: {name: test_plain_convnet}\ntrain: {epochs: 1}\n")
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    assert main(["--recipe", str(recipe), "--out", str(eager)]) == 0
    assert main(["--recipe", str(recipe), "--out", str(compiled), "train.graph=compile"]) == 0
    a = torch.load(eager / "last.pt", weights_only=True)["model"]
    b = torch.load(compiled / "last.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    row_a, row_b = (json.loads((r / "metrics.jsonl").read_text()) for r in (eager, compiled))
    assert row_a["ce"] == pytest.approx(row_b["ce"], rel=1e-4)


def test_cudagraph_is_refused_off_cuda_in_one_line(tmp_path: Path, capsys) -> None:
    recipe = tiny_recipe(tmp_path, "train: {epochs: 1, graph: cudagraph}\n")
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "r"), "device=cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.graph=cudagraph" in err[0] and "compile" in err[0]
    assert not (tmp_path / "r").exists()


def test_methods_that_cannot_be_captured_say_why() -> None:
    teacher = build_model("resnet8", 4).eval()
    crd = get_method("crd")(build_model("resnet8", 4), teacher, image_size=16,
                            train_targets=torch.arange(8) % 4)  # fmt: skip
    assert "generator" in crd.capturable()
    kd = get_method("kd")(build_model("resnet8", 4), teacher)
    assert kd.capturable() == ""
    r2kd_cls = get_method("r2kd")
    auto = r2kd_cls(build_model("resnet8", 4), teacher, r2kd_cls.Options(augment="autoaugment"))
    assert "autoaugment" in auto.capturable()


def test_auto_means_bf16_nhwc_and_a_bf16_teacher_on_cuda_and_fp32_on_the_cpu() -> None:
    from common.config.schema import TrainConfig
    from common.engine.device_policy import resolve_policy

    cpu = resolve_policy(TrainConfig(), torch.device("cpu"))
    assert (cpu.amp, cpu.channels_last, cpu.teacher_bf16, cpu.amp_dtype) == (
        "none",
        False,
        False,
        None,
    )
    gpu = resolve_policy(TrainConfig(), torch.device("cuda", 0))
    assert (gpu.amp, gpu.channels_last, gpu.teacher_bf16) == ("bf16", True, True)
    assert gpu.amp_dtype == torch.bfloat16
    explicit = resolve_policy(TrainConfig(amp="none", channels_last=False), torch.device("cuda", 0))
    assert (explicit.amp, explicit.channels_last, explicit.teacher_bf16) == ("none", False, False)
    torch.backends.cudnn.benchmark = False  # resolve_policy set it for the fake CUDA device


def test_checkpoints_are_written_in_the_background_and_atomically(tmp_path: Path) -> None:
    from common.engine.checkpoint import BackgroundWriter

    writer = BackgroundWriter()
    state = {"w": torch.ones(3)}
    writer.save(state, tmp_path / "last.pt")
    state["w"].add_(1)  # the loop goes on changing its tensors: the write holds a copy
    writer.wait()
    assert torch.equal(torch.load(tmp_path / "last.pt", weights_only=True)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left
    writer.close()
