"""`make bench` section `kd_speed`: the standard CIFAR-100 KD run (resnet32x4 -> resnet8x4,
batch 64, 781 steps an epoch, evaluation every epoch, 240 epochs) timed side by side on one
device, our loop against an mdistiller-style loop written here (not imported):

- `mdistiller_style`: torchvision's PIL DataLoader (RandomCrop + flip + ToTensor + Normalize,
  2 workers) over the images in memory, eager fp32 NCHW, unfused SGD, the KD loss computed in
  the loop and `.item()` of it every step (as such loops log);
- `ours_shipped`: the engine with a recipe's defaults on this device (on CUDA: bf16 autocast,
  channels_last, the teacher in bf16; on the CPU: fp32), device-resident data;
- `ours_fast_eager`: the same forced to bf16 autocast and channels_last;
- `ours_compile`: `train.graph=compile`;
- `ours_cudagraph`: `train.graph=cudagraph` (CUDA only).

Step milliseconds are timed over blocks of steps (the data loading included), never single
steps, the loops interleaved over repeats (`interleaved_seconds`, wall clock: the
mdistiller-style loop's DataLoader workers run in other processes); each figure is the median
over the repeats, `*_spread` its [min, max], `*_step_speedup` the per-repeat step ratio. On
CUDA an epoch (781 steps), an evaluation (10,000 images) and a checkpoint are timed whole; on
the CPU (`--steps` small) they are projected from the step and from a 1,000-image evaluation,
and say so (`*_projected`). The 240-epoch figure is 240 x (epoch + evaluation +
checkpoint); the speed-up is the mdistiller-style projection over ours.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from common.bench.steps import SYNTHETIC_CIFAR100, build_untrained
from common.bench.timing import interleaved_seconds
from common.config import load_recipe
from common.data import build_data
from common.engine.build import seed_everything
from common.engine.distributed import DistInfo
from common.engine.trainer import Trainer
from common.methods.losses import kd_loss

KD_RECIPE = Path(__file__).resolve().parent / "recipes" / "kd_resnet32x4_resnet8x4.yaml"
STEPS_PER_EPOCH, EPOCHS, VAL_IMAGES = 781, 240, 10_000
MODES = {
    "ours_shipped": [],
    "ours_fast_eager": ["train.amp=bf16", "train.channels_last=true"],
    "ours_compile": ["train.graph=compile"],
    "ours_cudagraph": ["train.graph=cudagraph"],
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clock(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    tic = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - tic


def _endless(loader: Any, set_epoch: bool) -> Any:
    for epoch in itertools.count():
        if set_epoch:
            loader.set_epoch(epoch)
        yield from loader


@dataclass
class Loop:
    """A loop ready to time: `step` runs one training step (its data loading included);
    `rest(step_seconds)` measures or projects the rest (epoch, evaluation, checkpoint)."""

    step: Callable[[], object]
    rest: Callable[[float], dict[str, float]]


def our_loop(device: torch.device, overrides: list[str]) -> Loop:
    """The engine on the KD recipe, its first five steps taken (compile/capture seconds); the
    rest: epoch (CUDA: one whole; CPU: projected), evaluation and checkpoint seconds."""
    cuda = device.type == "cuda"
    per_class = 500 if cuda else 16
    cfg = load_recipe(
        KD_RECIPE,
        [*SYNTHETIC_CIFAR100, f"data.synthetic.train_per_class={per_class}",
         f"data.synthetic.val_per_class={100 if cuda else 10}", *overrides],
    )  # fmt: skip
    seed_everything(0)
    data = build_data(cfg.data, batch_size=cfg.train.batch_size, device=device, seed=0)
    out = Path(tempfile.mkdtemp(prefix="kdzoo-speed-"))
    trainer = Trainer(cfg, build_untrained(cfg, data.spec), data, out, DistInfo(), device)
    trainer.method.train()
    trainer.method.start_epoch(0)
    batches = _endless(data.train, set_epoch=True)
    run = trainer.captured if trainer.captured is not None else trainer.train_step
    first = _clock(lambda: [run(next(batches), k) for k in range(5)], device)

    def rest(step: float) -> dict[str, float]:
        result = {"step_ms": step * 1e3, "first_5_steps_s": first}
        if cuda:
            data.train.set_epoch(1)
            epoch = _clock(lambda: [run(b, k) for k, b in enumerate(data.train)], device)
            result["epoch_s"] = epoch
            result["steps_per_epoch_measured"] = len(data.train)
        else:
            result["epoch_s_projected"] = step * STEPS_PER_EPOCH
        evaluation = _clock(trainer.evaluate_all, device)
        scale = VAL_IMAGES / data.spec.val_size
        result["eval_s" if scale == 1 else "eval_s_projected"] = evaluation * scale
        result["checkpoint_s"] = _clock(lambda: trainer.save_last(wait=True), device)
        return result

    return Loop(lambda: run(next(batches), 10), rest)


def mdistiller_style_loop(device: torch.device) -> Loop:
    """The loop most KD code runs: PIL DataLoader, eager fp32, `.item()` every step."""
    from common.bench.data_pipeline import InMemoryPIL

    cfg = load_recipe(KD_RECIPE, [*SYNTHETIC_CIFAR100, "data.synthetic.train_per_class=64"])
    data = build_data(cfg.data, batch_size=64, device="cpu", seed=0)
    torch.manual_seed(0)
    student = build_untrained(cfg, data.spec).student.to(device).train()
    teacher = build_untrained(cfg, data.spec).teacher.to(device).eval()
    opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(InMemoryPIL(data.train.images.cpu(), data.train.labels.cpu()),
                        batch_size=64, shuffle=True, num_workers=2, drop_last=True,
                        persistent_workers=True)  # fmt: skip
    batches = _endless(loader, set_epoch=False)
    logged: list[float] = []

    def step() -> None:
        images, targets = next(batches)
        images, targets = images.to(device), targets.to(device)
        logits, _ = student(images)
        with torch.no_grad():
            teacher_logits, _ = teacher(images)
        loss = 0.1 * F.cross_entropy(logits, targets) + 0.9 * kd_loss(logits, teacher_logits, 4.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        logged.append(loss.item())  # the per-step host read such loops log with

    def rest(seconds: float) -> dict[str, float]:
        return {"step_ms": seconds * 1e3, "epoch_s_projected": seconds * STEPS_PER_EPOCH}

    return Loop(step, rest)


def _projection_minutes(result: dict[str, float], eval_s: float, ckpt_s: float) -> float:
    epoch = result.get("epoch_s", result.get("epoch_s_projected", 0.0))
    return EPOCHS * (epoch + eval_s + ckpt_s) / 60


def bench_kd_speed(device: torch.device, steps: int) -> dict[str, Any]:
    """The standard KD run's speed: mdistiller-style loop vs ours (shipped, fast eager,
    compile, cudagraph), step ms, epoch, evaluation, checkpoint and compile seconds, the
    240-epoch projection and the speed-up. The loops' steps are timed together in interleaved
    repeats (`interleaved_seconds`, by the wall clock with the process's threads: the
    mdistiller-style loop's DataLoader workers are part of its cost); `*_step_speedup` is the
    mdistiller-style step over ours within each repeat, median with its [min, max]."""
    out: dict[str, Any] = {"device": str(device), "pair": "resnet32x4 -> resnet8x4, batch 64"}
    loops = {"mdistiller_style": mdistiller_style_loop(device)}
    for mode, overrides in MODES.items():
        if mode == "ours_cudagraph" and device.type != "cuda":
            out[f"{mode}_skipped"] = "needs CUDA"
            continue
        loops[mode] = our_loop(device, overrides)
    timing = interleaved_seconds(
        {name: loop.step for name, loop in loops.items()}, steps, warmup=2, device=device,
        thread_time=False,
    )  # fmt: skip
    out["timing"] = (
        f"{timing.clock}, median [min, max] of {timing.repeats} interleaved repeats of "
        f"{timing.calls} steps"
    )
    results = {name: loop.rest(timing.seconds(name).median) for name, loop in loops.items()}
    base = results.pop("mdistiller_style")
    reference = results["ours_shipped"]
    eval_s = reference.get("eval_s", reference.get("eval_s_projected", 0.0))
    # the mdistiller-style loop evaluates and saves as our eager loop does (same networks)
    base_minutes = _projection_minutes(base, eval_s, reference["checkpoint_s"])
    out.update({f"mdistiller_style_{k}": v for k, v in base.items()})
    out["mdistiller_style_step_ms_spread"] = timing.seconds("mdistiller_style").scaled(1e3).bounds()
    out["mdistiller_style_240_epochs_min"] = base_minutes
    for mode, result in results.items():
        out.update({f"{mode}_{k}": v for k, v in result.items()})
        out[f"{mode}_step_ms_spread"] = timing.seconds(mode).scaled(1e3).bounds()
        minutes = _projection_minutes(
            result,
            result.get("eval_s", result.get("eval_s_projected", 0.0)),
            result["checkpoint_s"],
        )
        out[f"{mode}_240_epochs_min"] = minutes
        out[f"{mode}_speedup"] = base_minutes / minutes
        step_speedup = timing.ratio("mdistiller_style", mode)
        out[f"{mode}_step_speedup"] = step_speedup.median
        out[f"{mode}_step_speedup_spread"] = step_speedup.bounds()
    return out
