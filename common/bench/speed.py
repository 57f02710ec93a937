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
steps. On CUDA an epoch (781 steps), an evaluation (10,000 images) and a checkpoint are timed
whole; on the CPU (`--steps` small) they are projected from the step and from a 1,000-image
evaluation, and say so (`*_projected`). The 240-epoch figure is 240 x (epoch + evaluation +
checkpoint); the speed-up is the mdistiller-style projection over ours.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from common.bench.steps import SYNTHETIC_CIFAR100, build_untrained
from common.bench.timing import seconds_per_call
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


def our_loop(device: torch.device, steps: int, overrides: list[str]) -> dict[str, float]:
    """The engine on the KD recipe: step ms (over a block), compile/capture seconds (the first
    steps), evaluation and checkpoint seconds."""
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
    step = seconds_per_call(lambda: run(next(batches), 10), steps, warmup=2)
    result = {"step_ms": step * 1e3, "first_5_steps_s": first}
    if cuda:
        data.train.set_epoch(1)
        result["epoch_s"] = _clock(lambda: [run(b, k) for k, b in enumerate(data.train)], device)
        result["steps_per_epoch_measured"] = len(data.train)
    else:
        result["epoch_s_projected"] = step * STEPS_PER_EPOCH
    evaluation = _clock(trainer.evaluate_all, device)
    scale = VAL_IMAGES / data.spec.val_size
    result["eval_s" if scale == 1 else "eval_s_projected"] = evaluation * scale
    result["checkpoint_s"] = _clock(lambda: trainer.save_last(wait=True), device)
    return result


def mdistiller_style_loop(device: torch.device, steps: int) -> dict[str, float]:
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

    seconds = seconds_per_call(step, steps, warmup=3)
    return {"step_ms": seconds * 1e3, "epoch_s_projected": seconds * STEPS_PER_EPOCH}


def _projection_minutes(result: dict[str, float], eval_s: float, ckpt_s: float) -> float:
    epoch = result.get("epoch_s", result.get("epoch_s_projected", 0.0))
    return EPOCHS * (epoch + eval_s + ckpt_s) / 60


def bench_kd_speed(device: torch.device, steps: int) -> dict[str, Any]:
    """The standard KD run's speed: mdistiller-style loop vs ours (shipped, fast eager,
    compile, cudagraph), step ms, epoch, evaluation, checkpoint and compile seconds, the
    240-epoch projection and the speed-up."""
    out: dict[str, Any] = {"device": str(device), "pair": "resnet32x4 -> resnet8x4, batch 64"}
    base = mdistiller_style_loop(device, steps)
    ours = {}
    for mode, overrides in MODES.items():
        if mode == "ours_cudagraph" and device.type != "cuda":
            out[f"{mode}_skipped"] = "needs CUDA"
            continue
        ours[mode] = our_loop(device, steps, overrides)
    reference = ours["ours_shipped"]
    eval_s = reference.get("eval_s", reference.get("eval_s_projected", 0.0))
    # the mdistiller-style loop evaluates and saves as our eager loop does (same networks)
    base_minutes = _projection_minutes(base, eval_s, reference["checkpoint_s"])
    out.update({f"mdistiller_style_{k}": v for k, v in base.items()})
    out["mdistiller_style_240_epochs_min"] = base_minutes
    for mode, result in ours.items():
        out.update({f"{mode}_{k}": v for k, v in result.items()})
        minutes = _projection_minutes(
            result,
            result.get("eval_s", result.get("eval_s_projected", 0.0)),
            result["checkpoint_s"],
        )
        out[f"{mode}_240_epochs_min"] = minutes
        out[f"{mode}_speedup"] = base_minutes / minutes
    return out
