"""Name -> constructor table of the model zoo, with the names of RepDistiller / mdistiller.

The zoo is a `common.registry.Registry`: `@register_model("name")` (or `register_model(name,
factory)`) adds a `num_classes -> nn.Module` factory, and an installed package adds models as
entry points of the group `kdzoo.models`. CIFAR names follow ``model_dict`` of RepDistiller
(``models/__init__.py``) and mdistiller's ``cifar_model_dict`` (``vgg8`` ... ``vgg19`` are the
batch-norm variants, ``MobileNetV2`` is ``mobile_half``); ImageNet names follow mdistiller's
ImageNet zoo / torchvision.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from torch import nn

from common.errors import ConfigError
from common.models import (
    imagenet,
    mobilenetv2,
    resnet_cifar,
    resnetv2_cifar,
    shufflenetv1,
    shufflenetv2,
    vgg,
    wrn,
)
from common.models.torchvision_models import (
    build_torchvision,
    check_torchvision_name,
    is_torchvision_name,
)
from common.registry import Registry

ModelFactory = Callable[[int], nn.Module]

CIFAR_MODELS: dict[str, ModelFactory] = {
    "resnet8": resnet_cifar.resnet8,
    "resnet14": resnet_cifar.resnet14,
    "resnet20": resnet_cifar.resnet20,
    "resnet32": resnet_cifar.resnet32,
    "resnet44": resnet_cifar.resnet44,
    "resnet56": resnet_cifar.resnet56,
    "resnet110": resnet_cifar.resnet110,
    "resnet8x4": resnet_cifar.resnet8x4,
    "resnet32x4": resnet_cifar.resnet32x4,
    "ResNet18": resnetv2_cifar.ResNet18,
    "ResNet34": resnetv2_cifar.ResNet34,
    "ResNet50": resnetv2_cifar.ResNet50,
    "wrn_16_1": wrn.wrn_16_1,
    "wrn_16_2": wrn.wrn_16_2,
    "wrn_40_1": wrn.wrn_40_1,
    "wrn_40_2": wrn.wrn_40_2,
    "vgg8": vgg.vgg8,
    "vgg11": vgg.vgg11,
    "vgg13": vgg.vgg13,
    "vgg16": vgg.vgg16,
    "vgg19": vgg.vgg19,
    "MobileNetV2": mobilenetv2.MobileNetV2,
    "ShuffleV1": shufflenetv1.ShuffleV1,
    "ShuffleV2": shufflenetv2.ShuffleV2,
}

IMAGENET_MODELS: dict[str, ModelFactory] = {
    "resnet18": imagenet.resnet18,
    "resnet34": imagenet.resnet34,
    "resnet50": imagenet.resnet50,
    "MobileNetV1": imagenet.MobileNetV1,
}

MODELS: Registry[ModelFactory] = Registry("model", "kdzoo.models")
for _name, _factory in {**CIFAR_MODELS, **IMAGENET_MODELS}.items():
    MODELS.add(_name, _factory)
_FAMILIES = {"cifar": CIFAR_MODELS, "imagenet": IMAGENET_MODELS}


def model_names(family: str | None = None) -> list[str]:
    """All zoo names (installed packages' included), or those of one family: ``"cifar"``
    (32x32-style) or ``"imagenet"``."""
    if family is None:
        return MODELS.names()
    if family not in _FAMILIES:
        raise ValueError(f"Unknown model family {family!r}; expected one of {sorted(_FAMILIES)}")
    return list(_FAMILIES[family])


def closest_model_name(name: str) -> str:
    """The zoo name most similar to ``name`` (difflib ratio ignoring case, then with case)."""

    def similarity(valid: str) -> tuple[float, float]:
        ignoring_case = difflib.SequenceMatcher(None, name.lower(), valid.lower()).ratio()
        return ignoring_case, difflib.SequenceMatcher(None, name, valid).ratio()

    return max(MODELS.names(), key=similarity)


def register_model(
    name: str, factory: ModelFactory | None = None
) -> ModelFactory | Callable[[ModelFactory], ModelFactory]:
    """Add a `num_classes -> nn.Module` factory to the zoo under ``name``:
    ``register_model("my_net", factory)``, or ``@register_model("my_net")`` on the factory."""
    if factory is None:
        return MODELS.register(name)
    try:
        return MODELS.add(name, factory)
    except ValueError:
        raise ValueError(f"model {name!r} is already in the zoo") from None


def unknown_model_message(name: str, key: str = "") -> str:
    """One line: the unknown model (and the recipe key naming it), the nearest zoo name, all."""
    where = f"{key} " if key else "model "
    return (
        f"unknown {where}{name!r}. Did you mean {closest_model_name(name)!r}? "
        f"Valid models: {', '.join(MODELS.names())}"
    )


def check_model_name(name: str, key: str = "") -> None:
    """Raise ConfigError (naming `key`, e.g. ``student.name``) unless ``name`` is in the zoo
    or is ``torchvision:<a torchvision classifier>``."""
    if is_torchvision_name(name):
        check_torchvision_name(name, key)
    elif name not in MODELS:
        raise ConfigError(unknown_model_message(name, key))


def build_model(
    name: str, num_classes: int, feature_nodes: Sequence[str] | None = None
) -> nn.Module:
    """Build model ``name`` (a zoo name, or ``torchvision:<name>``) with a ``num_classes``-way
    classifier (random init); ``feature_nodes`` names the graph nodes a torchvision model
    returns as ``feats`` (default: its stage outputs; see ``common.models.adapter``).

    An unknown ``name`` raises ``ConfigError`` (a ``ValueError``) with the nearest name.
    """
    check_model_name(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if is_torchvision_name(name):
        return build_torchvision(name, num_classes, feature_nodes)
    model = MODELS.get(name)(num_classes)
    model.zoo_name = name
    return model
