"""SLKD's `make bench` section `slkd_step` (registered as a `kdzoo.bench` entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from common.bench import StepSpec, step_costs
from common.bench.sections import KD_RECIPE

SLKD_RECIPE = Path(__file__).resolve().parent / "recipes" / "cifar100" / "resnet32x4_resnet8x4.yaml"


def bench_slkd_step(device: torch.device, steps: int) -> dict[str, Any]:
    """SLKD resnet32x4 -> resnet8x4 (two resnet32x4 SL-teachers) against KD on the same pair.

    `slkd_outside_models_share` is the share of SLKD's step spent beyond the bare forward and
    backward of the student and both SL-teachers plus the teacher's forward (goal <= 10%);
    `slkd_step_vs_kd` is the whole step's cost relative to KD's (the SL-teachers' inherent cost).
    The two steps and SLKD's bare networks are timed in interleaved repeats
    (`common.bench.step_costs`); figures are medians, `*_spread` their [min, max] over the
    repeats, the share and the ratio taken within each repeat.
    """
    specs = {"kd": StepSpec(KD_RECIPE, bare=False), "slkd": StepSpec(SLKD_RECIPE)}
    costs, timing = step_costs(specs, device, steps)
    kd, slkd = costs["kd"], costs["slkd"]
    ratio = timing.ratio("slkd", "kd")
    return {
        "kd_step_ms": kd["step_ms"],
        "kd_step_ms_spread": kd["step_ms_spread"],
        "kd_peak_memory_mb": kd["peak_memory_mb"],
        "slkd_step_ms": slkd["step_ms"],
        "slkd_step_ms_spread": slkd["step_ms_spread"],
        "slkd_networks": slkd["networks"],
        "slkd_models_fwd_bwd_ms": slkd["models_fwd_bwd_ms"],
        "slkd_models_fwd_bwd_ms_spread": slkd["models_fwd_bwd_ms_spread"],
        "slkd_images_per_second": slkd["images_per_second"],
        "slkd_outside_models_share": slkd["outside_models_share"],
        "slkd_outside_models_share_spread": slkd["outside_models_share_spread"],
        "slkd_peak_memory_mb": slkd["peak_memory_mb"],
        "slkd_step_vs_kd": ratio.median,
        "slkd_step_vs_kd_spread": ratio.bounds(),
        "timing": slkd["timing"],
    }
