"""The augmented copy: every kind keeps the batch's shape, changes the copy, never the clean
batch; Cutout's hole, AutoAugment's de-/re-normalisation, CutMixPick's entropy pick."""

from __future__ import annotations

import pytest
import torch

from r2kd.augment import AUGMENTS, augmented_copy, autoaugment, cutout, entropy, highest_entropy

MEAN, STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)


def normalised_batch(batch: int = 8, size: int = 16) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (batch, 3, size, size), generator=gen).float() / 255
    return (raw - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


@pytest.mark.parametrize("kind", [k for k in AUGMENTS if k != "none"])
def test_each_kind_keeps_shape_and_leaves_the_clean_batch_untouched(kind: str) -> None:
    torch.manual_seed(1)
    images = normalised_batch()
    clean = images.clone()
    aug = augmented_copy(kind, images, mean=MEAN, std=STD, cutout_length=8)
    assert torch.equal(images, clean)
    assert aug.shape == images.shape and aug.dtype == images.dtype
    assert aug.data_ptr() != images.data_ptr()
    assert torch.isfinite(aug).all()
    assert not torch.equal(aug, images)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="augment 'rotate'"):
        augmented_copy("rotate", normalised_batch())


def test_cutout_cuts_one_square_hole_per_image() -> None:
    torch.manual_seed(0)
    images = torch.ones(64, 3, 32, 32)
    out = cutout(images, 8, per_image=True)
    holes = out[:, 0] == 0
    assert torch.equal(holes, (out == 0).all(dim=1))  # the same hole in every channel
    sizes = holes.flatten(1).sum(1)
    assert sizes.max() == 64 and sizes.min() > 0  # 8x8 inside, clipped at the border
    for mask in holes:  # each hole is one axis-aligned rectangle
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert int(mask.sum()) == int(h * w) and h <= 8 and w <= 8
    assert len({tuple(m.flatten().tolist()) for m in holes}) > 1  # holes differ per image
    shared = cutout(images, 8, per_image=False)[:, 0] == 0
    assert all(torch.equal(shared[0], m) for m in shared)  # the released per-batch hole


def test_autoaugment_works_on_the_unnormalised_image() -> None:
    torch.manual_seed(3)
    images = normalised_batch()
    out = autoaugment(images, MEAN, STD, "cifar10")
    raw = out * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
    levels = raw * 255  # uint8 levels after re-normalisation
    assert torch.allclose(levels, levels.round(), atol=1e-3)


def test_highest_entropy_keeps_the_most_uncertain_rows() -> None:
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    assert entropy(logits)[1] == pytest.approx(torch.log(torch.tensor(3.0)).item())
    assert sorted(highest_entropy(logits, 2).tolist()) == [1, 3]
    assert sorted(highest_entropy(logits, 64).tolist()) == [0, 1, 2, 3]
