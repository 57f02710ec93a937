"""Low-resolution students (CQKD, Sec. 3 and 4.1): the student sees the batch downsampled.

The teacher (when there is one) keeps the full-resolution augmented image; the student gets the
same tensor resized to `student.resolution` x `student.resolution` by bilinear interpolation,
with no upsampling back (the zoo's networks pool adaptively). Evaluation resizes the validation
images the same way, so a student is always measured at the resolution it was trained at.

Antialiasing. The paper only says the images are downsampled; it does not say whether the
resize antialiases. The released code (distillistic) applies `torchvision.transforms.Resize`
to the normalised tensor, and the torchvision of its time resized *tensors* without
antialiasing (antialias became the tensor default only in torchvision 0.17). Default here, as
released: `antialias: false`, i.e. plain bilinear `F.interpolate` (a 224 -> 28 shrink then
samples about 1 pixel in 8 and aliases). `antialias: true` (an option of `cqkd`, `lowres` and
`dml`) gives today's torchvision tensor `Resize` / PIL behaviour. `DEFAULT_ANTIALIAS` is that
default; every method passes its own option to `resize_to`, and the R2KD analysis tools
(`r2kd.analysis.runs`) read the option from a run's config so they see the inputs the run saw.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import ConfigError

# The released code's behaviour (torchvision < 0.17 on tensors): no antialiasing.
DEFAULT_ANTIALIAS = False


def resize_to(images: torch.Tensor, size: int, antialias: bool = DEFAULT_ANTIALIAS) -> torch.Tensor:
    """`images` (B, C, H, W) resized bilinearly to (size, size); unchanged when `size` is 0 or
    already the images' size. `antialias`: see the module docstring (callers pass their
    method's option)."""
    if size <= 0 or (images.shape[-2] == size and images.shape[-1] == size):
        return images
    return F.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias
    )


def checked_resolution(cfg: Any, spec: Any) -> int:
    """`cfg.student.resolution` (0 = the data's size), refused when it would upsample."""
    size = int(cfg.student.resolution)
    if size < 0:
        raise ConfigError(f"student.resolution must be >= 0 (0 = the data's size), got {size}")
    if size > spec.image_size:
        raise ConfigError(
            f"student.resolution={size} is larger than the images ({spec.image_size} px): the "
            "student input is only ever downsampled; lower it or raise data.image_size"
        )
    return 0 if size == spec.image_size else size


class ResizedInput(nn.Module):
    """A zoo model that resizes its input first; returns the model's (logits, features).

    Used for networks trained beside the student at its resolution (DML's peers), so that the
    engine's `extra_eval_models()` evaluation sees them at that resolution too.
    """

    def __init__(self, net: nn.Module, size: int, antialias: bool = DEFAULT_ANTIALIAS) -> None:
        super().__init__()
        self.net = net
        self.size = size
        self.antialias = antialias

    def forward(self, images: torch.Tensor) -> Any:
        return self.net(resize_to(images, self.size, self.antialias))


class LowResolutionStudent:
    """Mixin for a Distiller whose student sees images at `self.resolution` (0 = as given).

    The class using it sets `self.resolution` and reads `self.options.antialias`.
    """

    resolution: int = 0
    options: Any
    student: nn.Module

    def student_input(self, images: torch.Tensor) -> torch.Tensor:
        """The batch as the student sees it (training and evaluation alike)."""
        return resize_to(images, self.resolution, self.options.antialias)

    def forward_eval(self, images: torch.Tensor) -> torch.Tensor:
        """The student's logits for validation images downsampled like the training ones."""
        return self.student(self.student_input(images))[0]
