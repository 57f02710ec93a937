"""A built-in synthetic classification set with super-class structure (needs no files).

Every class belongs to a super-class (`superclass_of`). An image is the sum of
  * its super-class's base colour and smooth low-frequency pattern (large amplitude),
  * its class's own higher-frequency pattern (smaller amplitude),
  * a weaker copy of a random sibling class's pattern (same super-class, random weight),
  * per-image jitter: a random shift of all patterns, a colour gain/offset and pixel noise,
quantised to uint8. Classes of one super-class therefore look alike and single images are
ambiguous between siblings, so a trained teacher's soft labels carry real class similarity (the
"dark knowledge" of Hinton et al. 2015). The patterns are periodic sums of cosines with integer
frequencies, so a shift is a phase change and the raw-pixel class means keep only part of the
class signal, while a small CNN (translation-equivariant) separates the classes in a few epochs.
The constants are set so that capacity matters (measured at 16x16, 20 classes, 100 images a
class, 12 epochs: resnet20 99.1% vs resnet8 93.2% validation top-1), which is what a KD demo needs.
Everything is drawn from CPU generators keyed by `SyntheticConfig.seed`.
"""

from __future__ import annotations

import math

import torch

from common.config.schema import SyntheticConfig
from common.data.arrays import ImageArrays
from common.data.seeding import STREAM_SYNTHETIC, make_generator
from common.errors import DataError

SUPER_WAVES, SUPER_FREQUENCIES, SUPER_AMPLITUDE = 4, (1, 2), 0.22
CLASS_WAVES, CLASS_FREQUENCIES, CLASS_AMPLITUDE = 8, (2, 6), 0.10
SUPER_COLOUR_RANGE = 0.2  # base colour 0.5 +- this, per channel
SIBLING_WEIGHT = 0.5  # a sibling's pattern is added with a weight uniform in [0, this]
MAX_SHIFT_FRACTION = 0.5  # of the image side, per axis
NOISE_STD, GAIN_RANGE, OFFSET_RANGE = 0.05, 0.1, 0.04


def superclass_of(num_classes: int, num_superclasses: int) -> list[int]:
    """Super-class of each class: contiguous, balanced groups (class c -> c * S // C)."""
    if not 1 <= num_superclasses <= num_classes:
        raise ValueError(f"need 1 <= num_superclasses ({num_superclasses}) <= {num_classes}")
    return [c * num_superclasses // num_classes for c in range(num_classes)]


class WaveField:
    """`count` random periodic RGB patterns, each a sum of `waves` cosines.

    Frequencies are integers (cycles per image side) with magnitudes in `frequencies`.
    """

    def __init__(
        self,
        count: int,
        waves: int,
        frequencies: tuple[int, int],
        amplitude: float,
        g: torch.Generator,
    ) -> None:
        low, high = frequencies
        signs = torch.randint(0, 2, (count, waves, 2), generator=g) * 2 - 1
        magnitude = torch.randint(low, high + 1, (count, waves, 2), generator=g)
        magnitude[..., 0] *= torch.randint(0, 2, (count, waves), generator=g)  # some along x only
        self.frequencies = (signs * magnitude).float()  # (count, waves, (y, x))
        self.phases = torch.rand(count, waves, generator=g) * 2 * math.pi
        self.weights = torch.randn(count, waves, 3, generator=g) * (amplitude / math.sqrt(waves))

    def render(self, pattern: int, shifts: torch.Tensor, size: int) -> torch.Tensor:
        """Pattern `pattern` shifted by `shifts` (n, 2) pixels: float (n, 3, size, size)."""
        coords = torch.arange(size, dtype=torch.float32) / size
        freq = self.frequencies[pattern]  # (K, 2)
        grid = freq[:, 0, None, None] * coords[:, None] + freq[:, 1, None, None] * coords
        phase = self.phases[pattern] - (shifts / size) @ freq.T  # (n, K)
        waves = torch.cos(2 * math.pi * grid + phase[:, :, None, None])  # (n, K, H, W)
        return torch.einsum("nkhw,kc->nchw", waves, self.weights[pattern])


class SyntheticWorld:
    """The fixed prototypes of a synthetic data set: super-class/class patterns and colours."""

    def __init__(self, cfg: SyntheticConfig) -> None:
        g = make_generator(cfg.seed, STREAM_SYNTHETIC, 0)
        self.size = cfg.image_size
        self.groups = superclass_of(cfg.num_classes, cfg.num_superclasses)
        self.supers = WaveField(
            cfg.num_superclasses, SUPER_WAVES, SUPER_FREQUENCIES, SUPER_AMPLITUDE, g
        )
        self.classes = WaveField(
            cfg.num_classes, CLASS_WAVES, CLASS_FREQUENCIES, CLASS_AMPLITUDE, g
        )
        spread = (torch.rand(cfg.num_superclasses, 3, generator=g) * 2 - 1) * SUPER_COLOUR_RANGE
        self.colours = 0.5 + spread

    def siblings(self, label: int) -> list[int]:
        """The other classes of `label`'s super-class."""
        group = self.groups[label]
        return [c for c, s in enumerate(self.groups) if s == group and c != label]

    def render_class(self, label: int, count: int, g: torch.Generator) -> torch.Tensor:
        """`count` jittered uint8 images (count, 3, size, size) of class `label`."""
        size, group = self.size, self.groups[label]
        shifts = (torch.rand(count, 2, generator=g) * 2 - 1) * (size * MAX_SHIFT_FRACTION)
        clean = self.colours[group].view(1, 3, 1, 1) + self.supers.render(group, shifts, size)
        clean += self.classes.render(label, shifts, size)
        siblings = self.siblings(label)
        if siblings:
            partner = torch.tensor(siblings)[torch.randint(len(siblings), (count,), generator=g)]
            weight = torch.rand(count, 1, 1, 1, generator=g) * SIBLING_WEIGHT
            for other in sorted(set(partner.tolist())):
                chosen = partner == other
                pattern = self.classes.render(other, shifts[chosen], size)
                clean[chosen] += weight[chosen] * pattern
        gain = 1 + (torch.rand(count, 3, 1, 1, generator=g) * 2 - 1) * GAIN_RANGE
        offset = (torch.rand(count, 3, 1, 1, generator=g) * 2 - 1) * OFFSET_RANGE
        noise = torch.randn(count, 3, size, size, generator=g) * NOISE_STD
        pixels = (clean - 0.5) * gain + 0.5 + offset + noise
        return (pixels * 255).round_().clamp_(0, 255).to(torch.uint8)


def make_synthetic(cfg: SyntheticConfig) -> tuple[ImageArrays, ImageArrays]:
    """The (train, val) splits described by `cfg`, identical for identical configs.

    Images are ordered by class. Train and val use separate generators, so changing
    `val_per_class` leaves the training images unchanged.
    """
    if not 1 <= cfg.num_superclasses <= cfg.num_classes:
        raise DataError(
            f"data.synthetic.num_superclasses={cfg.num_superclasses} must be between 1 and "
            f"data.synthetic.num_classes={cfg.num_classes}"
        )
    world = SyntheticWorld(cfg)
    names = [f"s{group}_c{c}" for c, group in enumerate(world.groups)]
    splits = []
    for split, per_class in enumerate((cfg.train_per_class, cfg.val_per_class), start=1):
        g = make_generator(cfg.seed, STREAM_SYNTHETIC, split)
        images = [world.render_class(c, per_class, g) for c in range(cfg.num_classes)]
        labels = torch.arange(cfg.num_classes).repeat_interleave(per_class)
        splits.append(ImageArrays(torch.cat(images), labels, names))
    return splits[0], splits[1]


def pixel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 (N, 3, H, W) images, on the [0, 1] scale."""
    values = images.to(torch.float64).div_(255).transpose(0, 1).reshape(3, -1)
    mean = tuple(round(v, 4) for v in values.mean(1).tolist())
    std = tuple(round(v, 4) for v in values.std(1).tolist())
    return mean, std
