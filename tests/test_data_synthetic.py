"""The synthetic data set: deterministic, balanced, with measurable super-class structure."""

from __future__ import annotations

import pytest
import torch

from common.config.schema import DataConfig, SyntheticConfig
from common.data import build_data, superclass_of
from common.data.synthetic import make_synthetic

CFG = SyntheticConfig()  # 20 classes in 4 super-classes, 200 / 50 images per class, 32x32


@pytest.fixture(scope="module")
def splits():
    return make_synthetic(CFG)


def test_superclass_of_is_contiguous_and_balanced() -> None:
    assert superclass_of(6, 3) == [0, 0, 1, 1, 2, 2]
    assert superclass_of(20, 4) == [c // 5 for c in range(20)]
    groups = superclass_of(100, 20)
    assert all(groups.count(s) == 5 for s in range(20))
    with pytest.raises(ValueError):
        superclass_of(4, 5)


def test_deterministic_from_seed(splits) -> None:
    train, val = splits
    again_train, again_val = make_synthetic(CFG)
    assert torch.equal(train.images, again_train.images)
    assert torch.equal(val.images, again_val.images)
    other, _ = make_synthetic(SyntheticConfig(seed=1))
    assert not torch.equal(train.images, other.images)


def test_balanced_shapes_and_types(splits) -> None:
    train, val = splits
    assert train.images.shape == (20 * 200, 3, 32, 32) and train.images.dtype == torch.uint8
    assert val.images.shape == (20 * 50, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [200] * 20
    assert torch.bincount(val.labels).tolist() == [50] * 20
    assert train.labels.dtype == torch.int64
    assert 20 < train.images.float().mean() < 235  # not saturated


def test_super_class_structure_is_measurable(splits) -> None:
    train, val = splits
    x = train.images.flatten(1).float() / 255
    means = torch.stack([x[train.labels == c].mean(0) for c in range(20)])
    groups = torch.tensor(superclass_of(20, 4))
    # nearest-class-mean on raw pixels: well above the 5% chance level
    predicted = torch.cdist(val.images.flatten(1).float() / 255, means).argmin(1)
    accuracy = (predicted == val.labels).float().mean()
    assert accuracy > 0.3, accuracy
    assert (groups[predicted] == groups[val.labels]).float().mean() > 0.9
    # class means of one super-class are closer than those of different super-classes
    distances = torch.cdist(means, means)
    same = groups[:, None] == groups[None, :]
    off_diagonal = ~torch.eye(20, dtype=torch.bool)
    assert distances[same & off_diagonal].max() < distances[~same].min()


def test_through_build_data() -> None:
    cfg = DataConfig(name="synthetic", synthetic=SyntheticConfig(num_classes=8, num_superclasses=2))
    bundle = build_data(cfg, batch_size=64, device="cpu", seed=0)
    spec = bundle.spec
    assert (spec.num_classes, spec.image_size, spec.train_size, spec.val_size) == (8, 32, 1600, 400)
    assert all(0.2 < m < 0.8 for m in spec.mean) and all(0.1 < s < 0.4 for s in spec.std)
    bundle.train.set_epoch(0)
    x, _ = next(iter(bundle.train))
    assert abs(float(x.mean())) < 0.5 and 0.6 < float(x.std()) < 1.4  # roughly standardised


def test_subset_keeps_all_classes() -> None:
    cfg = DataConfig(name="synthetic", subset=200, val_subset=60)
    bundle = build_data(cfg, batch_size=50, device="cpu", seed=0)
    assert (bundle.spec.train_size, bundle.spec.val_size) == (200, 60)
    bundle.train.set_epoch(0)
    labels = torch.cat([y for _, y in bundle.train])
    assert len(labels.unique()) == 20
