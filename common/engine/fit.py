"""Train a Distiller from plain PyTorch objects: `fit(distiller, train_loader, val_loader, ...)`.

The same loop, checkpoints and run folder as the command line (`config.yaml`, `metrics.jsonl`,
`summary.json`, `last.pt`, `best.pt`, `final.pt`), put together by the same
`common.engine.run_builder`, without a recipe or a built-in data set:

    from common.engine import fit
    summary = fit(KD(student, teacher), train_loader, val_loader,
                  epochs=240, optimizer={"lr": 0.05}, out="runs/my_kd")

The loaders yield `(images, targets)` (or `(images, targets, indices)`, or a `Batch`) already
augmented and normalised; a `DistributedSampler` is respected under torchrun (the batch size
is then per process). The project's own data (`common.data.build_data`'s `DataBundle`, or its
training loader) is taken as it is: it reshuffles every epoch and resumes mid-epoch exactly.
`resume=True` continues the run in `out` from its `last.pt`; `overwrite=True` starts it again
in place; `max_steps=N` stops after N optimiser steps, saving `last.pt` (resume from there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from common.config.schema import (
    DataConfig,
    LogConfig,
    MethodConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
)
from common.config.validate import build_dataclass
from common.data.build import dataset_targets
from common.data.spec import DataBundle, DataSpec
from common.engine.distributed import init_distributed
from common.engine.loaders import DataLoaderEval, DataLoaderTrain
from common.engine.run_builder import OWN_LOADERS, PYTHON, build_run, plan_new, plan_resume
from common.engine.trainer import TrainingInterrupted
from common.errors import ConfigError
from common.methods.base import Distiller


def fit(
    distiller: Distiller,
    train_loader: Iterable[Any] | DataBundle,
    val_loader: Iterable[Any] | None = None,
    *,
    epochs: int,
    out: str | Path,
    optimizer: OptimConfig | Mapping[str, Any] | None = None,
    train: TrainConfig | Mapping[str, Any] | None = None,
    device: str = "auto",
    writers: Sequence[str] = ("jsonl", "console", "csv"),
    resume: bool = False,
    overwrite: bool = False,
    max_steps: int | None = None,
    name: str = "",
) -> dict[str, Any]:
    """Train `distiller` for `epochs` and write the run folder `out`; returns the summary.

    `optimizer`: an `OptimConfig` or a mapping of its keys (`name`, `lr`, `momentum`,
    `weight_decay`, `schedule`, `milestones`, ...); the defaults are the CIFAR protocol's (SGD,
    lr 0.05, momentum 0.9, weight decay 5e-4, x0.1 at epochs 150, 180, 210: set `milestones`
    or another `schedule` for a shorter run). `train`: a `TrainConfig` or a mapping of its keys
    (`amp`, `seed`, `channels_last`, `grad_clip`, ...); `epochs` replaces its `epochs`.
    `train_loader` may be a `DataBundle` (then `val_loader` is its own). Returns the summary,
    or, when `max_steps` stopped the run first, `{"stopped_at_step": N, "epoch": E}`.
    """
    out = Path(out)
    if resume and overwrite:
        raise ConfigError("fit(): resume=True and overwrite=True contradict; choose one")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"fit(): max_steps must be >= 1, got {max_steps}")
    bundle = train_loader if isinstance(train_loader, DataBundle) else None
    if bundle is not None:
        train_loader, val_loader = bundle.train, bundle.val
    if val_loader is None:
        raise ConfigError("fit(): give a val_loader (or a DataBundle as train_loader)")
    train_cfg = _as_config(TrainConfig, train, "train")
    train_cfg.epochs = epochs
    info, dev = init_distributed(device)
    train_cfg.batch_size = _global_batch(bundle, train_loader, info.world_size, train_cfg)
    cfg = RunConfig(
        name=name or out.name,
        device=device,
        data=bundle.config if bundle and bundle.config else DataConfig(name=OWN_LOADERS),
        optim=_as_config(OptimConfig, optimizer, "optimizer"),
        train=train_cfg,
        teacher=ModelConfig(name=_model_name(distiller.teacher)),
        student=ModelConfig(name=_model_name(distiller.student)),
        method=MethodConfig(
            name=distiller.method_name or type(distiller).__name__, options=distiller.options
        ),
        log=LogConfig(writers=list(writers)),
    )
    own = _is_train_loader(train_loader)
    data = DataBundle(
        spec=bundle.spec if bundle else _spec_of(train_loader, val_loader, distiller.student),
        train=train_loader if own else DataLoaderTrain(train_loader, dev),  # type: ignore[arg-type]
        val=val_loader if bundle else DataLoaderEval(val_loader, dev),  # type: ignore[arg-type]
    )
    described = cfg.data.name != OWN_LOADERS  # a DataBundle of build_data records its config
    world = info.world_size
    if resume:
        plan = plan_resume(cfg, out, PYTHON, world, names=False, data_from_config=described)
    else:
        plan = plan_new(
            cfg, out, PYTHON, world, names=False, overwrite=overwrite, data_from_config=described
        )
    trainer = build_run(plan, info, dev, distiller, data)
    trainer.max_steps = max_steps
    try:
        return trainer.fit(plan.checkpoint)
    except TrainingInterrupted as stop:
        if max_steps is None or trainer.state.global_step < max_steps:
            raise
        return {"stopped_at_step": trainer.state.global_step, "epoch": stop.args[1]}


def _global_batch(
    bundle: DataBundle | None, loader: Any, world_size: int, train: TrainConfig
) -> int:
    """The global batch the data was built for: a `DataBundle`'s, a loader's per-process batch
    times the processes, else `train.batch_size`."""
    if bundle is not None and bundle.batch_size:
        return bundle.batch_size
    per_process = getattr(loader, "batch_size", None)
    return int(per_process) * world_size if per_process else train.batch_size


def _is_train_loader(loader: Any) -> bool:
    """Whether `loader` is one of the project's (`common.data.spec.TrainLoader`)."""
    return hasattr(loader, "set_epoch") and hasattr(loader, "step_sizes")


def _as_config(cls: type, value: Any, what: str) -> Any:
    """`value` as a `cls` dataclass: as is, a validated copy of a mapping, or the defaults."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return dataclasses.replace(value)
    if isinstance(value, Mapping):
        return build_dataclass(cls, dict(value), what)
    raise ConfigError(f"{what} must be a {cls.__name__} or a mapping, got {type(value).__name__}")


def _model_name(model: nn.Module | None) -> str:
    """The zoo name a model was built under, else its class name ('' for no model)."""
    if model is None:
        return ""
    return getattr(model, "zoo_name", "") or type(model).__name__


def _spec_of(train_loader: Any, val_loader: Any, student: nn.Module) -> DataSpec:
    """What the engine needs to know of the data: sizes and the number of classes."""
    train_set = getattr(train_loader, "dataset", None)
    val_set = getattr(val_loader, "dataset", None)
    classes = list(getattr(train_set, "classes", []) or [])
    linears = [m for m in student.modules() if isinstance(m, nn.Linear)]
    num_classes = len(classes) or (linears[-1].out_features if linears else 0)
    return DataSpec(
        num_classes=num_classes,
        image_size=0,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        train_size=_length(train_set),
        val_size=_length(val_set),
        class_names=[str(c) for c in classes],
        train_targets=dataset_targets(train_set),
    )


def _length(dataset: Any) -> int:
    try:
        return len(dataset)
    except TypeError:
        return 0


__all__ = ["fit"]
