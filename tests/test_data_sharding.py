"""Sharding: N processes together see exactly what one process with the same global batch sees."""

from __future__ import annotations

import pytest
import torch

from common.config.schema import DataConfig, SyntheticConfig
from common.data import build_data
from common.data.sharding import (
    epoch_permutation,
    rank_batch_indices,
    rank_slice,
    step_sizes,
    val_shard,
)

SMALL = SyntheticConfig(num_classes=10, num_superclasses=2, train_per_class=20, val_per_class=7)


def synthetic_bundle(device: torch.device, rank: int = 0, world_size: int = 1, seed: int = 5):
    cfg = DataConfig(name="synthetic", synthetic=SMALL, val_batch_size=16)
    return build_data(
        cfg, batch_size=24, device=device, seed=seed, rank=rank, world_size=world_size
    )


def epoch_batches(bundle, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    bundle.train.set_epoch(epoch)
    return [(x.cpu(), y.cpu()) for x, y in bundle.train]


def test_two_ranks_union_equals_one_process(data_device: torch.device) -> None:
    single = synthetic_bundle(data_device)
    ranks = [synthetic_bundle(data_device, rank=r, world_size=2) for r in range(2)]
    # 200 images at batch 24: 8 full steps and the partial last one (8 images, 4 a rank)
    assert len(single.train) == len(ranks[0].train) == len(ranks[1].train) == 9
    for epoch in (0, 1):
        whole = epoch_batches(single, epoch)
        parts = [epoch_batches(bundle, epoch) for bundle in ranks]
        assert [len(y) for _, y in whole] == [24] * 8 + [8]
        for step, (x, y) in enumerate(whole):
            (x0, y0), (x1, y1) = parts[0][step], parts[1][step]
            assert x0.shape == ((12 if step < 8 else 4), 3, 32, 32)
            assert torch.equal(torch.cat([x0, x1]), x)  # same images AND same augmentation
            assert torch.equal(torch.cat([y0, y1]), y)
        seen = torch.cat([y for _, y in whole])
        assert len(seen) == 200  # every image once an epoch


def test_drop_last_drops_the_partial_batch() -> None:
    cfg = DataConfig(name="synthetic", synthetic=SMALL, drop_last=True)
    bundle = build_data(cfg, batch_size=24, device="cpu", seed=5)
    assert len(bundle.train) == 200 // 24
    assert [len(y) for _, y in epoch_batches(bundle, 0)] == [24] * 8


def test_a_tail_too_small_to_split_is_dropped() -> None:
    # 103 at batch 16 leaves 7: kept for 1-3 processes (>= 2 images each), dropped for 4
    assert step_sizes(103, 16, 1, drop_last=False) == [16] * 6 + [7]
    assert step_sizes(103, 16, 3, drop_last=False) == [16] * 6 + [7]
    assert step_sizes(103, 16, 4, drop_last=False) == [16] * 6
    assert step_sizes(103, 16, 1, drop_last=True) == [16] * 6
    assert [rank_slice(7, r, 3) for r in range(3)] == [slice(0, 2), slice(2, 4), slice(4, 7)]


def test_same_seed_same_batches_different_seed_differs() -> None:
    first = epoch_batches(synthetic_bundle(torch.device("cpu")), 3)
    again = epoch_batches(synthetic_bundle(torch.device("cpu")), 3)
    other = epoch_batches(synthetic_bundle(torch.device("cpu"), seed=6), 3)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0], other[0][0])


def test_rank_shards_are_disjoint_and_reshuffled() -> None:
    n, batch, world = 103, 16, 4
    for epoch in (0, 1):
        per_rank = [
            torch.cat(list(rank_batch_indices(n, batch, 9, epoch, rank, world)))
            for rank in range(world)
        ]
        union = torch.cat(per_rank)
        assert len(set(union.tolist())) == len(union) == n // batch * batch  # disjoint
        assert set(union.tolist()) == set(epoch_permutation(n, 9, epoch)[: len(union)].tolist())
    assert not torch.equal(epoch_permutation(n, 9, 0), epoch_permutation(n, 9, 1))
    steps0 = list(rank_batch_indices(n, batch, 9, 0, 0, 1))
    steps1 = list(rank_batch_indices(n, batch, 9, 1, 0, 1))
    assert not torch.equal(steps0[0], steps1[0])


def test_epochs_differ_in_order_and_augmentation() -> None:
    bundle = synthetic_bundle(torch.device("cpu"))
    epoch0, epoch1 = epoch_batches(bundle, 0), epoch_batches(bundle, 1)
    assert not torch.equal(epoch0[0][1], epoch1[0][1])
    assert not torch.equal(epoch0[0][0], epoch1[0][0])


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_val_shards_cover_everything_once(world_size: int) -> None:
    single = synthetic_bundle(torch.device("cpu"))
    whole_x = torch.cat([x for x, _ in single.val])
    whole_y = torch.cat([y for _, y in single.val])
    assert len(whole_y) == single.spec.val_size == 70
    shards = [synthetic_bundle(torch.device("cpu"), r, world_size) for r in range(world_size)]
    x = torch.cat([x for bundle in shards for x, _ in bundle.val])
    y = torch.cat([y for bundle in shards for _, y in bundle.val])
    assert torch.equal(x, whole_x) and torch.equal(y, whole_y)
    assert sum(len(bundle.val) for bundle in shards) >= len(single.val)
    covered = [i for r in range(world_size) for i in val_shard(70, r, world_size)]
    assert covered == list(range(70))


def test_set_epoch_twice_warns_when_forgotten() -> None:
    bundle = synthetic_bundle(torch.device("cpu"))
    bundle.train.set_epoch(0)
    list(bundle.train)
    with pytest.warns(UserWarning, match="set_epoch"):
        list(bundle.train)


def test_resuming_mid_epoch_yields_the_remaining_steps() -> None:
    bundle = synthetic_bundle(torch.device("cpu"))
    full = epoch_batches(bundle, 2)
    bundle.train.set_epoch(2, start_step=3)
    rest = [(x, y) for x, y in bundle.train]
    assert len(bundle.train) == len(full) and len(rest) == len(full) - 3
    for (x, y), (fx, fy) in zip(rest, full[3:]):
        assert torch.equal(x, fx) and torch.equal(y, fy)
    with pytest.raises(ValueError, match="start_step"):
        bundle.train.set_epoch(0, start_step=len(full) + 1)


def test_the_epochs_draws_made_at_set_epoch_give_the_per_step_batches() -> None:
    """Every draw of an epoch is made in set_epoch and moved to the device once; the batches
    are bit-identical to drawing each step's crops and flips from its own (seed, epoch, step)
    generator, as the loader did step by step."""
    from common.data.device_augment import crop_flip, normalise, sample_crop_flip
    from common.data.seeding import STREAM_AUGMENT, make_generator

    bundle = synthetic_bundle(torch.device("cpu"))
    loader = bundle.train
    loader.set_epoch(4)
    batches = list(loader)
    steps = rank_batch_indices(200, 24, 5, 4, 0, 1, drop_last=False)
    for step, (indices, batch) in enumerate(zip(steps, batches)):
        params = sample_crop_flip(len(indices), loader.padding, loader.flip,
                                  make_generator(5, 4, step, STREAM_AUGMENT))  # fmt: skip
        images = crop_flip(loader.images[indices], params, loader.padding)
        assert torch.equal(normalise(images, loader.mean, loader.std), batch.images)
        assert torch.equal(batch.indices, indices)
