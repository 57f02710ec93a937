"""SLKD's `make bench` section `slkd_step` (registered as a `kdzoo.bench` entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from common.bench import method_step_cost
from common.bench.sections import KD_RECIPE

SLKD_RECIPE = Path(__file__).resolve().parent / "recipes" / "cifar100" / "resnet32x4_resnet8x4.yaml"


def bench_slkd_step(device: torch.device, steps: int) -> dict[str, Any]:
    """SLKD resnet32x4 -> resnet8x4 (two resnet32x4 SL-teachers) against KD on the same pair.

    `slkd_outside_models_share` is the share of SLKD's step spent beyond the bare forward and
    backward of the student and both SL-teachers plus the teacher's forward (goal <= 10%);
    `slkd_step_vs_kd` is the whole step's cost relative to KD's (the SL-teachers' inherent cost).
    """
    kd = method_step_cost(KD_RECIPE, device, steps)
    slkd = method_step_cost(SLKD_RECIPE, device, steps)
    return {
        "kd_step_ms": kd["step_ms"],
        "kd_peak_memory_mb": kd["peak_memory_mb"],
        "slkd_step_ms": slkd["step_ms"],
        "slkd_models_fwd_bwd_ms": slkd["models_fwd_bwd_ms"],
        "slkd_images_per_second": slkd["images_per_second"],
        "slkd_outside_models_share": slkd["outside_models_share"],
        "slkd_peak_memory_mb": slkd["peak_memory_mb"],
        "slkd_step_vs_kd": slkd["step_ms"] / kd["step_ms"],
    }
