"""One engine training step of a recipe, timed beside the bare forward/backward of its networks.

`method_step_cost(recipe)` is what every `*_step` section of `make bench` measures: the
engine's whole step (`Trainer.train_step`: method forward, losses, backward, optimiser,
schedule) and, as the floor nothing can beat, the teacher's no-grad forward plus a forward and
a backward of the logits' sum of every trained network (the student and the method's
`extra_eval_models()`). The share between the two is what the method and the engine add.
Data are CIFAR-shaped synthetic images (100 classes); the teacher is randomly initialised
(speed does not need a trained one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from common.bench.timing import peak_memory_mb, reset_peak_memory, seconds_per_call
from common.config import RunConfig, load_recipe
from common.data import DataSpec, build_data
from common.engine.build import seed_everything
from common.engine.distributed import DistInfo
from common.engine.trainer import Trainer
from common.methods.base import Distiller
from common.methods.registry import get_method
from common.models import build_model

SYNTHETIC_CIFAR100 = [
    "data.name=synthetic",
    "data.synthetic.num_classes=100",
    "data.synthetic.num_superclasses=20",
    "data.synthetic.train_per_class=8",
    "data.synthetic.val_per_class=1",
    "teacher.checkpoint=",
    "log.writers=[]",
]


def build_untrained(cfg: RunConfig, spec: DataSpec) -> Distiller:
    """The recipe's distiller with a randomly initialised teacher."""
    cls = get_method(cfg.method.name)
    student = build_model(cfg.student.name, spec.num_classes)
    teacher = build_model(cfg.teacher.name, spec.num_classes) if cls.needs_teacher else None
    if teacher is not None:
        teacher.eval().requires_grad_(False)
    return cls.from_config(cfg, student, teacher, spec)


def step_trainer(
    recipe: str | Path,
    device: torch.device,
    overrides: Sequence[str] = (),
    train_size: int = 0,
) -> tuple[Trainer, Any]:
    """A Trainer of `recipe` on synthetic CIFAR-100-shaped data, and one training batch;
    `train_size` > 0 makes the method see a training set of that many labels (CRD's memory
    banks at CIFAR's 50,000 rather than the synthetic set's 800)."""
    cfg = load_recipe(recipe, [*SYNTHETIC_CIFAR100, *overrides])
    seed_everything(0)
    data = build_data(cfg.data, batch_size=cfg.train.batch_size, device=device, seed=0)
    if train_size:
        data.spec.train_targets = torch.arange(train_size) % data.spec.num_classes
    distiller = build_untrained(cfg, data.spec)
    trainer = Trainer(cfg, distiller, data, Path("/tmp/kdzoo-bench"), DistInfo(), device)
    trainer.method.train()
    trainer.method.start_epoch(0)
    data.train.set_epoch(0)
    return trainer, next(iter(data.train))


def forward_flops(fn: Any) -> int:
    """FLOPs `fn` runs (torch.utils.flop_counter), without a graph."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def method_buffer_bytes(method: Distiller) -> int:
    """Bytes of the method's own buffers (not the networks'): e.g. CRD's memory banks."""
    return sum(
        b.numel() * b.element_size()
        for name, b in method.named_buffers()
        if not name.startswith(("student.", "teacher."))
    )


def method_step_cost(
    recipe: str | Path,
    device: torch.device,
    steps: int,
    overrides: Sequence[str] = (),
    train_size: int = 0,
) -> dict[str, Any]:
    """The step of `recipe` (ms, images/s, peak memory) against its networks' bare work."""
    trainer, batch = step_trainer(recipe, device, overrides, train_size)
    reset_peak_memory(device)
    step = seconds_per_call(lambda: trainer.train_step(batch), steps)
    distiller = trainer.method
    teacher = distiller.teacher
    trained = [distiller.student, *distiller.extra_eval_models().values()]
    images = batch.images

    def bare() -> None:
        if teacher is not None:
            with torch.no_grad():
                teacher(images)
        for net in trained:
            net(images)[0].sum().backward()

    models = seconds_per_call(bare, steps, warmup=2)
    method_flops = forward_flops(lambda: distiller.forward_train(batch))
    network_flops = forward_flops(
        lambda: [net(images) for net in (*trained, *([teacher] if teacher is not None else []))]
    )
    return {
        "recipe": str(recipe),
        "device": str(device),
        "batch": batch.size,
        "step_ms": step * 1e3,
        "models_fwd_bwd_ms": models * 1e3,
        "images_per_second": batch.size / step,
        "outside_models_share": max(step - models, 0.0) / step,
        "peak_memory_mb": peak_memory_mb(device),
        "method_buffers_mb": method_buffer_bytes(trainer.method) / 2**20,
        # Forward FLOPs beyond the networks' own (the method's modules and losses): how much
        # of the time outside the networks is arithmetic the method adds, not engine glue.
        "outside_models_flop_share": max(method_flops - network_flops, 0) / max(method_flops, 1),
    }
