"""SoKD's `make bench` section `sokd_step` (a `kdzoo.bench` entry point): one engine step
resnet32x4 -> resnet8x4 (batch 64, 100 classes) during the policy search and after it, beside
the base method's (FitNet's) step, and the searching step with `shared_search_forward`. Goals:
at most 1.6x the base step while searching, 1.3x after (the policy fixed to one sub-policy)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from common.bench import seconds_per_call, step_trainer
from common.bench.sections import bench_recipe

SOKD_RECIPE = (
    Path(__file__).resolve().parent / "recipes" / "cifar100" / "resnet32x4_resnet8x4_fitnet.yaml"
)
BASE_RECIPE = bench_recipe("fitnet")


def step_ms(
    recipe: Path, device: torch.device, steps: int, epoch: int = 0, overrides: Sequence[str] = ()
) -> float:
    """Milliseconds of one engine step of `recipe` (with `overrides`) at `epoch` (0: inside
    the search)."""
    trainer, batch = step_trainer(recipe, device, overrides)
    trainer.method.start_epoch(epoch)
    return seconds_per_call(lambda: trainer.train_step(batch), steps) * 1e3


def bench_sokd_step(device: torch.device, steps: int) -> dict[str, Any]:
    """SoKD over FitNet resnet32x4 -> resnet8x4: its step during and after the search
    against FitNet's step."""
    base = step_ms(BASE_RECIPE, device, steps)
    search = step_ms(SOKD_RECIPE, device, steps, epoch=0)
    shared = step_ms(SOKD_RECIPE, device, steps, 0, ["method.shared_search_forward=true"])
    fixed = step_ms(SOKD_RECIPE, device, steps, epoch=10_000)
    return {
        "pair": "resnet32x4 -> resnet8x4, batch 64, base fitnet",
        "device": str(device),
        "fitnet_step_ms": base,
        "sokd_search_step_ms": search,
        "sokd_search_shared_step_ms": shared,
        "sokd_fixed_step_ms": fixed,
        "search_over_base": search / base,
        "search_shared_over_base": shared / base,
        "fixed_over_base": fixed / base,
    }
