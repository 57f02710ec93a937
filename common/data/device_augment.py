"""Batched random crop + horizontal flip + normalisation of uint8 images on their own device.

Reproduces, per sample, torchvision's `RandomCrop(size, padding=p)` (zero fill) followed by
`RandomHorizontalFlip()`, `ToTensor()` and `Normalize(mean, std)`: each crop offset is uniform
in [0, 2p] independently per axis and the flip has probability 0.5. The whole batch is done with
a handful of tensor ops (pad, gather, float arithmetic), with no Python loop over samples.
For fixed parameters the output is bit-identical to torchvision's functional ops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class CropFlipParams:
    """Per-sample augmentation parameters: crop offsets into the padded image and flips."""

    offset_y: torch.Tensor  # int64 (B,), in [0, 2p]
    offset_x: torch.Tensor  # int64 (B,), in [0, 2p]
    flipped: torch.Tensor  # bool (B,)

    def __getitem__(self, index: slice) -> CropFlipParams:
        return CropFlipParams(self.offset_y[index], self.offset_x[index], self.flipped[index])

    def to(self, device: torch.device) -> CropFlipParams:
        """The parameters on `device` (one asynchronous copy each from pinned memory on CUDA;
        a no-op when they are there already)."""

        def move(t: torch.Tensor) -> torch.Tensor:
            if t.device == device:
                return t
            if device.type == "cuda":
                t = t.pin_memory()
            return t.to(device, non_blocking=True)

        return CropFlipParams(move(self.offset_y), move(self.offset_x), move(self.flipped))


def sample_crop_flip(
    batch: int, padding: int, flip: bool, generator: torch.Generator
) -> CropFlipParams:
    """Draw offsets uniform in [0, 2*padding] per axis and flips with probability 0.5."""
    offset_y = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    offset_x = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    flips = torch.rand(batch, generator=generator) < 0.5
    if not flip:
        flips = torch.zeros(batch, dtype=torch.bool)
    return CropFlipParams(offset_y, offset_x, flips)


def crop_flip(images: torch.Tensor, params: CropFlipParams, padding: int) -> torch.Tensor:
    """Crop each `(3, H, W)` image of the zero-padded batch at its offset, then maybe flip it.

    `images` is `(B, C, H, W)` of any dtype; the result has the same shape, dtype and device.
    Equivalent to torchvision `F.hflip(F.crop(F.pad(img, p), oy, ox, H, W))` per sample.
    """
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    padded_width = width + 2 * padding
    device = images.device
    rows = params.offset_y.view(-1, 1) + torch.arange(height, device=device)
    ascending = torch.arange(width, device=device)
    columns = torch.where(params.flipped.view(-1, 1), width - 1 - ascending, ascending)
    columns = params.offset_x.view(-1, 1) + columns
    flat_index = (rows.unsqueeze(2) * padded_width + columns.unsqueeze(1)).view(batch, 1, -1)
    flat_index = flat_index.expand(batch, channels, height * width)
    out = padded.reshape(batch, channels, -1).gather(2, flat_index)
    return out.view(batch, channels, height, width)


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 `(B, 3, H, W)` -> float32 `(x / 255 - mean) / std`, as ToTensor + Normalize do.

    `mean` and `std` are float32 `(3, 1, 1)` tensors on the images' device. The operations and
    their order match torchvision's, so the result is bit-identical.
    """
    return images.to(torch.float32).div_(255).sub_(mean).div_(std)


def channel_stats(
    mean: tuple[float, float, float], std: tuple[float, float, float], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as float32 `(3, 1, 1)` tensors on `device`, ready for `normalise`."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
    return mean_t, std_t
