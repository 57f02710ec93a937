"""Dump / verify the reference state_dict fixtures of the model zoo.

Usage (from the repository root)::

    python -m tools.dev.dump_reference_keys                 # (re)write the fixtures
    python -m tools.dev.dump_reference_keys --check-against /path/to/mdistiller-checkout

Default mode writes ``tests/fixtures/reference_keys/<model>.json`` (state_dict key -> shape,
100 classes) from our models. The fixtures pin the key layout that the teacher checkpoints of
RepDistiller / mdistiller (``ckpt_epoch_240.pth``, weights under ``"model"``) use, so any
renaming in ``common/models`` breaks ``tests/test_models.py``.

How the fixtures were checked against the reference source: the reference definitions
(megvii-research/mdistiller ``mdistiller/models/cifar/{resnet,resnetv2,wrn,vgg,mobilenetv2,
ShuffleNetv1,ShuffleNetv2}.py`` and ``mdistiller/models/imagenet/{resnet,mobilenetv1}.py``; the
CIFAR ones have the same modules as HobbitLong/RepDistiller ``models/*.py``) were read and
instantiated from a local copy with ``--check-against``. For every zoo model that mode checks

1. the key -> shape maps are identical (hence also the count of keys per module type:
   conv / BN / linear, and every name, e.g. ``block1.layer.0.convShortcut.weight``,
   ``blocks.6.0.conv.7.running_var``, ``layer3.0.shortcut.1.weight``);
2. after copying the reference's (random, eval-mode) weights into ours, logits and every
   feature tensor the reference returns are equal on the same input (32x32 CIFAR, 224 ImageNet).

Without a reference checkout, the second option is unavailable and only the dump runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from common.models import build_model, model_names

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "reference_keys"
FIXTURE_MODELS = [
    "resnet8",
    "resnet20",
    "resnet56",
    "resnet110",
    "resnet8x4",
    "resnet32x4",
    "ResNet50",
    "wrn_16_2",
    "wrn_40_1",
    "wrn_40_2",
    "vgg8",
    "vgg13",
    "MobileNetV2",
    "ShuffleV1",
    "ShuffleV2",
]

# zoo name -> (reference file under mdistiller/models, constructor name)
REFERENCE_CONSTRUCTORS: dict[str, tuple[str, str]] = {
    **{
        name: ("cifar/resnet.py", name)
        for name in [f"resnet{d}" for d in (8, 14, 20, 32, 44, 56, 110)]
        + ["resnet8x4", "resnet32x4"]
    },
    **{name: ("cifar/resnetv2.py", name) for name in ("ResNet18", "ResNet34", "ResNet50")},
    **{name: ("cifar/wrn.py", name) for name in ("wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2")},
    **{
        name: ("cifar/vgg.py", f"{name}_bn")
        for name in ("vgg8", "vgg11", "vgg13", "vgg16", "vgg19")
    },
    "MobileNetV2": ("cifar/mobilenetv2.py", "mobile_half"),
    "ShuffleV1": ("cifar/ShuffleNetv1.py", "ShuffleV1"),
    "ShuffleV2": ("cifar/ShuffleNetv2.py", "ShuffleV2"),
    **{name: ("imagenet/resnet.py", name) for name in ("resnet18", "resnet34", "resnet50")},
    "MobileNetV1": ("imagenet/mobilenetv1.py", "MobileNetV1"),
}


def key_shapes(model: nn.Module) -> dict[str, list[int]]:
    return {key: list(value.shape) for key, value in model.state_dict().items()}


def dump_fixtures() -> None:
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    for name in FIXTURE_MODELS:
        target = FIXTURE_DIR / f"{name}.json"
        shapes = key_shapes(build_model(name, 100))
        lines = [f"  {json.dumps(key)}: {json.dumps(shape)}" for key, shape in shapes.items()]
        target.write_text("{\n" + ",\n".join(lines) + "\n}\n")
        print(f"wrote {target}")


def _load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"reference_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_reference(root: Path, name: str, num_classes: int) -> nn.Module:
    relative, constructor = REFERENCE_CONSTRUCTORS[name]
    module = _load_module(root / "mdistiller" / "models" / relative)
    if name == "MobileNetV1":
        return module.MobileNetV1()  # fixed 1000-way head in the reference
    if name == "MobileNetV2":
        return module.mobile_half(num_classes)
    return getattr(module, constructor)(num_classes=num_classes)


def _compare_outputs(ours: nn.Module, reference: nn.Module, size: int) -> list[str]:
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ref_logits, ref_feats = reference.eval()(x)
        our_logits, our_feats = ours.eval()(x)
    errors = []
    if not torch.allclose(ref_logits, our_logits, atol=1e-5):
        errors.append("logits differ")
    for key, ref_value in ref_feats.items():
        ref_list = ref_value if isinstance(ref_value, list) else [ref_value]
        our_value = our_feats[key]
        our_list = our_value if isinstance(our_value, list) else [our_value]
        if len(ref_list) != len(our_list):
            errors.append(f"{key}: {len(ref_list)} entries in reference, {len(our_list)} here")
            continue
        for index, (a, b) in enumerate(zip(ref_list, our_list)):
            if a.shape != b.shape or not torch.allclose(a, b, atol=1e-5):
                errors.append(f"{key}[{index}] differs")
    return errors


def check_against(root: Path) -> bool:
    torch.manual_seed(0)
    all_ok = True
    for name in model_names():
        imagenet = name in model_names("imagenet")
        num_classes = 1000 if imagenet else 100
        reference = _build_reference(root, name, num_classes)
        ours = build_model(name, num_classes)
        for module in reference.modules():  # non-trivial BN statistics for the output check
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.uniform_(-0.5, 0.5)
        errors = []
        if key_shapes(reference) != key_shapes(ours):
            ref_keys, our_keys = set(key_shapes(reference)), set(key_shapes(ours))
            errors.append(
                f"key/shape sets differ: only in reference {sorted(ref_keys - our_keys)[:3]}, "
                f"only here {sorted(our_keys - ref_keys)[:3]}"
            )
        else:
            ours.load_state_dict(reference.state_dict())
            errors = _compare_outputs(ours, reference, 224 if imagenet else 32)
        counts = _count_by_type(ours)
        status = "OK" if not errors else "FAIL: " + "; ".join(errors)
        print(f"{name:12s} {len(key_shapes(ours)):4d} keys {counts} {status}")
        all_ok &= not errors
    return all_ok


def _count_by_type(model: nn.Module) -> dict[str, int]:
    counts: dict[str, int] = {}
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)):
            counts[type(module).__name__] = counts.get(type(module).__name__, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check-against",
        type=Path,
        help="root of an mdistiller checkout: compare keys, shapes and outputs with it",
    )
    args = parser.parse_args()
    if args.check_against is None:
        dump_fixtures()
    elif not check_against(args.check_against):
        sys.exit(1)


if __name__ == "__main__":
    main()
