"""CQKD (cqkd.method): input sizes in training and evaluation, Eq. 2 by hand, the validation
ECE/entropy/NLL of a low-resolution student, a torchvision teacher file through the CLI.

ECE itself (hand-computed cases with empty bins, all-correct at confidence 1, a numpy
reference) is tested in tests/test_metrics.py; here the CQKD-specific part is that the numbers
in summary.json are those of the student fed the *downsampled* validation images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import functional as TF

from common.batch import Batch
from common.cli import main
from common.config import load_recipe
from common.data import build_data
from common.engine.build import build_distiller, seed_everything
from common.engine.distributed import DistInfo
from common.engine.trainer import Trainer
from common.methods.dml import DML, DMLOptions
from common.methods.resize import resize_to
from common.models import build_model
from cqkd.method import CQKD, CQKDOptions, LowRes, LowResOptions, cqkd_loss
from tests.test_metrics import _ece_reference
from tests.tiny_runs import tiny_recipe

CQKD_YAML = (
    "method: {name: cqkd, alpha: 0.5, temperature: 10.0}\n"
    "teacher: {name: resnet20, checkpoint: TEACHER}\n"
    "student: {name: resnet8, resolution: 8}\n"
    "train: {epochs: 1}\n"
)


class SizeSpy(nn.Module):
    """A zoo model that records the spatial size of every input it receives."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.sizes: list[tuple[int, int]] = []

    def forward(self, images: torch.Tensor):
        self.sizes.append(tuple(images.shape[-2:]))
        return self.net(images)


def spies(teacher_lowres: bool = False) -> tuple[CQKD, SizeSpy, SizeSpy]:
    student, teacher = SizeSpy(build_model("resnet8", 8)), SizeSpy(build_model("resnet20", 8))
    opts = CQKDOptions(teacher_sees_lowres=teacher_lowres)
    return CQKD(student, teacher, opts, resolution=8), student, teacher


def test_student_sees_low_resolution_teacher_full_in_training_and_eval() -> None:
    method, student, teacher = spies()
    images, targets = torch.randn(4, 3, 16, 16), torch.randint(0, 8, (4,))
    logits, losses = method.train()(Batch(images, targets))
    assert student.sizes == [(8, 8)] and teacher.sizes == [(16, 16)]
    assert logits.shape == (4, 8) and set(losses) == {"ce", "kd"}
    method.eval().forward_eval(images)
    assert student.sizes[-1] == (8, 8) and len(teacher.sizes) == 1  # teacher unused in eval


def test_released_quirk_feeds_the_teacher_the_low_resolution_batch() -> None:
    method, student, teacher = spies(teacher_lowres=True)
    method(Batch(torch.randn(2, 3, 16, 16), torch.tensor([0, 1])))
    assert student.sizes == [(8, 8)] and teacher.sizes == [(8, 8)]


def test_lowres_baseline_downsamples_without_a_teacher() -> None:
    student = SizeSpy(build_model("resnet8", 8))
    method = LowRes(student, None, LowResOptions(), resolution=12)
    _, losses = method(Batch(torch.randn(2, 3, 16, 16), torch.tensor([0, 1])))
    method.forward_eval(torch.randn(2, 3, 16, 16))
    assert student.sizes == [(12, 12), (12, 12)] and set(losses) == {"ce"}


def test_resize_is_bilinear_without_antialiasing_by_default() -> None:
    """The released code's torchvision (< 0.17) resized tensors without antialiasing: plain
    bilinear `F.interpolate`; `antialias=True` is today's torchvision tensor Resize."""
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert resize_to(x, 4) is x and resize_to(x, 0) is x
    plain = F.interpolate(x, size=(2, 2), mode="bilinear", align_corners=False)
    assert torch.equal(resize_to(x, 2), plain)
    assert plain[0, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]  # 2x2 block means at scale 2
    expected = TF.resize(x, [2, 2], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    assert torch.allclose(resize_to(x, 2, antialias=True), expected)
    assert not torch.allclose(resize_to(x, 2, antialias=True), plain)


@pytest.mark.parametrize("options", [CQKDOptions, LowResOptions, DMLOptions])
def test_every_low_resolution_method_defaults_to_the_released_resize(options) -> None:
    assert options().antialias is False


@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("method_name", ["cqkd", "lowres", "dml"])
def test_each_method_passes_its_antialias_option_to_the_resize(
    method_name: str, antialias: bool
) -> None:
    """Training and evaluation inputs (DML's peers included) are `resize_to` with the option."""
    x = torch.randn(2, 3, 16, 16)
    want = resize_to(x, 8, antialias=antialias)
    assert not torch.allclose(want, resize_to(x, 8, antialias=not antialias))
    if method_name == "dml":
        nets = [SizeSpy(build_model("resnet8", 8)) for _ in range(3)]
        method = DML(nets[0], nets[1:], DMLOptions(antialias=antialias), resolution=8)
    else:
        nets = [SizeSpy(build_model("resnet8", 8))]
        teacher = build_model("resnet20", 8) if method_name == "cqkd" else None
        cls, opts = (CQKD, CQKDOptions) if method_name == "cqkd" else (LowRes, LowResOptions)
        method = cls(nets[0], teacher, opts(antialias=antialias), resolution=8)
    seen: list[torch.Tensor] = []
    for net in nets:
        net.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    method.train()(Batch(x, torch.tensor([0, 1])))
    method.eval().forward_eval(x)
    for module in method.extra_eval_models().values():
        module(x)
    assert len(seen) == 2 * len(nets)  # training: every member; evaluation: every member
    assert all(torch.equal(inp, want) for inp in seen)


def test_eq2_loss_matches_a_hand_computation() -> None:
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g) * 3
    y = torch.tensor([0, 3, 6, 2, 2])
    alpha, tau = 0.3, 10.0
    s, t = zs.double().numpy(), zt.double().numpy()

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    ce = -log_softmax(s)[np.arange(5), y.numpy()].mean()
    lps, lpt = log_softmax(s / tau), log_softmax(t / tau)
    kl = (np.exp(lpt) * (lpt - lps)).sum(axis=1).mean()
    losses = cqkd_loss(zs, zt, y, alpha, tau)
    assert losses["ce"].item() == pytest.approx((1 - alpha) * ce, rel=1e-5)
    assert losses["kd"].item() == pytest.approx(alpha * tau**2 * kl, rel=1e-4)


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    """A random resnet20 (8 classes) saved as a bare state dict."""
    path = tmp_path_factory.mktemp("teacher") / "resnet20.pt"
    torch.manual_seed(1)
    torch.save(build_model("resnet20", 8).state_dict(), path)
    return path


def test_engine_feeds_the_sizes_and_reports_low_resolution_metrics(
    tmp_path: Path, teacher_file: Path
) -> None:
    """A whole (1-epoch) engine run: every student call is 8 px, every teacher call 16 px, and
    summary.json's ECE/entropy/NLL are the student's on the *downsampled* validation set."""
    recipe = tiny_recipe(tmp_path, CQKD_YAML.replace("TEACHER", str(teacher_file)))
    cfg = load_recipe(recipe, ["data.subset=64"])
    seed_everything(0)
    data = build_data(cfg.data, batch_size=cfg.train.batch_size, device=torch.device("cpu"), seed=0)
    method = build_distiller(cfg, data.spec)
    student_sizes: list[tuple[int, int]] = []
    teacher_sizes: list[tuple[int, int]] = []
    method.student.register_forward_pre_hook(lambda m, a: student_sizes.append(a[0].shape[-2:]))
    method.teacher.register_forward_pre_hook(lambda m, a: teacher_sizes.append(a[0].shape[-2:]))
    (tmp_path / "run").mkdir()
    summary = Trainer(cfg, method, data, tmp_path / "run", DistInfo(), torch.device("cpu")).fit()
    assert student_sizes and {tuple(s) for s in student_sizes} == {(8, 8)}
    assert teacher_sizes and {tuple(s) for s in teacher_sizes} == {(16, 16)}

    method.eval()
    with torch.no_grad():
        pairs = [(method.student(resize_to(x, 8))[0], y) for x, y in data.val]
    logits = torch.cat([p[0] for p in pairs]).double()
    targets = torch.cat([p[1] for p in pairs])
    assert summary["ece"] == pytest.approx(
        _ece_reference(logits.numpy(), targets.numpy(), 15), abs=1e-9
    )
    log_p = torch.log_softmax(logits, dim=1)
    assert summary["entropy"] == pytest.approx(-(log_p.exp() * log_p).sum(1).mean().item())
    assert summary["nll"] == pytest.approx(F.cross_entropy(logits, targets).item())
    # The same student at full resolution gives other numbers: the resize is really in eval.
    with torch.no_grad():
        full = torch.cat([method.student(x)[0] for x, _ in data.val]).double()
    assert not torch.allclose(full, logits)


def test_torchvision_resnet50_file_loads_as_teacher_through_the_cli(tmp_path: Path) -> None:
    """`teacher.checkpoint` = a torchvision-format file (bare state dict, torchvision keys)."""
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.resnet50(num_classes=8).eval()
    path = tmp_path / "resnet50-test.pth"
    torch.save(tv.state_dict(), path)
    yaml = CQKD_YAML.replace("resnet20", "resnet50").replace("TEACHER", str(path))
    recipe = tiny_recipe(tmp_path, yaml + "data: {val_subset: 32}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out), "data.subset=64"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    # The teacher measured by the engine is exactly torchvision's network on the same images.
    cfg = load_recipe(recipe, ["data.subset=64"])
    data = build_data(cfg.data, batch_size=32, device=torch.device("cpu"), seed=0)
    with torch.no_grad():
        correct = sum((tv(x).argmax(1) == y).sum().item() for x, y in data.val)
    assert summary["teacher_top1"] == pytest.approx(100.0 * correct / data.spec.val_size)


def test_a_resolution_above_the_images_is_refused(tmp_path: Path, teacher_file: Path, capsys):
    recipe = tiny_recipe(tmp_path, CQKD_YAML.replace("TEACHER", str(teacher_file)))
    code = main(["--recipe", str(recipe), "--out", str(tmp_path / "r"), "student.resolution=32"])
    assert code == 2
    assert "student.resolution=32 is larger than the images (16 px)" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["imagenet", "tiny_imagenet", "cifar10"])
def test_sweep_templates_validate_for_every_method_and_resolution(preset: str) -> None:
    """The templates under cqkd/recipes/base/ (skipped by test_config's shipped-recipe test)."""
    from common.models import model_names
    from tools.cqkd_sweep import METHOD_OVERRIDES, PRESETS

    recipe, resolutions = PRESETS[preset]
    for overrides in METHOD_OVERRIDES.values():
        for res in resolutions:
            cfg = load_recipe(recipe, [*overrides, f"student.resolution={res}"])
            assert cfg.student.resolution == res and cfg.method.name in ("lowres", "dml", "cqkd")
            assert {cfg.student.name, cfg.teacher.name} <= set(model_names())
            assert (cfg.optim.name, cfg.optim.schedule, cfg.optim.lr) == ("adamw", "onecycle", 1e-3)
            assert cfg.optim.pct_start == 0.1 and cfg.data.flip is False
    assert load_recipe(recipe, ["method.temperature=20"]).method.options.temperature == 20.0
