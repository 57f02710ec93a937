"""`make bench` sections `cqkd_step` and `dml_step`: a training step's cost against the
supervised low-resolution baseline (the paper, Fig. 2b: CQKD at most +10% training time, DML
about 2x).

The paper's ResNet50 -> ResNet18 at 224 is too slow for a CPU benchmark; the pair here is the
CIFAR one resnet32x4 (teacher, 32 px) -> resnet8x4 (student, 16 px), batch 64, 100 classes, on
CIFAR-shaped synthetic images, through `tools.bench.method_step_cost` (the engine's whole
step: forward, losses, backward, AdamW, schedule). CQKD's extra cost is the teacher's
no-grad forward at full resolution, so the ratio depends on the teacher's size next to the
student's forward and backward at low resolution; the figures are in cqkd/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from common.bench import method_step_cost

RECIPE = Path(__file__).resolve().parent / "recipes" / "base" / "cifar10" / "resnet20_resnet8.yaml"
PAIR = ["teacher.name=resnet32x4", "student.name=resnet8x4", "train.batch_size=64"]


def step_ms(device: torch.device, steps: int, overrides: list[str]) -> dict[str, Any]:
    """`method_step_cost` of the CIFAR pair with `overrides`."""
    return method_step_cost(RECIPE, device, steps, [*PAIR, *overrides])


def baseline_ms(device: torch.device, steps: int, resolution: int) -> float:
    """The supervised baseline's step (ms) at `resolution` (0 = 32 px)."""
    overrides = ["method.name=lowres", f"student.resolution={resolution}"]
    return step_ms(device, steps, overrides)["step_ms"]


def cqkd_step_cost(device: torch.device, steps: int) -> dict[str, Any]:
    """CQKD T=10 at 16 px (teacher at 32 px) against the low-resolution baseline at 16 and
    32 px (section `cqkd_step`)."""
    cqkd = step_ms(device, steps, ["method.name=cqkd", "student.resolution=16"])
    base16, base32 = baseline_ms(device, steps, 16), baseline_ms(device, steps, 0)
    return {
        "pair": "resnet32x4 (32 px) -> resnet8x4 (16 px), batch 64",
        "baseline_32px_step_ms": base32,
        "baseline_16px_step_ms": base16,
        "cqkd_16px_step_ms": cqkd["step_ms"],
        "cqkd_over_baseline_16px": cqkd["step_ms"] / base16,
        "cqkd_peak_memory_mb": cqkd["peak_memory_mb"],
    }


def dml_step_cost(device: torch.device, steps: int) -> dict[str, Any]:
    """DML (cohort of 3) at 16 px against the low-resolution baseline at 16 px (section
    `dml_step`)."""
    dml = step_ms(device, steps, ["method.name=dml", "student.resolution=16"])
    base16 = baseline_ms(device, steps, 16)
    return {
        "pair": "resnet8x4 cohort of 3 at 16 px, batch 64",
        "baseline_16px_step_ms": base16,
        "dml_16px_step_ms": dml["step_ms"],
        "dml_over_baseline_16px": dml["step_ms"] / base16,
        "dml_peak_memory_mb": dml["peak_memory_mb"],
    }
