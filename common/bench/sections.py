"""The sections of `make bench`: the shared ones here, the methods' from their packages.

A section is a function `(device, steps) -> {name: value}`. The paper packages declare theirs
as entry points of the group `kdzoo.bench` (`r2kd_step = "r2kd.bench:bench_r2kd_step"` in
pyproject.toml), so `tools/bench.py` lists none of them and a third-party package adds its own
by being installed. The recipes the shared sections time are in `common/bench/recipes/`,
shipped with the package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from common.bench.steps import method_step_cost
from common.errors import ConfigError
from common.registry import Registry

RECIPES = Path(__file__).resolve().parent / "recipes"  # shipped with the package


def bench_recipe(method: str) -> Path:
    """The package's recipe of `method` for resnet32x4 -> resnet8x4 on CIFAR-100."""
    return RECIPES / f"{method}_resnet32x4_resnet8x4.yaml"


KD_RECIPE = bench_recipe("kd")
Section = Callable[[torch.device, int], dict[str, Any]]


def bench_kd_step(device: torch.device, steps: int) -> dict[str, Any]:
    """One KD step resnet32x4 -> resnet8x4 (batch 64, 100 classes) against the bare networks:
    images/s, peak memory and the share of the step spent outside the models."""
    return method_step_cost(KD_RECIPE, device, steps)


def bench_data(device: torch.device, steps: int) -> dict[str, Any]:
    """The device-resident CIFAR pipeline vs torchvision's DataLoader, real CIFAR-10."""
    from common.bench.data_pipeline import bench_data_pipeline, default_root

    return bench_data_pipeline(str(default_root()), steps=max(steps, 20), device=str(device))


FEATURE_METHODS = ("fitnet", "at", "crd", "reviewkd")
CIFAR_TRAIN_SIZE = 50_000


def bench_feature_step(device: torch.device, steps: int) -> dict[str, Any]:
    """FitNet, AT, CRD and ReviewKD, one engine step each resnet32x4 -> resnet8x4 (batch 64)
    beside the networks' bare forward/backward (goal: FitNet and AT at most 5% outside the
    networks, CRD and ReviewKD 15%); the networks include the trained adapters (FitNet's
    regressor, ReviewKD's fusion); CRD's memory banks sized for CIFAR's 50,000 images."""
    out: dict[str, Any] = {}
    for name in FEATURE_METHODS:
        cost = method_step_cost(bench_recipe(name), device, steps, train_size=CIFAR_TRAIN_SIZE)
        for key in ("networks", "step_ms", "step_ms_spread", "models_fwd_bwd_ms",
                    "models_fwd_bwd_ms_spread", "outside_models_share",
                    "outside_models_share_spread", "outside_models_flop_share"):  # fmt: skip
            out[f"{name}_{key}"] = cost[key]
        out[f"{name}_peak_memory_mb"] = cost["peak_memory_mb"]
        if name == "crd":
            out["crd_memory_banks_mb"] = cost["method_buffers_mb"]
    out["device"] = str(device)
    out["timing"] = cost["timing"]
    return out


def bench_kd_speed(device: torch.device, steps: int) -> dict[str, Any]:
    """The standard CIFAR-100 KD run (resnet32x4 -> resnet8x4, 240 epochs): an mdistiller-style
    loop against ours as shipped, fast eager, compile and cudagraph (common/bench/speed.py)."""
    from common.bench.speed import bench_kd_speed as measure

    return measure(device, steps)


BUILTIN: dict[str, Section] = {
    "data": bench_data,
    "kd_step": bench_kd_step,
    "feature_step": bench_feature_step,
    "kd_speed": bench_kd_speed,
}
SECTIONS: Registry[Section] = Registry("bench section", "kdzoo.bench")
for _name, _section in BUILTIN.items():
    SECTIONS.add(_name, _section)
ENTRY_POINT_GROUP = SECTIONS.group


def section_names() -> list[str]:
    """The shared sections, then every installed package's (nothing is imported)."""
    return SECTIONS.names()


def get_section(name: str) -> Section:
    """The section called `name` (ConfigError naming the known ones otherwise)."""
    try:
        return SECTIONS.get(name)
    except KeyError:
        raise ConfigError(
            f"unknown bench section '{name}' (known: {', '.join(section_names())})"
        ) from None


def section_doc(name: str) -> str:
    """The first line of a section's docstring."""
    doc = get_section(name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
