"""An in-memory split of a small-image data set, and the one-off operations applied at load.

`ImageArrays` holds every image of a split as one uint8 `(N, 3, H, W)` tensor with int64
labels; `resized` and `subset` return new splits (resize once, antialiased; fixed subsets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from common.data.seeding import STREAM_SUBSET, make_generator

# The subset permutation is fixed (independent of the run's seed) so every run and every
# method trains on the same images: `randperm(N)` from the generator of `derive_seed(0, 3)`.
SUBSET_SEED = 0


@dataclass
class ImageArrays:
    """One split: `images` uint8 (N, 3, H, W), `labels` int64 (N,), optional source files."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype}")
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError("images and labels differ in length")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    def resized(self, size: int, chunk: int = 4096) -> ImageArrays:
        """Resize every image to `size` x `size` once (bilinear, antialiased, rounded to uint8)."""
        if self.images.shape[-2:] == (size, size):
            return self
        return ImageArrays(
            resize_uint8(self.images, size, chunk), self.labels, self.class_names, self.files
        )

    def subset(self, count: int) -> ImageArrays:
        """The first `count` images of a fixed seeded shuffle (0 or >= N: everything).

        The kept indices are sorted, so the subset keeps the original order.
        """
        keep = subset_indices(len(self), count)
        if keep is None:
            return self
        files = [self.files[i] for i in keep.tolist()] if self.files else []
        return ImageArrays(self.images[keep], self.labels[keep], self.class_names, files)


def resize_uint8(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Bilinear antialiased resize of uint8 `(N, C, H, W)` images, processed in chunks."""
    shape = (images.shape[0], images.shape[1], size, size)
    out = torch.empty(shape, dtype=torch.uint8, device=images.device)
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].to(torch.float32)
        block = F.interpolate(block, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + chunk] = block.round_().clamp_(0, 255).to(torch.uint8)
    return out


def subset_indices(total: int, count: int) -> torch.Tensor | None:
    """Sorted first `count` indices of the fixed shuffle of `total` (None: keep everything).

    The shuffle is `randperm(total)` from the generator of `derive_seed(SUBSET_SEED,
    STREAM_SUBSET)`, independent of the run's seed, so all classes appear with high probability.
    """
    if count <= 0 or count >= total:
        return None
    order = torch.randperm(total, generator=make_generator(SUBSET_SEED, STREAM_SUBSET))
    return order[:count].sort().values
