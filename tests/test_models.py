"""Tests of the model zoo (common.models): sizes, feature contract, reference keys, loading.

The reference-key fixtures (tests/fixtures/reference_keys/<model>.json, key -> shape, 100
classes) are written by ``python -m tools.dev.dump_reference_keys``; that script's docstring says
how they were checked against the mdistiller / RepDistiller definitions (identical key/shape maps
and identical outputs after copying weights). Loading them here in the release format
``{"model": ..., "epoch": 240, "accuracy": ...}`` stands in for the released ckpt_epoch_240.pth.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from common.errors import UserError
from common.models import CheckpointError, build_model, load_weights, model_names

FIXTURES = Path(__file__).parent / "fixtures" / "reference_keys"
FEATURE_KEYS = {"feats", "preact_feats", "pooled_feat"}

# Millions of parameters at 100 classes, as published for the RepDistiller / CRD zoo.
EXPECTED_PARAMS_M = {
    "resnet8": 0.084,
    "resnet20": 0.278,
    "resnet56": 0.862,
    "resnet110": 1.737,
    "resnet8x4": 1.234,
    "resnet32x4": 7.434,
    "wrn_16_2": 0.703,
    "wrn_40_1": 0.570,
    "wrn_40_2": 2.255,
    "vgg8": 3.965,
    "vgg13": 9.462,
    "MobileNetV2": 0.813,
    "ShuffleV1": 0.949,
    "ShuffleV2": 1.356,
    "ResNet50": 23.705,
}


@functools.cache
def cached_model(name: str, num_classes: int = 100) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, num_classes)


def random_weights(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    return {
        key: torch.tensor(7) if key.endswith("num_batches_tracked") else torch.randn(shape)
        for key, shape in shapes.items()
    }


def reference_shapes(name: str) -> dict[str, list[int]]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# ---------------------------------------------------------------- sizes and feature contract


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS_M))
def test_parameter_count_matches_reference(name: str) -> None:
    with torch.device("meta"):
        model = build_model(name, 100)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert round(millions, 3) == EXPECTED_PARAMS_M[name]


@pytest.mark.parametrize("name", model_names("cifar"))
def test_cifar_forward_features(name: str) -> None:
    model = cached_model(name)
    channels = model.get_stage_channels()
    with torch.no_grad():
        logits, features = model(torch.randn(2, 3, 32, 32))
        assert logits.shape == (2, 100)
        assert set(features) == FEATURE_KEYS
        assert len(features["feats"]) == len(features["preact_feats"]) == len(channels)
        assert [f.shape[1] for f in features["feats"]] == channels
        assert [f.shape[1] for f in features["preact_feats"]] == channels
        assert [f.shape[0] for f in features["feats"]] == [2] * len(channels)
        classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        assert features["pooled_feat"].shape == (2, classifier.in_features)
        for size in (16, 64):
            logits, features = model(torch.randn(2, 3, size, size))
            assert logits.shape == (2, 100)
            assert [f.shape[1] for f in features["feats"]] == channels


def test_imagenet_mobilenetv1_forward_at_224() -> None:
    model = build_model("MobileNetV1", 1000).eval()
    with torch.no_grad():
        logits, features = model(torch.randn(1, 3, 224, 224))
    assert logits.shape == (1, 1000)
    assert set(features) == FEATURE_KEYS
    assert [f.shape[1] for f in features["feats"]] == model.get_stage_channels()
    assert [f.shape[-1] for f in features["feats"]] == [56, 28, 14, 7]
    assert features["pooled_feat"].shape == (1, 1024)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_imagenet_resnet_has_torchvision_keys(name: str) -> None:
    with torch.device("meta"):
        ours = build_model(name, 1000).state_dict()
        reference = getattr(torchvision.models, name)().state_dict()
    assert list(ours) == list(reference)
    assert all(ours[k].shape == reference[k].shape for k in reference)


def test_imagenet_resnet_matches_torchvision_logits_and_features() -> None:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(num_classes=10).eval()
    ours = build_model("resnet18", 10).eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        logits, features = ours(x)
        assert torch.allclose(logits, reference(x), atol=1e-5)
    assert (
        [f.shape[1] for f in features["feats"]]
        == ours.get_stage_channels()
        == [
            64,
            64,
            128,
            256,
            512,
        ]
    )
    for activated, preact in zip(features["feats"][1:], features["preact_feats"][1:]):
        assert torch.equal(activated, torch.relu(preact))


# ---------------------------------------------------------------- registry


def test_model_names_cover_both_zoos() -> None:
    names = [n for n in model_names() if not n.startswith("test_")]  # tests register their own
    assert set(model_names("cifar")) | set(model_names("imagenet")) == set(names)
    for name in ("resnet32x4", "ResNet50", "wrn_40_2", "vgg13", "MobileNetV2", "MobileNetV1"):
        assert name in names


def test_unknown_model_names_closest_and_lists_valid() -> None:
    with pytest.raises(ValueError) as error:
        build_model("resnet32x5", 100)
    message = str(error.value)
    assert isinstance(error.value, UserError)  # one `error:` line on the command line
    assert "'resnet32x5'" in message
    assert "Did you mean 'resnet32x4'?" in message
    assert "wrn_40_2" in message and "ShuffleV2" in message


# ---------------------------------------------------------------- checkpoint loading


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_release_format_checkpoint_loads(name: str, tmp_path: Path) -> None:
    weights = random_weights(reference_shapes(name))
    path = tmp_path / "ckpt_epoch_240.pth"
    torch.save({"model": weights, "epoch": 240, "accuracy": 79.42}, path)
    model = cached_model(name)
    info = load_weights(model, path, model_name=name)
    assert info == {"epoch": 240, "accuracy": 79.42}
    state = model.state_dict()
    assert set(state) == set(weights)
    first_key = next(iter(weights))
    assert torch.equal(state[first_key], weights[first_key])


def _resnet8_weights(num_classes: int = 100) -> dict[str, torch.Tensor]:
    return build_model("resnet8", num_classes).state_dict()


@pytest.mark.parametrize(
    ("layout", "expected_info"),
    [
        ("own", {"epoch": 3, "best_acc": 51.5, "optimizer": {"state": {}, "param_groups": []}}),
        ("state_dict", {"arch": "resnet8"}),
        ("bare", {}),
        ("ddp", {"epoch": 1}),
    ],
)
def test_checkpoint_layouts(layout: str, expected_info: dict, tmp_path: Path) -> None:
    weights = _resnet8_weights()
    if layout == "own":
        payload = {"model": weights, **expected_info}
    elif layout == "state_dict":
        payload = {"state_dict": weights, **expected_info}
    elif layout == "bare":
        payload = weights
    else:
        payload = {"model": {f"module.{k}": v for k, v in weights.items()}, **expected_info}
    path = tmp_path / "weights.pt"
    torch.save(payload, path)
    model = build_model("resnet8", 100)
    assert load_weights(model, str(path)) == expected_info
    assert torch.equal(model.state_dict()["fc.weight"], weights["fc.weight"])


def test_checkpoint_without_num_batches_tracked_loads(tmp_path: Path) -> None:
    weights = {k: v for k, v in _resnet8_weights().items() if "num_batches_tracked" not in k}
    path = tmp_path / "old.pth"
    torch.save({"model": weights}, path)
    model = build_model("resnet8", 100)
    load_weights(model, path)
    assert torch.equal(
        model.state_dict()["layer1.0.bn1.running_var"], weights["layer1.0.bn1.running_var"]
    )


def test_wrong_architecture_names_both_and_suggests_fit(tmp_path: Path) -> None:
    path = tmp_path / "resnet8x4_ckpt.pth"
    torch.save({"model": random_weights(reference_shapes("resnet8x4")), "epoch": 240}, path)
    with pytest.raises(CheckpointError) as error:
        load_weights(build_model("resnet32x4", 100), path, model_name="resnet32x4")
    message = str(error.value)
    assert str(path) in message
    assert "'resnet32x4'" in message
    assert "missing keys" in message
    assert "'resnet8x4' with 100 classes" in message


def test_wrong_class_count_suggests_same_architecture(tmp_path: Path) -> None:
    path = tmp_path / "cifar10.pth"
    torch.save({"model": _resnet8_weights(num_classes=10)}, path)
    with pytest.raises(CheckpointError) as error:
        load_weights(build_model("resnet8", 100), path, model_name="resnet8")
    message = str(error.value)
    assert "2 mis-shaped keys" in message and "fc.weight" in message
    assert "'resnet8' with 10 classes" in message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "ckpt_epoch_240.pth"
    with pytest.raises(CheckpointError, match="teacher.checkpoint") as error:
        load_weights(build_model("resnet8", 100), path)
    assert str(path) in str(error.value)
    assert isinstance(error.value, ValueError)


class _PickledThing:
    """Stands in for arbitrary pickled code inside a checkpoint."""


def test_pickled_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"model": _PickledThing()}, path)
    with pytest.raises(CheckpointError, match="not a plain-tensor checkpoint") as error:
        load_weights(build_model("resnet8", 100), path)
    assert "refused for safety" in str(error.value)


@pytest.mark.parametrize("content", ["not a checkpoint\n", "", "hello"])
def test_non_checkpoint_file_is_refused(content: str, tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text(content)
    with pytest.raises(CheckpointError, match="is not a PyTorch weights file"):
        load_weights(build_model("resnet8", 100), path)
