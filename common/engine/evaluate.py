"""Validation: top-1/top-5, ECE, NLL and entropy over the whole (sharded) validation set."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from common.engine.distributed import all_reduce_sum
from common.metrics import EvalAccumulator


@torch.no_grad()
def evaluate(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    autocast: Callable[[], object],
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Run `logits_fn` over this process's shard of `loader`; sums are all-reduced, so every
    process returns the metrics of the whole validation set. The sums live on `device` (the
    process's device), so a process whose shard is empty still takes part in the reduction."""
    acc = EvalAccumulator(n_bins=15, device=device)
    for images, targets in loader:
        with autocast():
            logits = logits_fn(images)
        acc.update(logits.float(), targets)
    totals = all_reduce_sum(acc.tensor())
    acc.load_tensor(totals)
    return acc.result()


def module_logits(module: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A zoo model (which returns (logits, features)) as a logits function."""
    return lambda images: module(images)[0]
