"""CRD's contrast indices (Tian et al. 2020, Sec. 3.4; RepDistiller's `CIFAR100InstanceSample`),
drawn on the device inside the training step instead of by the data loader.

Each row is [positive, K negatives], the rows of the memory banks an anchor is scored against:

- positive: mode "exact", the sample itself (its dataset index); mode "relax", a random sample
  of the same class (possibly itself), as the reference;
- negatives: K samples of OTHER classes, without replacement within a row (as the reference
  does, `np.random.choice(..., replace=False)`), independently per row. Where a class's pool
  of other-class samples is smaller than K the reference draws with replacement, and so does
  this (per row, by `torch.where`); `replacement=True` draws every row with replacement (the
  reference's ImageNet loader does).

Nothing loops over the batch or reads a device value on the host: the per-class structure
`ClassIndex` is built once from the data set's labels and moved to the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

_INT32_MAX = 2**31 - 1
_WIDE = 2**62  # draws reduced modulo a pool size (bias below pool / 2**62)


@dataclass(frozen=True)
class ClassIndex:
    """The training set's labels grouped by class.

    `labels` (N,): class of every sample; `order` (N,): sample indices sorted by class;
    `starts`, `counts` (C,): where each class's run begins in `order` and its length;
    `max_count`: the largest class's size as a host integer, so the smallest negative pool
    (N - max_count) is known without reading the device.
    """

    labels: torch.Tensor
    order: torch.Tensor
    starts: torch.Tensor
    counts: torch.Tensor
    max_count: int

    @property
    def n_data(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> ClassIndex:
        return ClassIndex(
            self.labels.to(device),
            self.order.to(device),
            self.starts.to(device),
            self.counts.to(device),
            self.max_count,
        )


def build_class_index(
    labels: torch.Tensor | Sequence[int], num_classes: int | None = None
) -> ClassIndex:
    """The `ClassIndex` of a data set's labels (host-side, once, before training)."""
    labels = torch.as_tensor(labels, dtype=torch.long).flatten().cpu()
    if labels.numel() == 0 or int(labels.min()) < 0:
        raise ValueError("build_class_index needs a non-empty list of labels >= 0")
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    counts = torch.bincount(labels, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    order = torch.sort(labels, stable=True).indices
    return ClassIndex(labels, order, starts, counts, int(counts.max()))


def _other_class_with_replacement(
    targets: torch.Tensor, ci: ClassIndex, k: int, generator: torch.Generator | None
) -> torch.Tensor:
    """(B, k) uniform draws, with replacement, from the samples outside each row's class."""
    start = ci.starts[targets].unsqueeze(1)
    count = ci.counts[targets].unsqueeze(1)
    pool = ci.n_data - count
    draw = torch.randint(
        0, _WIDE, (targets.shape[0], k), generator=generator, device=targets.device
    )
    u = draw % pool.clamp_min(1)  # position among the other classes' samples
    return ci.order[u + count * (u >= start)]  # skip over the row's own class run


def _other_class_without_replacement(
    targets: torch.Tensor, ci: ClassIndex, k: int, generator: torch.Generator | None
) -> torch.Tensor:
    """(B, k) distinct samples outside each row's class: the k smallest of random keys, the
    row's own class keyed above every random key (valid while its pool holds >= k)."""
    keys = torch.randint(
        0,
        _INT32_MAX,
        (targets.shape[0], ci.n_data),
        generator=generator,
        device=targets.device,
        dtype=torch.int32,
    )
    keys = keys.masked_fill(ci.labels.unsqueeze(0) == targets.unsqueeze(1), _INT32_MAX)
    return keys.topk(k, dim=1, largest=False, sorted=False).indices


def sample_contrast_indices(
    targets: torch.Tensor,
    indices: torch.Tensor,
    class_index: ClassIndex,
    k: int,
    generator: torch.Generator | None = None,
    mode: str = "exact",
    replacement: bool = False,
) -> torch.Tensor:
    """(B, k + 1) long: column 0 the positive, columns 1..k the negatives (module docstring).

    `targets` (B,): hard labels; `indices` (B,): dataset indices; `class_index` on the same
    device; `generator` (optional) a torch.Generator on that device.
    """
    if mode not in ("exact", "relax"):
        raise ValueError(f"unknown CRD mode {mode!r}: expected 'exact' or 'relax'")
    if k < 1:
        raise ValueError(f"CRD needs at least one negative, got k = {k}")
    ci = class_index
    if replacement or k > ci.n_data:
        negatives = _other_class_with_replacement(targets, ci, k, generator)
    else:
        negatives = _other_class_without_replacement(targets, ci, k, generator)
        if k > ci.n_data - ci.max_count:  # some class's pool is smaller than k
            pool = ci.n_data - ci.counts[targets]
            fallback = _other_class_with_replacement(targets, ci, k, generator)
            negatives = torch.where((pool >= k).unsqueeze(1), negatives, fallback)
    if mode == "exact":
        positive = indices.long()
    else:
        draw = torch.randint(0, _WIDE, targets.shape, generator=generator, device=targets.device)
        positive = ci.order[ci.starts[targets] + draw % ci.counts[targets].clamp_min(1)]
    return torch.cat([positive.unsqueeze(1), negatives], dim=1)
