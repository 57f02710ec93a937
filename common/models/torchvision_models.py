"""Any torchvision classification model as a zoo model: `torchvision:<name>`.

`student.name: torchvision:convnext_tiny` (or `teacher.name`) builds
`torchvision.models.get_model(name, num_classes=...)` with random weights and wraps it in
`common.models.adapter.FeatureModel`, so it returns `(logits, features)` like the zoo.
`weights` (a recipe's `teacher.weights` / `student.weights`) names one of torchvision's weight
enums (`IMAGENET1K_V1`, `DEFAULT`, or the full `ResNet50_Weights.IMAGENET1K_V2`): they are
downloaded by torch.hub where a network exists (or read from its cache,
`~/.cache/torch/hub/checkpoints`); offline, a clear error names the file to fetch. A weight
file of one's own goes to `teacher.checkpoint` instead (`common.models.load_weights`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import torchvision
from torch import nn

from common.errors import CheckpointError, ConfigError
from common.models.adapter import FeatureModel

PREFIX = "torchvision:"


def is_torchvision_name(name: str) -> bool:
    """Whether `name` asks for a torchvision model (`torchvision:<name>`)."""
    return name.startswith(PREFIX)


def torchvision_classifiers() -> list[str]:
    """The names of torchvision's classification models."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def check_torchvision_name(name: str, key: str = "") -> None:
    """Raise ConfigError unless `torchvision:<arch>` names a torchvision classifier."""
    arch = name.removeprefix(PREFIX)
    known = torchvision_classifiers()
    if arch not in known:
        guess = difflib.get_close_matches(arch, known, n=1)
        hint = f"; did you mean '{PREFIX}{guess[0]}'?" if guess else ""
        where = f"{key} " if key else ""
        raise ConfigError(
            f"unknown torchvision model {where}'{arch}'{hint} (torchvision's classifiers: "
            f"{', '.join(known[:12])}, ...: torchvision.models.list_models())"
        )


def build_torchvision(
    name: str, num_classes: int, feature_nodes: Sequence[str] | None = None
) -> FeatureModel:
    """`torchvision:<arch>` with a `num_classes`-way head and random weights, as a zoo model."""
    check_torchvision_name(name)
    arch = name.removeprefix(PREFIX)
    model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    wrapped = FeatureModel(model, feature_nodes)
    wrapped.zoo_name = name
    return wrapped


def load_torchvision_weights(model: nn.Module, name: str, weights: str) -> None:
    """Load torchvision's `weights` (an enum member name) into `model` (`torchvision:<arch>`)."""
    arch = name.removeprefix(PREFIX)
    enum = torchvision.models.get_model_weights(arch)
    key = weights.split(".")[-1]
    choices = ["DEFAULT", *(member.name for member in enum)]
    if key not in choices:
        raise ConfigError(
            f"weights '{weights}' are not among torchvision's for {arch}: {', '.join(choices)}"
        )
    entry = enum.DEFAULT if key == "DEFAULT" else enum[key]
    classes = len(entry.meta.get("categories", []))
    head = _classes_of(model)
    if classes and head and classes != head:
        raise ConfigError(
            f"torchvision's {arch} {entry.name} weights have {classes} classes, the model {head}: "
            "use them on a data set of that many classes, or train a teacher on yours"
        )
    try:
        state = entry.get_state_dict(progress=False, check_hash=True)
    except OSError as err:  # urllib's URLError is an OSError: no network, no cached file
        raise CheckpointError(
            f"cannot get torchvision's {arch} {entry.name} weights ({err}); without a network, "
            f"put {entry.url.rsplit('/', 1)[-1]} into ~/.cache/torch/hub/checkpoints or give "
            "the file as teacher.checkpoint"
        ) from None
    model.load_state_dict(state)


def _classes_of(model: nn.Module) -> int:
    """The output width of the last Linear layer (0 when there is none)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else 0
