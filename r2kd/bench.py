"""R2KD's benchmark sections for `tools/bench.py` (`make bench`).

* `r2kd_step_cost`: R2KD's whole training step against KD's on resnet32x4 -> resnet8x4
  (batch 64, 100 classes), plain or with the CutMix copy (both via
  `common.bench.step_costs`: interleaved repeats, one thread and thread CPU time on the CPU);
  sections `r2kd_step` and `r2kd_step_cutmix`.
* `soft_rank_cost`: the rank term alone (soft: forward + backward; hard: forward) at
  (batch, classes) = (64, 100) and (256, 1000), with the peak extra memory the soft rank needs,
  measured on CUDA and computed from tensor sizes everywhere (the CPU has no allocator counter);
  section `soft_rank`.

The sections are registered as `kdzoo.bench` entry points in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from common.bench import StepSpec, seconds_per_call, step_costs
from common.bench.sections import KD_RECIPE
from r2kd.losses import probabilities, rank_distance
from r2kd.soft_rank import CHUNK_ELEMENTS, _rows_per_chunk

R2KD_RECIPE = Path(__file__).resolve().parent / "recipes" / "cifar100" / "resnet32x4_resnet8x4.yaml"
SHAPES = ((64, 100), (256, 1000))


def r2kd_step_cost(device: torch.device, steps: int, augment: str) -> dict[str, Any]:
    """R2KD's step (with `augment`) beside KD's, the two steps and R2KD's bare networks timed
    in interleaved repeats (`common.bench.step_costs`); figures are medians, `*_spread` their
    [min, max] over the repeats, `r2kd_step_vs_kd` the ratio taken within each repeat.

    `r2kd_outside_models_share` counts everything beyond the student's forward/backward and the
    teacher's forward: the pruned teacher's forward, the losses and, with an augmented copy,
    the second student pass and the two teachers' passes on it.
    """
    specs = {
        "kd": StepSpec(KD_RECIPE, bare=False),
        "r2kd": StepSpec(R2KD_RECIPE, [f"method.augment={augment}"]),
    }
    costs, timing = step_costs(specs, device, steps)
    kd, r2kd = costs["kd"], costs["r2kd"]
    ratio = timing.ratio("r2kd", "kd")
    return {
        "augment": augment,
        "kd_step_ms": kd["step_ms"],
        "kd_step_ms_spread": kd["step_ms_spread"],
        "kd_peak_memory_mb": kd["peak_memory_mb"],
        "r2kd_step_ms": r2kd["step_ms"],
        "r2kd_step_ms_spread": r2kd["step_ms_spread"],
        "r2kd_images_per_second": r2kd["images_per_second"],
        "r2kd_networks": r2kd["networks"],
        "r2kd_outside_models_share": r2kd["outside_models_share"],
        "r2kd_outside_models_share_spread": r2kd["outside_models_share_spread"],
        "r2kd_peak_memory_mb": r2kd["peak_memory_mb"],
        "r2kd_step_vs_kd": ratio.median,
        "r2kd_step_vs_kd_spread": ratio.bounds(),
        "timing": r2kd["timing"],
    }


def soft_rank_peak_mb(batch: int, classes: int, chunk_elements: int = CHUNK_ELEMENTS) -> float:
    """Peak extra memory of one soft rank's forward + backward, from tensor sizes (MiB).

    The backward holds two (rows, C, C) float32 tensors of a chunk at once (the sigmoids and
    1 - sigmoid); forward holds one. Plus the saved input and the output/grad, (B, C) each.
    """
    rows = min(batch, _rows_per_chunk(classes, chunk_elements))
    return (2 * rows * classes * classes + 3 * batch * classes) * 4 / 2**20


def _timed(fn: Callable[[], object], device: torch.device, steps: int) -> float:
    return seconds_per_call(fn, steps, warmup=2)


def soft_rank_cost(device: torch.device, steps: int) -> dict[str, Any]:
    """Milliseconds of the rank term per call, soft (fwd + bwd) and hard, and soft's memory."""
    out: dict[str, Any] = {}
    gen = torch.Generator().manual_seed(0)
    for batch, classes in SHAPES:
        tag = f"b{batch}_c{classes}"
        z_t = torch.randn(batch, classes, generator=gen).to(device) * 2
        z_s = (0.7 * z_t.cpu() + torch.randn(batch, classes, generator=gen)).to(device)
        p_t = probabilities(z_t, 4.0)
        logits = z_s.clone().requires_grad_(True)

        def soft(logits: torch.Tensor = logits, p_t: torch.Tensor = p_t) -> None:
            rank_distance(probabilities(logits, 4.0), p_t, "soft").backward()

        def hard(logits: torch.Tensor = logits, p_t: torch.Tensor = p_t) -> None:
            rank_distance(probabilities(logits, 4.0), p_t, "hard")

        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        out[f"soft_{tag}_ms"] = _timed(soft, device, steps) * 1e3
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) - base
            out[f"soft_{tag}_peak_mb_measured"] = peak / 2**20
        out[f"soft_{tag}_peak_mb_analytic"] = soft_rank_peak_mb(batch, classes)
        out[f"hard_{tag}_ms"] = _timed(hard, device, steps) * 1e3
        with torch.no_grad():
            p_s = probabilities(z_s, 4.0)
            gap = rank_distance(p_s, p_t, "soft") - rank_distance(p_s, p_t, "hard")
        out[f"soft_minus_hard_{tag}"] = float(gap)
    out["device"] = str(device)
    return out


def bench_r2kd_step(device: torch.device, steps: int) -> dict[str, Any]:
    """R2KD resnet32x4 -> resnet8x4 (pruned teacher, value + rank) against KD."""
    return r2kd_step_cost(device, steps, "none")


def bench_r2kd_step_cutmix(device: torch.device, steps: int) -> dict[str, Any]:
    """The same with R2KD's CutMix copy (a second pass of all three networks)."""
    return r2kd_step_cost(device, steps, "cutmix")


def bench_soft_rank(device: torch.device, steps: int) -> dict[str, Any]:
    """R2KD's rank term at 100 and 1000 classes: soft (fwd + bwd) vs hard, and soft's memory."""
    return soft_rank_cost(device, steps)
