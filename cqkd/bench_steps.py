"""`make bench` sections `cqkd_step` and `dml_step`: a training step's cost against the
supervised low-resolution baseline (the paper, Fig. 2b: CQKD at most +10% training time, DML
about 2x).

The paper's ResNet50 -> ResNet18 at 224 is too slow for a CPU benchmark; the pair here is the
CIFAR one resnet32x4 (teacher, 32 px) -> resnet8x4 (student, 16 px), batch 64, 100 classes, on
CIFAR-shaped synthetic images, through `common.bench.step_costs` (the engine's whole step:
forward, losses, backward, AdamW, schedule; the steps compared timed in interleaved repeats,
one thread and thread CPU time on the CPU, each ratio taken within a repeat). CQKD's extra
cost is the teacher's no-grad forward at full resolution, so the ratio depends on the teacher's
size next to the student's forward and backward at low resolution; the figures are in
cqkd/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from common.bench import StepSpec, step_costs

RECIPE = Path(__file__).resolve().parent / "recipes" / "base" / "cifar10" / "resnet20_resnet8.yaml"
PAIR = ["teacher.name=resnet32x4", "student.name=resnet8x4", "train.batch_size=64"]


def spec(overrides: list[str]) -> StepSpec:
    """The CIFAR pair with `overrides`, its step timed alone (no bare pass)."""
    return StepSpec(RECIPE, [*PAIR, *overrides], bare=False)


def baseline(resolution: int) -> StepSpec:
    """The supervised baseline at `resolution` (0 = 32 px)."""
    return spec(["method.name=lowres", f"student.resolution={resolution}"])


def cqkd_step_cost(device: torch.device, steps: int) -> dict[str, Any]:
    """CQKD T=10 at 16 px (teacher at 32 px) against the low-resolution baseline at 16 and
    32 px (section `cqkd_step`)."""
    specs = {
        "cqkd": spec(["method.name=cqkd", "student.resolution=16"]),
        "base16": baseline(16),
        "base32": baseline(0),
    }
    costs, timing = step_costs(specs, device, steps)
    ratio = timing.ratio("cqkd", "base16")
    return {
        "pair": "resnet32x4 (32 px) -> resnet8x4 (16 px), batch 64",
        "baseline_32px_step_ms": costs["base32"]["step_ms"],
        "baseline_32px_step_ms_spread": costs["base32"]["step_ms_spread"],
        "baseline_16px_step_ms": costs["base16"]["step_ms"],
        "baseline_16px_step_ms_spread": costs["base16"]["step_ms_spread"],
        "cqkd_16px_step_ms": costs["cqkd"]["step_ms"],
        "cqkd_16px_step_ms_spread": costs["cqkd"]["step_ms_spread"],
        "cqkd_over_baseline_16px": ratio.median,
        "cqkd_over_baseline_16px_spread": ratio.bounds(),
        "cqkd_peak_memory_mb": costs["cqkd"]["peak_memory_mb"],
        "timing": costs["cqkd"]["timing"],
    }


def dml_step_cost(device: torch.device, steps: int) -> dict[str, Any]:
    """DML (cohort of 3) at 16 px against the low-resolution baseline at 16 px (section
    `dml_step`)."""
    specs = {"dml": spec(["method.name=dml", "student.resolution=16"]), "base16": baseline(16)}
    costs, timing = step_costs(specs, device, steps)
    ratio = timing.ratio("dml", "base16")
    return {
        "pair": "resnet8x4 cohort of 3 at 16 px, batch 64",
        "baseline_16px_step_ms": costs["base16"]["step_ms"],
        "baseline_16px_step_ms_spread": costs["base16"]["step_ms_spread"],
        "dml_16px_step_ms": costs["dml"]["step_ms"],
        "dml_16px_step_ms_spread": costs["dml"]["step_ms_spread"],
        "dml_over_baseline_16px": ratio.median,
        "dml_over_baseline_16px_spread": ratio.bounds(),
        "dml_peak_memory_mb": costs["dml"]["peak_memory_mb"],
        "timing": costs["dml"]["timing"],
    }
