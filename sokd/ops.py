"""DAFA's nine feature operations (SoKD Sec. 3.1; ranges of the public implementation, METHODS.md).

`apply_op(name, features, magnitude)` transforms a batch of feature maps (B, C, H, W). The
magnitude m in [0, 1] maps linearly onto the operation's range, v = low + m (high - low):

| op | range of v | neutral m |
| --- | --- | --- |
| ShearX, ShearY | shear factor [-0.3, 0.3] | 0.5 |
| Rotate | degrees [-30, 30] | 0.5 |
| TranslateX, TranslateY | fraction of the map [-0.45, 0.45] | 0.5 |
| Cutout | side as a fraction of the map [0, 0.2] | 0 |
| GaussianNoise | standard deviation [0, 0.1] | 0 |
| ChannelShuffle | (ignores m: a random permutation of the channels) | none |
| ChannelDrop | probability of dropping a channel [0, 0.5] (no rescaling) | 0 |

The geometric ones are one affine grid sample with zero padding. Each random choice (Cutout's
centre, the noise, the permutation, the dropped channels) is drawn once per batch on the
features' device (the noise per element), as the public code does; its two bugs are fixed:
Translate moves by v of the map (the code put v * H into normalised coordinates, moving the
map out entirely once |m - 0.5| > ~0.14) and Cutout's side is v of the map (the code halved
int(v * H), a no-op below 10 x 10).

The magnitude's gradient is the straight-through estimate of Eq. 10, d out / d m = 1 for every
element, whatever the operation: `out = op(F; m) + (m - sg(m))`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

OPS = (
    "ShearX",
    "ShearY",
    "Rotate",
    "TranslateX",
    "TranslateY",
    "Cutout",
    "GaussianNoise",
    "ChannelShuffle",
    "ChannelDrop",
)
RANGES: dict[str, tuple[float, float]] = {
    "ShearX": (-0.3, 0.3),
    "ShearY": (-0.3, 0.3),
    "Rotate": (-30.0, 30.0),
    "TranslateX": (-0.45, 0.45),
    "TranslateY": (-0.45, 0.45),
    "Cutout": (0.0, 0.2),
    "GaussianNoise": (0.0, 0.1),
    "ChannelShuffle": (0.0, 0.0),
    "ChannelDrop": (0.0, 0.5),
}
# The magnitude at which an operation is the identity (ChannelShuffle has none).
NEUTRAL: dict[str, float] = {
    **{name: 0.5 for name in ("ShearX", "ShearY", "Rotate", "TranslateX", "TranslateY")},
    "Cutout": 0.0,
    "GaussianNoise": 0.0,
    "ChannelDrop": 0.0,
}


Generator = torch.Generator | None
Rows = tuple[int, int] | None  # (this process's first row, the global batch)


def op_value(name: str, magnitude: Tensor) -> Tensor:
    """v = low + m (high - low)."""
    low, high = RANGES[name]
    return low + magnitude * (high - low)


def _affine(features: Tensor, theta: Tensor) -> Tensor:
    """`features` resampled through the 2 x 3 matrix `theta` (zero padding)."""
    batch = features.shape[0]
    theta = theta.to(features.dtype).expand(batch, 2, 3)
    grid = F.affine_grid(theta, list(features.shape), align_corners=False)
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _matrix(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """A (1, 2, 3) affine matrix from scalars and 0-d tensors (kept on `like`'s device)."""
    entries = [
        v.to(like.dtype) if torch.is_tensor(v) else like.new_full((), v, dtype=like.dtype)
        for row in rows
        for v in row
    ]  # new_full, not as_tensor: a Python number is filled on the device, not copied to it
    return torch.stack(entries).view(1, 2, 3)


def _shear_x(f: Tensor, v: Tensor, g: Generator, rows: Rows) -> Tensor:
    return _affine(f, _matrix([[1.0, v, 0.0], [0.0, 1.0, 0.0]], v))


def _shear_y(f: Tensor, v: Tensor, g: Generator, rows: Rows) -> Tensor:
    return _affine(f, _matrix([[1.0, 0.0, 0.0], [v, 1.0, 0.0]], v))


def _rotate(f: Tensor, v: Tensor, g: Generator, rows: Rows) -> Tensor:
    angle = v * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    return _affine(f, _matrix([[cos, -sin, 0.0], [sin, cos, 0.0]], v))


def _translate_x(f: Tensor, v: Tensor, g: Generator, rows: Rows) -> Tensor:
    # Normalised coordinates span 2: a shift by v of the map is 2 v (the grid samples the
    # input at x - 2v, so content moves by +v: right for v > 0, down for TranslateY).
    return _affine(f, _matrix([[1.0, 0.0, -2.0 * v], [0.0, 1.0, 0.0]], v))


def _translate_y(f: Tensor, v: Tensor, g: Generator, rows: Rows) -> Tensor:
    return _affine(f, _matrix([[1.0, 0.0, 0.0], [0.0, 1.0, -2.0 * v]], v))


def _cutout(f: Tensor, v: Tensor, g: Generator, rows: Rows) -> Tensor:
    _, _, height, width = f.shape
    scale = torch.empty(2, dtype=torch.float32, device=f.device)
    scale[0].fill_(height)
    scale[1].fill_(width)
    centre = torch.rand(2, generator=g, device=f.device) * scale
    rows = torch.arange(height, device=f.device, dtype=torch.float32) + 0.5
    cols = torch.arange(width, device=f.device, dtype=torch.float32) + 0.5
    half_h, half_w = v * height / 2, v * width / 2
    inside = ((rows - centre[0]).abs() < half_h).unsqueeze(1) & (
        (cols - centre[1]).abs() < half_w
    ).unsqueeze(0)
    return f * (~inside).to(f.dtype)


def _noise(f: Tensor, v: Tensor, g: Generator, rows: Rows) -> Tensor:
    # Drawn for the whole global batch and sliced, so N processes add what one process adds.
    offset, total = rows if rows is not None else (0, f.shape[0])
    noise = torch.randn((total, *f.shape[1:]), generator=g, device=f.device, dtype=f.dtype)
    return f + v.to(f.dtype) * noise[offset : offset + f.shape[0]]


def _shuffle(f: Tensor, v: Tensor, g: Generator, rows: Rows) -> Tensor:
    perm = torch.randperm(f.shape[1], generator=g, device=f.device)
    return f.index_select(1, perm)


def _drop(f: Tensor, v: Tensor, g: Generator, rows: Rows) -> Tensor:
    keep = torch.rand(f.shape[1], generator=g, device=f.device) >= v
    return f * keep.to(f.dtype).view(1, -1, 1, 1)


_IMPLEMENTATIONS = {
    "ShearX": _shear_x,
    "ShearY": _shear_y,
    "Rotate": _rotate,
    "TranslateX": _translate_x,
    "TranslateY": _translate_y,
    "Cutout": _cutout,
    "GaussianNoise": _noise,
    "ChannelShuffle": _shuffle,
    "ChannelDrop": _drop,
}


def _magnitude(magnitude: Tensor | float, features: Tensor) -> Tensor:
    if torch.is_tensor(magnitude):
        return magnitude.to(device=features.device, dtype=torch.float32)
    # a fixed magnitude: filled on the device, not copied to it each step
    return torch.full((), float(magnitude), dtype=torch.float32, device=features.device)


def op_output(
    name: str,
    features: Tensor,
    magnitude: Tensor | float,
    generator: torch.Generator | None = None,
    rows: tuple[int, int] | None = None,
) -> Tensor:
    """O(F; sg(m)): `apply_op` without the magnitude's straight-through term (no gradient to
    `magnitude`), for a caller that adds that gradient itself (`sokd.policy.blend`)."""
    if name not in _IMPLEMENTATIONS:
        raise ValueError(f"unknown feature operation {name!r}; choose one of {', '.join(OPS)}")
    m = _magnitude(magnitude, features).detach()
    return _IMPLEMENTATIONS[name](features, op_value(name, m), generator, rows)


def apply_op(
    name: str,
    features: Tensor,
    magnitude: Tensor | float,
    generator: torch.Generator | None = None,
    rows: tuple[int, int] | None = None,
) -> Tensor:
    """`features` (B, C, H, W) transformed by operation `name` at `magnitude` in [0, 1], with
    the straight-through magnitude gradient of Eq. 10. `rows` = (first row, global batch)
    places this process's rows in the global batch (per-element noise is drawn for it all).
    An unknown name raises ValueError naming the nine."""
    m = _magnitude(magnitude, features)
    out = op_output(name, features, m, generator, rows)
    return out + (m - m.detach()).to(out.dtype)
