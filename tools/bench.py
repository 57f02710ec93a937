"""Speed and memory benchmarks (`make bench`); the figures in README.md come from here.

    python tools/bench.py                       # every section, on CUDA when present
    python tools/bench.py --sections kd_step --steps 20 --device cpu --json out.json

Sections:
  data     device-resident CIFAR pipeline vs torchvision's PIL DataLoader (real CIFAR-10 tree)
  kd_step  one KD training step resnet32x4 -> resnet8x4 (batch 64, 100 classes): images/s, peak
           memory, and the share of the step spent outside the models' forward and backward
  cqkd_step  CQKD's step (resnet32x4 at 32 px -> resnet8x4 at 16 px) against the supervised
           low-resolution baseline (cqkd/bench_steps.py; the paper: at most +10%)
  dml_step   DML's step (cohort of 3 resnet8x4 at 16 px) against that baseline (paper: ~2x)
  slkd_step  SLKD's step resnet32x4 -> resnet8x4 (two resnet32x4 SL-teachers) against KD's
  r2kd_step, r2kd_step_cutmix  R2KD's step resnet32x4 -> resnet8x4 against KD's, without and with
           the CutMix copy (r2kd/bench.py)
  soft_rank  R2KD's rank term, soft (fwd + bwd) vs hard, at (64, 100) and (256, 1000); memory
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from common.config import load_recipe
from common.data import build_data
from common.engine.build import seed_everything
from common.engine.distributed import DistInfo, resolve_device
from common.engine.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
KD_RECIPE = REPO / "tools" / "recipes" / "kd" / "cifar100" / "resnet32x4_resnet8x4.yaml"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, steps: int, warmup: int) -> float:
    """Median seconds per call of `fn` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        sync(device)
        tic = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - tic)
    times.sort()
    return times[len(times) // 2]


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated (CUDA) or peak resident set size of the process (CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def method_step_cost(
    recipe: Path, device: torch.device, steps: int, overrides: list[str] = ()
) -> dict[str, Any]:
    """Time the engine's whole step against the models' bare forward/backward.

    The step is `Trainer.train_step` (method forward, losses, backward, optimiser, schedule).
    The bare work is the teacher's no-grad forward plus, for every trained network (the student
    and the method's `extra_eval_models()`), a forward and a backward of its logits' sum. Data
    come from CIFAR-shaped synthetic images (100 classes).
    """
    cfg = load_recipe(
        recipe,
        [
            "data.name=synthetic",
            "data.synthetic.num_classes=100",
            "data.synthetic.num_superclasses=20",
            "data.synthetic.train_per_class=8",
            "data.synthetic.val_per_class=1",
            "teacher.checkpoint=",
            *overrides,
        ],
    )
    seed_everything(0)
    data = build_data(cfg.data, batch_size=cfg.train.batch_size, device=device, seed=0)
    cfg.teacher.checkpoint = ""
    distiller = _build_untrained(cfg, data.spec)
    trainer = Trainer(cfg, distiller, data, Path("/tmp/kdzoo-bench"), DistInfo(), device)
    trainer.model.train()
    data.train.set_epoch(0)
    images, targets = next(iter(data.train))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step = timed(lambda: trainer.train_step(images, targets, 0), device, steps, warmup=3)
    teacher = distiller.teacher
    trained = [distiller.student, *distiller.extra_eval_models().values()]

    def bare() -> None:
        if teacher is not None:
            with torch.no_grad():
                teacher(images)
        for net in trained:
            net(images)[0].sum().backward()

    models = timed(bare, device, steps, warmup=2)
    batch = images.shape[0]
    return {
        "recipe": str(recipe.relative_to(REPO)),
        "device": str(device),
        "batch": batch,
        "step_ms": step * 1e3,
        "models_fwd_bwd_ms": models * 1e3,
        "images_per_second": batch / step,
        "outside_models_share": max(step - models, 0.0) / step,
        "peak_memory_mb": peak_memory_mb(device),
    }


def _build_untrained(cfg, spec):
    """The recipe's distiller with a randomly initialised teacher (speed does not need one)."""
    from common.methods.registry import get_method
    from common.models import build_model

    cls = get_method(cfg.method.name)
    student = build_model(cfg.student.name, spec.num_classes)
    teacher = build_model(cfg.teacher.name, spec.num_classes) if cls.needs_teacher else None
    if teacher is not None:
        teacher.eval().requires_grad_(False)
    return cls.from_config(cfg, student, teacher, spec)


def bench_kd_step(device: torch.device, steps: int) -> dict[str, Any]:
    return method_step_cost(KD_RECIPE, device, steps)


def bench_data(device: torch.device, steps: int) -> dict[str, Any]:
    """The real CIFAR-10 archive, unpacked once into the same cache the tests use."""
    from common.data.archives import unpack_once
    from tools.bench_data import bench_data_pipeline

    shared = Path(os.environ.get("KD_SHARED_DATA") or REPO.parent / "shared" / "data")
    cache = Path(os.environ.get("KD_DATA_CACHE") or "~/.cache/kdzoo/shared").expanduser()
    root = unpack_once(shared / "cifar10-jpg.tar.gz", cache / "cifar10-jpg")
    return bench_data_pipeline(str(root), steps=max(steps, 20))


def bench_cqkd_step(device: torch.device, steps: int) -> dict[str, Any]:
    from cqkd.bench_steps import cqkd_step_cost

    return cqkd_step_cost(device, steps)


def bench_dml_step(device: torch.device, steps: int) -> dict[str, Any]:
    from cqkd.bench_steps import dml_step_cost

    return dml_step_cost(device, steps)


SLKD_RECIPE = REPO / "slkd" / "recipes" / "cifar100" / "resnet32x4_resnet8x4.yaml"


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


def bench_r2kd_step(device: torch.device, steps: int) -> dict[str, Any]:
    """R2KD resnet32x4 -> resnet8x4 (pruned teacher, value + rank) against KD."""
    from r2kd.bench import r2kd_step_cost

    return r2kd_step_cost(method_step_cost, device, steps, "none")


def bench_r2kd_step_cutmix(device: torch.device, steps: int) -> dict[str, Any]:
    """The same with R2KD's CutMix copy (a second pass of all three networks)."""
    from r2kd.bench import r2kd_step_cost

    return r2kd_step_cost(method_step_cost, device, steps, "cutmix")


def bench_soft_rank(device: torch.device, steps: int) -> dict[str, Any]:
    """R2KD's rank term at 100 and 1000 classes: soft (fwd + bwd) vs hard, and soft's memory."""
    from r2kd.bench import soft_rank_cost

    return soft_rank_cost(device, steps)


SECTIONS: dict[str, Callable[[torch.device, int], dict[str, Any]]] = {
    "data": bench_data,
    "kd_step": bench_kd_step,
    "cqkd_step": bench_cqkd_step,
    "dml_step": bench_dml_step,
    "slkd_step": bench_slkd_step,
    "r2kd_step": bench_r2kd_step,
    "r2kd_step_cutmix": bench_r2kd_step_cutmix,
    "soft_rank": bench_soft_rank,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    torch.backends.cudnn.benchmark = True
    results = {}
    for name in args.sections.split(","):
        if name not in SECTIONS:
            print(
                f"error: unknown section '{name}' (known: {', '.join(SECTIONS)})", file=sys.stderr
            )
            return 2
        print(f"== {name} ==", flush=True)
        results[name] = SECTIONS[name](device, args.steps)
        for key, value in results[name].items():
            shown = f"{value:.4g}" if isinstance(value, float) else value
            print(f"  {key}: {shown}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
