"""The maps DAFA augments and DAM masks, over any feature method (METHODS.md, decided): the
base's own (student, teacher) pairs (`FeatureDistiller.feature_pairs`), which this module
never names by method:

- pairs the base already adapted to the teacher's shape (FitNet's regressed hint, ReviewKD's
  ABF-fused levels) are used as they are: the base's adapter is Phi_s;
- pairs of the networks' own maps (AT's paired stages, CRD's last stage of each network) get a
  ConvReg each onto the teacher's map (Phi_s), trained with the student;
- pairs whose teacher map is not a (C, H, W) map of at least 2 x 2 are left out (ReviewKD's
  pooled level); a base with no such pair is refused;
- the base's `replaceable_losses` (FitNet's hint MSE) give way to L_DA; its other losses (AT's
  attention, CRD's NCE, ReviewKD's HCL) stay beside it.

The step computes the pairs once and hands them to both the base's losses and SoKD's, so an
adapter runs (and its BatchNorm statistics move) once a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from common.errors import ConfigError
from common.methods.conv_reg import ConvReg
from common.methods.feature_base import FeatureDistiller, FeaturePairs

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


def maskable(shape: Shape) -> bool:
    """A (C, H, W) map with at least 2 x 2 positions: what DAM can mask."""
    return len(shape) == 3 and shape[1] >= 2 and shape[2] >= 2


class FeatureMaps(nn.Module):
    """The base's maskable pairs, with a ConvReg adapter each where the base has none."""

    def __init__(self, base: FeatureDistiller, image_size: int, base_name: str) -> None:
        super().__init__()
        if not isinstance(base, FeatureDistiller):
            raise ConfigError(
                f"method 'sokd' needs a feature method as its base (one with feature pairs); "
                f"'{base_name}' is not one: choose fitnet, at, crd or reviewkd"
            )
        dry = base.dry_feature_pairs(image_size)
        shapes = [
            (tuple(s.shape[1:]), tuple(t.shape[1:])) for s, t in zip(dry.student, dry.teacher)
        ]
        self.keep = [i for i, (_, t) in enumerate(shapes) if maskable(t)]
        if not self.keep:
            found = ", ".join(str(t) for _, t in shapes)
            raise ConfigError(
                f"method 'sokd' with base '{base_name}' would mask the maps {found}, but DAM "
                "needs (C, H, W) maps of at least 2 x 2: choose another base "
                "(method.base: fitnet | at | crd | reviewkd) or a pair with spatial maps there"
            )
        self.shapes = [shapes[i][1] for i in self.keep]
        self.replaces: tuple[str, ...] = tuple(base.replaceable_losses)
        self.adapters = nn.ModuleList(
            [] if dry.adapted else [ConvReg(shapes[i][0], shapes[i][1]) for i in self.keep]
        )

    def pairs(self, feature_pairs: FeaturePairs) -> list[MapPair]:
        """The (adapted student map, teacher map, DAM head) triples of one step's pairs."""
        out = []
        for n, i in enumerate(self.keep):
            student, teacher = feature_pairs.student[i], feature_pairs.teacher[i]
            if not feature_pairs.adapted:
                student = self.adapters[n](student)
            out.append(MapPair(student, teacher, head_key(teacher.shape)))
        return out


def build_maps(base_name: str, base: FeatureDistiller, image_size: int) -> FeatureMaps:
    """The maps module for the built base method `base` (named `base_name` in messages)."""
    return FeatureMaps(base, image_size, base_name)
