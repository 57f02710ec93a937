"""One engine training step of a recipe, timed beside the bare forward/backward of its networks.

`method_step_cost(recipe)` (and `step_costs` for several recipes timed together) is what every
`*_step` section of `make bench` measures: the engine's whole step (`Trainer.train_step`:
method forward, losses, backward, optimiser, schedule) and, as the floor nothing can beat, the
bare pass of its networks (`BarePass`): the teacher (no grad), the student and the method's
other trained networks (`extra_eval_models()`) each once, in the step's own order and on the
inputs the step gave them, a feature method's trained adapters (FitNet's regressor, ReviewKD's
fusion) on their maps, and one backward of the trained outputs' sum. The step and the bare
pass are timed in interleaved repeats (`interleaved_seconds`: one thread and thread CPU time on
the CPU) and the share outside the networks, (step - bare) / step, is taken within each repeat:
what the method and the engine add, as a median with its [min, max]. Data are CIFAR-shaped
synthetic images (100 classes); the teacher is randomly initialised (speed does not need a
trained one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.bench.timing import Interleaved, interleaved_seconds, peak_memory_mb, reset_peak_memory
from common.config import RunConfig, load_recipe
from common.data import DataSpec, build_data
from common.engine.build import seed_everything
from common.engine.distributed import DistInfo
from common.engine.trainer import Trainer
from common.methods.base import Distiller
from common.methods.feature_base import FeatureDistiller
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


@dataclass(frozen=True)
class StepSpec:
    """One engine step to time: a recipe with `overrides`, at `epoch` (`start_epoch`), the
    method seeing `train_size` training labels (0: the synthetic set's); `bare`: also time its
    networks' bare pass (`bare_pass`) beside it."""

    recipe: str | Path
    overrides: Sequence[str] = ()
    train_size: int = 0
    epoch: int = 0
    bare: bool = True


@dataclass
class PreparedStep:
    """A Trainer ready to step on one batch, and the calls `step_costs` times."""

    trainer: Trainer
    batch: Any
    step: Callable[[], object]
    bare: Callable[[], None] | None  # the networks' bare forward + backward (see `bare_pass`)
    bare_forward: BarePass | None  # its forward alone (its FLOPs)
    order: list[str]  # the networks in the order the step calls them first


def networks(distiller: Distiller) -> dict[str, nn.Module]:
    """The method's networks: the teacher, the student and its other trained networks
    (`extra_eval_models()`: SLKD's SL-teachers, DML's cohort)."""
    nets = {"teacher": distiller.teacher, "student": distiller.student}
    nets.update(distiller.extra_eval_models())
    return {name: net for name, net in nets.items() if net is not None}


def record_first_calls(
    distiller: Distiller, step: Callable[[], object]
) -> dict[str, tuple[Any, ...]]:
    """Run `step` once, recording each network's first call in order: {name: its inputs}
    (detached copies), so a bare pass can call them as the step did (same order, same inputs:
    a student at 16 px beside a teacher at 32 px, a bf16 teacher)."""
    calls: dict[str, tuple[Any, ...]] = {}
    handles = []
    for name, net in networks(distiller).items():

        def hook(_: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            if name not in calls:
                calls[name] = tuple(a.detach().clone() if torch.is_tensor(a) else a for a in args)

        handles.append(net.register_forward_pre_hook(hook))
    try:
        step()
    finally:
        for handle in handles:
            handle.remove()
    return calls


class BarePass:
    """The forward of the floor nothing can beat, as the step runs it: each network once on the
    inputs and in the order of its first call in the step (`record_first_calls`), the frozen
    teacher without a graph, under the recipe's autocast; for a feature method whose student
    maps go through adapters it trains (FitNet's regressor, ReviewKD's fusion: trained network
    work, not the method's glue, `FeaturePairs.adapted`) those adapters too. A call returns the
    sum of the trained outputs (logits and adapted maps), whose backward completes the pass;
    `adapters` says whether it ran adapters (known after the first call)."""

    def __init__(self, trainer: Trainer, calls: dict[str, tuple[Any, ...]]) -> None:
        self.trainer = trainer
        self.calls = calls
        self.nets = networks(trainer.method)
        self.adapters = False

    def __call__(self) -> torch.Tensor:
        distiller = self.trainer.method
        outputs = {}
        with self.trainer.autocast():
            for name, args in self.calls.items():
                if self.nets[name] is distiller.teacher:
                    with torch.no_grad():
                        outputs[name] = self.nets[name](*args)
                else:
                    outputs[name] = self.nets[name](*args)
            trained = [out[0].float().sum() for n, out in outputs.items() if n != "teacher"]
            total = torch.stack(trained).sum()
            if isinstance(distiller, FeatureDistiller) and {"student", "teacher"} <= set(outputs):
                pairs = distiller.feature_pairs(outputs["student"][1], outputs["teacher"][1])
                self.adapters = pairs.adapted
                if pairs.adapted:
                    total = total + sum(m.float().sum() for m in pairs.student)
        return total


def prepare_step(spec: StepSpec, device: torch.device) -> PreparedStep:
    """The Trainer of `spec` with its step (one taken: it records the networks' calls) and,
    when `spec.bare`, its bare pass."""
    trainer, batch = step_trainer(spec.recipe, device, spec.overrides, spec.train_size)
    trainer.method.start_epoch(spec.epoch)

    def step() -> None:
        trainer.train_step(batch)

    calls = record_first_calls(trainer.method, step)
    forward = BarePass(trainer, calls) if spec.bare else None

    def bare() -> None:
        assert forward is not None
        # the gradients freed as the step's `zero_grad` frees them: the backward allocates them
        # as the step's does, rather than accumulating into last call's
        trainer.optimizer.zero_grad(set_to_none=True)
        forward().backward()

    return PreparedStep(trainer, batch, step, bare if spec.bare else None, forward, list(calls))


def step_costs(
    specs: Mapping[str, StepSpec],
    device: torch.device,
    steps: int,
    repeats: int | None = None,
) -> tuple[dict[str, dict[str, Any]], Interleaved]:
    """Every step of `specs` (and each one's bare pass) timed together by
    `interleaved_seconds`: blocks of `steps` calls, the candidates interleaved over `repeats`
    rounds (one thread and thread CPU time on the CPU). Returns each spec's figures (median
    and [min, max] over the repeats; the share outside the networks taken within each repeat)
    and the timing itself, for ratios between specs (`Interleaved.ratio(name, base)`).
    `peak_memory_mb` is each spec's own on CUDA (reset before one step and bare pass of it); on
    the CPU it is the process's RSS peak so far (every trainer built before it included)."""
    prepared = {name: prepare_step(spec, device) for name, spec in specs.items()}
    peaks = {}
    for name, p in prepared.items():
        reset_peak_memory(device)
        p.step()
        if p.bare is not None:
            p.bare()
        peaks[name] = peak_memory_mb(device)
    candidates: dict[str, Callable[[], object]] = {}
    for name, p in prepared.items():
        candidates[name] = p.step
        if p.bare is not None:
            candidates[f"{name}/bare"] = p.bare
    timing = interleaved_seconds(candidates, steps, repeats, warmup=1, device=device)
    costs = {}
    for name, p in prepared.items():
        step = timing.seconds(name)
        cost: dict[str, Any] = {
            "recipe": str(specs[name].recipe),
            "device": str(device),
            "batch": p.batch.size,
            "step_ms": step.median * 1e3,
            "step_ms_spread": step.scaled(1e3).bounds(),
            "images_per_second": p.batch.size / step.median,
            "peak_memory_mb": peaks[name],
            "method_buffers_mb": method_buffer_bytes(p.trainer.method) / 2**20,
            "timing": f"{timing.clock}, median [min, max] of {timing.repeats} interleaved "
            f"repeats of {timing.calls} steps",
        }
        if p.bare is not None and p.bare_forward is not None:
            bare = timing.seconds(f"{name}/bare")
            share = timing.share_outside(name, f"{name}/bare")
            distiller, batch = p.trainer.method, p.batch
            method_flops = forward_flops(lambda d=distiller, b=batch: d.forward_train(b))
            network_flops = forward_flops(p.bare_forward)
            cost.update({
                "networks": ", ".join(p.order) + (" + adapters" if p.bare_forward.adapters else ""),
                "models_fwd_bwd_ms": bare.median * 1e3,
                "models_fwd_bwd_ms_spread": bare.scaled(1e3).bounds(),
                "outside_models_share": share.median,
                "outside_models_share_spread": share.bounds(),
                # Forward FLOPs beyond the networks' own (the method's modules and losses):
                # how much of the time outside the networks is arithmetic the method adds.
                "outside_models_flop_share": max(method_flops - network_flops, 0)
                / max(method_flops, 1),
            })  # fmt: skip
        costs[name] = cost
    return costs, timing


def method_step_cost(
    recipe: str | Path,
    device: torch.device,
    steps: int,
    overrides: Sequence[str] = (),
    train_size: int = 0,
) -> dict[str, Any]:
    """The step of `recipe` (ms, images/s, peak memory) against its networks' bare pass, the
    two interleaved (`step_costs`): `outside_models_share` is (step - bare) / step within each
    repeat, its median, with `outside_models_share_spread` [min, max] over the repeats."""
    costs, _ = step_costs({"step": StepSpec(recipe, overrides, train_size)}, device, steps)
    return costs["step"]
