"""ReviewKD's residual-learning fusion (Chen et al. 2021, Sec. 3.2): attention-based fusion (ABF)
modules that merge each student level with the already-fused deeper levels, as the authors'
code (and mdistiller's ReviewKD) builds them.

Levels. The student's `feats` (or `preact_feats`) followed by its pooled feature as a 1x1 map,
of which the deepest L are used, L being the teacher's number of levels: its `preact_feats[1:]`
followed by its pooled feature. (mdistiller zips the reversed student list with its L ABFs, so
the stem drops out where the student has one, e.g. all CIFAR models, ResNet-18; ImageNet's
MobileNetV1 has none.) All lists here are ordered from the shallowest level to the deepest.
The per-level channels and spatial sizes come from a dry forward (`from_models`), never typed
per pair (mdistiller's IN/OUT_CHANNELS and SHAPES/OUT_SHAPES, where SHAPES run deepest-first).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import ConfigError
from common.methods.feature_shapes import feature_shapes
from common.models.features import Features

Size = tuple[int, int]


def _pooled_as_map(pooled: torch.Tensor) -> torch.Tensor:
    return pooled.reshape(pooled.shape[0], -1, 1, 1)


def student_levels(features: Features, n_levels: int, preact: bool = False) -> list[torch.Tensor]:
    """The deepest `n_levels` of (feats or preact_feats) + [pooled as (B, D, 1, 1)]."""
    maps = list(features["preact_feats" if preact else "feats"])
    levels = [*maps, _pooled_as_map(features["pooled_feat"])]
    return levels[len(levels) - n_levels :]


def teacher_levels(features: Features) -> list[torch.Tensor]:
    """The teacher side of ReviewKD: preact_feats[1:] + [pooled as (B, D, 1, 1)]."""
    return [*features["preact_feats"][1:], _pooled_as_map(features["pooled_feat"])]


class ABF(nn.Module):
    """One attention-based fusion step (Chen et al. 2021, Sec. 3.2, Fig. 3(b)).

    x (student level, C_in) -> 1x1 conv + BN -> mid channels. If `fuse`, the deeper level's fused
    map y (mid channels) is nearest-upsampled to x's size, and a 1x1 conv(2 mid -> 2) + sigmoid
    on [x, y] gives two per-position weights: x <- x * w0 + y * w1. The result is nearest-resized
    to the teacher's size (if it differs) and returned both as the residual for the next,
    shallower level and, through a 3x3 conv + BN, as the output with the teacher's C_out.
    """

    def __init__(self, in_channel: int, mid_channel: int, out_channel: int, fuse: bool) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channel, mid_channel, kernel_size=1, bias=False),
            nn.BatchNorm2d(mid_channel),
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(mid_channel, out_channel, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channel),
        )
        self.att_conv = (
            nn.Sequential(nn.Conv2d(2 * mid_channel, 2, kernel_size=1), nn.Sigmoid())
            if fuse
            else None
        )
        nn.init.kaiming_uniform_(self.conv1[0].weight, a=1)
        nn.init.kaiming_uniform_(self.conv2[0].weight, a=1)

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None, out_size: Size
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(output with C_out at `out_size`, residual with mid channels at `out_size`)."""
        x = self.conv1(x)
        if self.att_conv is not None:
            if residual is None:
                raise ValueError("a fusing ABF needs the deeper level's residual")
            y = F.interpolate(residual, size=tuple(x.shape[2:]), mode="nearest")
            weights = self.att_conv(torch.cat([x, y], dim=1))
            x = x * weights[:, 0:1] + y * weights[:, 1:2]
        if tuple(x.shape[2:]) != tuple(out_size):
            x = F.interpolate(x, size=tuple(out_size), mode="nearest")
        return self.conv2(x), x


class ReviewFusion(nn.Module):
    """The student side of ReviewKD: one ABF per level, run from the deepest level up, each
    fusing with the residual of the level below it (the deepest one fuses nothing).

    `in_channels`/`shapes` are the student levels' channels and (H, W); `out_channels`/
    `out_shapes` the teacher levels'; all shallowest first. `forward` takes the L student levels
    (see `student_levels`) and returns the L fused maps, shallowest first, each of the teacher
    level's shape, ready for `hcl_loss` against `teacher_levels`.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: Sequence[int],
        mid_channel: int,
        shapes: Sequence[Size | int],
        out_shapes: Sequence[Size | int],
    ) -> None:
        super().__init__()
        n = len(in_channels)
        if not n or not len(out_channels) == len(shapes) == len(out_shapes) == n:
            raise ValueError(
                "ReviewFusion needs one entry per level in in_channels, out_channels, shapes "
                f"and out_shapes; got {len(in_channels)}, {len(out_channels)}, {len(shapes)}, "
                f"{len(out_shapes)}"
            )
        self.in_channels = [int(c) for c in in_channels]
        self.out_channels = [int(c) for c in out_channels]
        self.mid_channel = int(mid_channel)
        self.shapes = [_size(s) for s in shapes]
        self.out_shapes = [_size(s) for s in out_shapes]
        # abfs[i] serves level i (shallowest first); every level but the deepest fuses.
        self.abfs = nn.ModuleList(
            ABF(c_in, mid_channel, c_out, fuse=i < n - 1)
            for i, (c_in, c_out) in enumerate(zip(in_channels, out_channels))
        )

    @classmethod
    def from_models(
        cls,
        student: nn.Module,
        teacher: nn.Module,
        image_size: int | tuple[int, int],
        in_channels: int = 3,
        max_mid_channel: int = 512,
        student_preact: bool = False,
    ) -> ReviewFusion:
        """Channels and sizes of both sides from one eval-mode dry forward each;
        mid = min(max_mid_channel, the deepest student level's channels) (mdistiller: 512)."""
        s_shapes = feature_shapes(student, image_size, in_channels)
        t_shapes = feature_shapes(teacher, image_size, in_channels)
        t_levels = [*t_shapes["preact_feats"][1:], (t_shapes["pooled_feat"][0], 1, 1)]
        s_maps = s_shapes["preact_feats" if student_preact else "feats"]
        s_all = [*s_maps, (s_shapes["pooled_feat"][0], 1, 1)]
        n = len(t_levels)
        if len(s_all) < n:
            raise ConfigError(
                f"ReviewKD needs {n} student levels to match the teacher's {n} (its stages after "
                f"the stem and its pooled feature), but the student has only {len(s_all)}; "
                "choose another teacher/student pair"
            )
        s_levels = s_all[len(s_all) - n :]
        return cls(
            in_channels=[s[0] for s in s_levels],
            out_channels=[t[0] for t in t_levels],
            mid_channel=min(max_mid_channel, s_levels[-1][0]),
            shapes=[(s[1], s[2]) for s in s_levels],
            out_shapes=[(t[1], t[2]) for t in t_levels],
        )

    def forward(self, levels: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(levels) != len(self.abfs):
            raise ValueError(f"ReviewFusion expects {len(self.abfs)} levels, got {len(levels)}")
        outputs: list[torch.Tensor] = [levels[0]] * len(levels)
        residual: torch.Tensor | None = None
        for i in reversed(range(len(levels))):
            if tuple(levels[i].shape[2:]) != self.shapes[i]:
                raise ValueError(
                    f"ReviewFusion level {i} is {tuple(levels[i].shape[1:])}, built for size "
                    f"{self.shapes[i]}: pass the levels `student_levels` gives"
                )
            outputs[i], residual = self.abfs[i](levels[i], residual, self.out_shapes[i])
        return outputs


def _size(shape: Size | int | Sequence[int]) -> Size:
    if isinstance(shape, int):
        return shape, shape
    height, width = shape
    return int(height), int(width)
