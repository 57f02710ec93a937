"""SoKD's `make bench` section `sokd_step` (a `kdzoo.bench` entry point): one engine step
resnet32x4 -> resnet8x4 (batch 64, 100 classes) during the policy search and after it, beside
the base method's (FitNet's) step, and the searching step with `shared_search_forward`. Goals:
at most 1.6x the base step while searching, 1.3x after (the policy fixed to one sub-policy).

The four steps are timed together in interleaved repeats (`common.bench.step_costs`: one
thread and thread CPU time on the CPU); each "x its base" is taken within a repeat, and the
figures are medians with `*_spread` their [min, max] over the repeats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from common.bench import StepSpec, step_costs
from common.bench.sections import bench_recipe

SOKD_RECIPE = (
    Path(__file__).resolve().parent / "recipes" / "cifar100" / "resnet32x4_resnet8x4_fitnet.yaml"
)
BASE_RECIPE = bench_recipe("fitnet")
FIXED_EPOCH = 10_000  # far past the search: the policy fixed to one sub-policy
SHARED = ("method.shared_search_forward=true",)


def bench_sokd_step(device: torch.device, steps: int) -> dict[str, Any]:
    """SoKD over FitNet resnet32x4 -> resnet8x4: its step during and after the search
    against FitNet's step."""
    specs = {
        "fitnet": StepSpec(BASE_RECIPE, bare=False),
        "search": StepSpec(SOKD_RECIPE, epoch=0, bare=False),
        "shared": StepSpec(SOKD_RECIPE, SHARED, epoch=0, bare=False),
        "fixed": StepSpec(SOKD_RECIPE, epoch=FIXED_EPOCH, bare=False),
    }
    costs, timing = step_costs(specs, device, steps)
    search, fixed = timing.ratio("search", "fitnet"), timing.ratio("fixed", "fitnet")
    shared = timing.ratio("shared", "fitnet")
    return {
        "pair": "resnet32x4 -> resnet8x4, batch 64, base fitnet",
        "device": str(device),
        "fitnet_step_ms": costs["fitnet"]["step_ms"],
        "fitnet_step_ms_spread": costs["fitnet"]["step_ms_spread"],
        "sokd_search_step_ms": costs["search"]["step_ms"],
        "sokd_search_step_ms_spread": costs["search"]["step_ms_spread"],
        "sokd_search_shared_step_ms": costs["shared"]["step_ms"],
        "sokd_search_shared_step_ms_spread": costs["shared"]["step_ms_spread"],
        "sokd_fixed_step_ms": costs["fixed"]["step_ms"],
        "sokd_fixed_step_ms_spread": costs["fixed"]["step_ms_spread"],
        "search_over_base": search.median,
        "search_over_base_spread": search.bounds(),
        "search_shared_over_base": shared.median,
        "search_shared_over_base_spread": shared.bounds(),
        "fixed_over_base": fixed.median,
        "fixed_over_base_spread": fixed.bounds(),
        "timing": costs["fitnet"]["timing"],
    }
