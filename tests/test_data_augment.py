"""Device-resident crop + flip + normalise reproduce torchvision's per-sample pipeline.

Reference: `RandomCrop(32, padding=4)` (zero fill) + `RandomHorizontalFlip()` + `ToTensor()` +
`Normalize(mean, std)`; offsets uniform in [0, 2p] per axis, flip with probability 0.5.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from common.data.device_augment import (
    CropFlipParams,
    channel_stats,
    crop_flip,
    normalise,
    sample_crop_flip,
)
from common.data.device_loader import DeviceTrainLoader

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
PAD = 4


def torchvision_reference(image: np.ndarray, top: int, left: int, flip: bool) -> torch.Tensor:
    """torchvision's functional ops on a PIL image (HWC uint8), as RandomCrop etc. apply them."""
    pil = TF.pad(Image.fromarray(image), PAD, fill=0)
    pil = TF.crop(pil, top, left, image.shape[0], image.shape[1])
    if flip:
        pil = TF.hflip(pil)
    return TF.normalize(TF.to_tensor(pil), MEAN, STD)


def random_images(count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, size, size), generator=generator, dtype=torch.uint8)


def test_fixed_params_match_torchvision_exactly(data_device: torch.device) -> None:
    images = random_images(24)
    corners = torch.tensor([0, 2 * PAD, 0, 2 * PAD])
    params = sample_crop_flip(24, PAD, True, torch.Generator().manual_seed(1))
    params.offset_y[:4], params.offset_x[:4] = corners, corners.flip(0)
    params.flipped[:4] = torch.tensor([True, False, True, False])
    mean, std = channel_stats(MEAN, STD, data_device)
    ours = normalise(crop_flip(images.to(data_device), params.to(data_device), PAD), mean, std)
    assert ours.dtype == torch.float32 and ours.shape == (24, 3, 32, 32)
    assert ours.device.type == data_device.type
    for i in range(24):
        hwc = images[i].permute(1, 2, 0).numpy()
        reference = torchvision_reference(
            hwc, int(params.offset_y[i]), int(params.offset_x[i]), bool(params.flipped[i])
        )
        assert torch.equal(ours[i].cpu(), reference), f"sample {i} differs from torchvision"


def test_no_padding_no_flip_is_identity_then_normalise() -> None:
    images = random_images(4)
    params = sample_crop_flip(4, 0, False, torch.Generator().manual_seed(0))
    assert not params.flipped.any() and not params.offset_y.any()
    assert torch.equal(crop_flip(images, params, 0), images)


def encode(pixels: torch.Tensor) -> torch.Tensor:
    """Integer fingerprints of uint8 images (exact arithmetic, no overflow)."""
    generator = torch.Generator().manual_seed(7)
    weights = torch.randint(1, 2**20, (pixels[0].numel(),), generator=generator)
    return (pixels.flatten(1).to(torch.int64) * weights).sum(1)


def test_loader_offsets_and_flips_are_uniform() -> None:
    """Recover (offset_y, offset_x, flip) of 16,200 augmented copies of one image; chi-square."""
    image = random_images(1, seed=3)[0]
    cells = [(y, x, f) for y in range(2 * PAD + 1) for x in range(2 * PAD + 1) for f in (0, 1)]
    hwc = image.permute(1, 2, 0).numpy()
    candidates = torch.stack([torchvision_reference(hwc, y, x, bool(f)) for y, x, f in cells])
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)

    def to_uint8(x: torch.Tensor) -> torch.Tensor:
        return ((x * std + mean) * 255).round().to(torch.uint8)

    keys = encode(to_uint8(candidates))
    assert len(set(keys.tolist())) == len(cells), "candidate outputs must be distinguishable"
    lookup = {k: i for i, k in enumerate(keys.tolist())}

    copies, epochs = 1620, 10
    loader = DeviceTrainLoader(
        image.expand(copies, -1, -1, -1).contiguous(),
        torch.zeros(copies, dtype=torch.int64),
        global_batch=copies,
        seed=123,
        padding=PAD,
        flip=True,
        mean=MEAN,
        std=STD,
    )
    counts = torch.zeros(len(cells))
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for batch, _ in loader:
            found = [lookup[k] for k in encode(to_uint8(batch)).tolist()]  # KeyError: not a crop
            counts += torch.bincount(torch.tensor(found), minlength=len(cells))
    expected = copies * epochs / len(cells)
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    dof = len(cells) - 1
    z = 3.09  # p = 0.001, Wilson-Hilferty approximation of the chi-square quantile
    critical = dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3
    print(f"chi-square {chi_square:.1f} (dof {dof}, p=0.001 critical {critical:.1f})")
    assert chi_square < critical, (chi_square, critical)
    assert counts.min() > 0
    flips = counts.view(-1, 2).sum(0) / counts.sum()
    assert abs(float(flips[1]) - 0.5) < 4 * math.sqrt(0.25 / counts.sum())


def test_loader_batches_shape_dtype_range(data_device: torch.device) -> None:
    images = random_images(64).to(data_device)
    loader = DeviceTrainLoader(
        images,
        torch.arange(64, device=data_device),
        global_batch=16,
        seed=0,
        padding=PAD,
        flip=True,
        mean=MEAN,
        std=STD,
    )
    loader.set_epoch(0)
    batches = list(loader)
    assert len(batches) == len(loader) == 4
    low = (0 - torch.tensor(MEAN)) / torch.tensor(STD)
    high = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    for x, y in batches:
        assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
        assert y.shape == (16,) and y.dtype == torch.int64
        assert x.device.type == y.device.type == data_device.type
        per_channel = x.transpose(0, 1).reshape(3, -1).cpu()
        assert (per_channel.min(1).values >= low - 1e-6).all()
        assert (per_channel.max(1).values <= high + 1e-6).all()
    seen = torch.cat([y for _, y in batches]).cpu()
    assert len(set(seen.tolist())) == 64  # every image once per epoch


def test_params_slice_and_move() -> None:
    params = CropFlipParams(torch.arange(6), torch.arange(6) + 1, torch.arange(6) % 2 == 0)
    part = params[2:4]
    assert part.offset_y.tolist() == [2, 3] and part.offset_x.tolist() == [3, 4]
    assert part.flipped.tolist() == [True, False]
