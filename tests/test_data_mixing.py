"""CutMix (Yun et al. 2019) and Mixup (Zhang et al. 2018) on batches."""

from __future__ import annotations

import torch

from common.data import cutmix, mixup


def labelled_batch(batch: int = 8, size: int = 16) -> torch.Tensor:
    """Image i is constant i + 1, so every pixel tells which image it came from."""
    return (
        (torch.arange(batch, dtype=torch.float32) + 1)
        .view(-1, 1, 1, 1)
        .expand(batch, 3, size, size)
        .clone()
    )


def test_cutmix_box_area_matches_lambda_and_comes_from_partner() -> None:
    images = labelled_batch()
    original = images.clone()
    for seed in range(50):
        generator = torch.Generator().manual_seed(seed)
        mixed, perm, lam = cutmix(images, generator=generator, alpha=1.0)
        assert torch.equal(images, original)  # pure
        assert 0.0 <= lam <= 1.0 and mixed.shape == images.shape
        pasted = mixed != images  # pixels that changed
        for i in range(len(images)):
            partner = int(perm[i])
            if partner == i:
                continue
            region = pasted[i, 0]
            assert torch.equal(pasted[i], region.expand_as(pasted[i]))  # all channels alike
            area = int(region.sum())
            assert abs((1 - area / region.numel()) - float(lam)) < 1e-6
            assert (mixed[i][pasted[i]] == partner + 1).all()  # pasted from the partner
            if area:
                rows, cols = region.any(1).nonzero(), region.any(0).nonzero()
                box = region[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
                assert box.all()  # one axis-aligned rectangle


def test_cutmix_is_reproducible_with_a_generator() -> None:
    images = torch.rand(6, 3, 8, 8)
    first = cutmix(images, generator=torch.Generator().manual_seed(3))
    second = cutmix(images, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert first[2] == second[2]


def test_cutmix_lambda_is_spread_over_the_unit_interval() -> None:
    images = torch.rand(4, 3, 32, 32)
    lams = [cutmix(images, torch.Generator().manual_seed(s))[2] for s in range(300)]
    assert 0.3 < sum(lams) / len(lams) < 0.8  # Beta(1, 1) corrected by clipping: mean > 0.5
    assert min(lams) < 0.2 and max(lams) > 0.95


def test_mixup_is_a_convex_combination() -> None:
    images = torch.rand(8, 3, 16, 16)
    original = images.clone()
    mixed, perm, lam = mixup(images, alpha=0.2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(images, original)
    assert 0.0 <= lam <= 1.0 and sorted(perm.tolist()) == list(range(8))
    assert torch.allclose(mixed, lam * images + (1 - lam) * images[perm], atol=1e-6)


def test_beta_draws_have_the_beta_distributions_moments() -> None:
    """Johnk's sampler: Beta(a, a) has mean 1/2 and variance 1 / (4 (2a + 1))."""
    from common.data.mixing import sample_beta

    gen = torch.Generator().manual_seed(0)
    for alpha in (0.2, 1.0, 4.0):
        draws = torch.stack([sample_beta(alpha, gen) for _ in range(4000)])
        assert abs(float(draws.mean()) - 0.5) < 0.02
        assert abs(float(draws.var()) - 1 / (4 * (2 * alpha + 1))) < 0.01


def test_alpha_zero_means_no_mixing() -> None:
    images = torch.rand(4, 3, 8, 8)
    mixed, _, lam = mixup(images, alpha=0.0)
    assert lam == 1.0 and torch.equal(mixed, images)
    mixed, _, lam = cutmix(images, alpha=0.0)
    assert lam == 1.0 and torch.equal(mixed, images)


def test_mixing_draws_read_nothing_on_the_host() -> None:
    """No operator that copies a tensor's value to the host (`aten._local_scalar_dense`, what
    `.item()` and indexing with a 0-d tensor call in C++) runs in the Beta draw, CutMix's box or
    R2KD's Cutout: on a GPU each would be a sync, and a failure under CUDA-graph capture."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from common.data.mixing import cutmix_mask, sample_beta
    from r2kd.augment import cutout

    class NoHostReads(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            assert func is not torch.ops.aten._local_scalar_dense.default, "host read"
            return func(*args, **(kwargs or {}))

    images = torch.rand(4, 3, 8, 8)
    with NoHostReads():
        lam = sample_beta(1.0)
        cutmix_mask(8, 8, lam)
        cutout(images, 4)
