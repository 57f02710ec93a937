"""Which feature maps DAFA augments and DAM masks for each base method (METHODS.md, decided):

- `fitnet`: the hint map (the student side through FitNet's own regressor, Phi_s); L_DA
  replaces FitNet's unmasked MSE;
- `at`: every stage map AT pairs (all after the stem, or the first ones with its
  `stage_pairing: first`; Phi_s: a ConvReg per stage onto the teacher's map; one DAM head per
  map shape); AT's own attention loss stays beside L_DA;
- `crd`: each network's last stage map before pooling (Phi_s: a ConvReg); CRD's NCE stays;
- `reviewkd`: the ABF-fused levels of spatial size above 1 (already in the teacher's shape:
  Phi_s is the fusion itself); HCL stays.

Each `*Maps` module holds the adapters it adds (trained with the student) and gives, for one
batch's features, the (student map, teacher map, head key) triples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from common.errors import ConfigError
from common.methods.conv_reg import ConvReg
from common.methods.feature_shapes import feature_shapes

Shape = tuple[int, ...]


@dataclass
class MapPair:
    """One distilled map: the student's, adapted to the teacher's shape, and the teacher's."""

    student: Tensor
    teacher: Tensor
    head: str  # the DAM head for maps of this shape


def head_key(shape: Sequence[int]) -> str:
    """`C x H x W` of a map (without the batch)."""
    return "x".join(str(int(v)) for v in shape[-3:])


def check_maskable(shapes: Sequence[Shape], base: str) -> None:
    """Refuse maps DAM cannot mask: not (C, H, W), or a single position."""
    for shape in shapes:
        if len(shape) != 3 or shape[1] < 2 or shape[2] < 2:
            raise ConfigError(
                f"method 'sokd' with base '{base}' would mask a feature of shape {tuple(shape)}, "
                "but DAM needs (C, H, W) maps of at least 2 x 2: choose another base "
                "(method.base: fitnet | at | crd | reviewkd) or a pair with spatial maps there"
            )


class FitNetMaps(nn.Module):
    """FitNet's hint map; its regressor is Phi_s."""

    replaces = ("feat",)

    def __init__(self, base: nn.Module, image_size: int) -> None:
        super().__init__()
        h = base.options.hint_layer
        self.shapes = [feature_shapes(base.teacher, image_size)["feats"][h]]

    def pairs(self, base: nn.Module, features: dict, teacher_features: dict) -> list[MapPair]:
        student, teacher = base.hint_pair(features, teacher_features)
        return [MapPair(student, teacher, head_key(teacher.shape))]


class StageMaps(nn.Module):
    """Stage maps with a ConvReg adapter each: AT's paired stages (`AT.stage_indices`, which
    follow its `stage_pairing`), or CRD's last stage of each network (their indices may differ:
    resnet50 has four stages after the stem, MobileNetV1 three)."""

    replaces: tuple[str, ...] = ()

    def __init__(self, base: nn.Module, image_size: int, last_only: bool) -> None:
        super().__init__()
        s = feature_shapes(base.student, image_size)["feats"]
        t = feature_shapes(base.teacher, image_size)["feats"]
        if last_only:
            self.stages = [(len(s) - 1, len(t) - 1)]
        else:
            self.stages = [(j, j) for j in base.stage_indices]
        self.shapes = [t[j_t] for _, j_t in self.stages]
        self.adapters = nn.ModuleList(ConvReg(s[j_s], t[j_t]) for j_s, j_t in self.stages)

    def pairs(self, base: nn.Module, features: dict, teacher_features: dict) -> list[MapPair]:
        out = []
        for adapter, (j_s, j_t) in zip(self.adapters, self.stages):
            teacher = teacher_features["feats"][j_t]
            out.append(MapPair(adapter(features["feats"][j_s]), teacher, head_key(teacher.shape)))
        return out


class ReviewKDMaps(nn.Module):
    """ReviewKD's fused levels of spatial size above 1 (the fusion is Phi_s)."""

    replaces: tuple[str, ...] = ()

    def __init__(self, base: nn.Module, image_size: int) -> None:
        super().__init__()
        t = feature_shapes(base.teacher, image_size)
        levels = [*t["preact_feats"][1:], (t["pooled_feat"][0], 1, 1)]
        self.levels = [i for i, shape in enumerate(levels) if shape[1] > 1 or shape[2] > 1]
        self.shapes = [levels[i] for i in self.levels]

    def pairs(self, base: nn.Module, features: dict, teacher_features: dict) -> list[MapPair]:
        fused, teacher = base.fused_levels(features, teacher_features)
        return [MapPair(fused[i], teacher[i], head_key(teacher[i].shape)) for i in self.levels]


def build_maps(base_name: str, base: nn.Module, image_size: int) -> nn.Module:
    """The maps module of `base_name` for the built base method `base`."""
    if base_name == "fitnet":
        maps: nn.Module = FitNetMaps(base, image_size)
    elif base_name in ("at", "crd"):
        maps = StageMaps(base, image_size, last_only=base_name == "crd")
    else:
        maps = ReviewKDMaps(base, image_size)
    check_maskable(maps.shapes, base_name)
    return maps
