"""Any torchvision classifier as a student or teacher (`torchvision:<name>`), features from
torchvision's feature extraction, random weights (nothing is downloaded)."""

from __future__ import annotations

import copy
import json
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from tiny_runs import tiny_recipe

from common.cli import main
from common.errors import CheckpointError, ConfigError
from common.models import FeatureModel, build_model, load_weights, register_model
from common.models.torchvision_models import load_torchvision_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_torchvision_model_keeps_its_keys_outputs_and_stage_features() -> None:
    torch.manual_seed(0)
    plain = torchvision.models.resnet18(num_classes=10).eval()
    wrapped = FeatureModel(copy.deepcopy(plain)).eval()
    assert list(wrapped.state_dict()) == list(plain.state_dict())  # weight files load unchanged
    assert wrapped.feature_nodes == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert wrapped.get_stage_channels() == [64, 64, 128, 256, 512]
    x = torch.randn(2, 3, 64, 64)
    logits, features = wrapped(x)
    torch.testing.assert_close(logits, plain(x))
    assert [tuple(f.shape[1:]) for f in features["feats"]] == [
        (64, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)
    ]  # fmt: skip
    assert features["pooled_feat"].shape == (2, 512)
    copied = copy.deepcopy(wrapped)  # R2KD prunes a copy of the teacher
    torch.testing.assert_close(copied(x)[0], logits)


def test_named_nodes_and_other_families() -> None:
    convnext = build_model("torchvision:convnext_tiny", 5)
    assert convnext.get_stage_channels() == [96, 192, 384, 768]
    named = build_model("torchvision:resnet18", 5, ["layer2", "layer4"])
    feats = named(torch.randn(1, 3, 64, 64))[1]["feats"]
    assert [f.shape[1] for f in feats] == [128, 512]
    with pytest.raises(ConfigError, match="did you mean 'torchvision:resnet18'"):
        build_model("torchvision:resnet19", 5)


def test_a_torchvision_weight_file_loads_as_a_teacher_file(tmp_path: Path) -> None:
    state = torchvision.models.mobilenet_v3_small(num_classes=7).state_dict()
    torch.save(state, tmp_path / "mnv3.pth")
    model = build_model("torchvision:mobilenet_v3_small", 7)
    load_weights(model, tmp_path / "mnv3.pth")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_torchvision_weights_by_name_fail_clearly_offline(monkeypatch) -> None:
    model = build_model("torchvision:resnet18", 1000)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(CheckpointError, match="hub/checkpoints"):
        load_torchvision_weights(model, "torchvision:resnet18", "IMAGENET1K_V1")
    with pytest.raises(ConfigError, match="1000 classes"):
        load_torchvision_weights(build_model("torchvision:resnet18", 8), "torchvision:resnet18",
                                 "DEFAULT")  # fmt: skip
    with pytest.raises(ConfigError, match="IMAGENET1K_V1"):
        load_torchvision_weights(model, "torchvision:resnet18", "IMAGENET9K")


@pytest.mark.parametrize(
    ("method", "teacher", "student", "size"),
    [
        ("kd", "torchvision:resnet18", "torchvision:mobilenet_v3_small", 32),
        ("dkd", "torchvision:vit_b_16", "torchvision:resnet18", 224),
    ],
)
def test_kd_and_dkd_train_a_step_between_torchvision_models(
    tmp_path: Path, method: str, teacher: str, student: str, size: int
) -> None:
    teacher_file = tmp_path / "teacher.pt"
    torch.manual_seed(0)
    torch.save({"model": build_model(teacher, 4).state_dict()}, teacher_file)
    extra = (
        f"method: {{name: {method}}}\n"
        f"teacher: {{name: '{teacher}', checkpoint: {teacher_file}}}\n"
        f"student: {{name: '{student}'}}\n"
        "train: {epochs: 1, batch_size: 4}\n"
        "data: {synthetic: {num_classes: 4, num_superclasses: 2, train_per_class: 1,"
        f" val_per_class: 1, image_size: {size}}}, crop_padding: 0}}\n"
    )
    out = tmp_path / "run"
    assert main(["--recipe", str(tiny_recipe(tmp_path, extra)), "--out", str(out)]) == 0
    row = json.loads((out / "metrics.jsonl").read_text())
    losses = ("ce", "kd") if method == "kd" else ("ce", "tckd", "nckd")
    assert all(row[name] == row[name] and row[name] >= 0 for name in losses)  # finite
    final = torch.load(out / "final.pt", weights_only=True)["model"]
    assert set(final) == set(build_model(student, 4).state_dict())


class BareTensorNet(torch.nn.Module):
    """A classifier whose forward returns logits alone (not the zoo's pair)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))


register_model("test_bare_tensor_net", BareTensorNet)


def test_a_model_returning_a_bare_tensor_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    extra = "student: {name: test_bare_tensor_net}\ntrain: {epochs: 1}\n"
    recipe = tiny_recipe(tmp_path, extra)
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "returns a Tensor of shape" in err[0] and "FeatureModel" in err[0]
