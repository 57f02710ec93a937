"""Train a Distiller from plain PyTorch objects: `fit(distiller, train_loader, val_loader, ...)`.

The same loop, checkpoints and run folder as the command line (`config.yaml`, `metrics.jsonl`,
`summary.json`, `last.pt`, `best.pt`, `final.pt`), without a recipe or a built-in data set:

    from common.engine import fit
    summary = fit(KD(student, teacher), train_loader, val_loader,
                  epochs=240, optimizer={"lr": 0.05}, out="runs/my_kd")

The loaders yield `(images, targets)` (or `(images, targets, indices)`, or a `Batch`) already
augmented and normalised; a `DistributedSampler` is respected under torchrun (the batch size
is then per process). `resume=True` continues the run in `out` from its `last.pt`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from common.config import save_config
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
from common.engine.build import seed_everything
from common.engine.checkpoint import load_run_checkpoint
from common.engine.distributed import barrier, init_distributed
from common.engine.loaders import DataLoaderEval, DataLoaderTrain
from common.engine.trainer import Trainer
from common.errors import ConfigError
from common.methods.base import Distiller


def fit(
    distiller: Distiller,
    train_loader: Iterable[Any],
    val_loader: Iterable[Any],
    *,
    epochs: int,
    out: str | Path,
    optimizer: OptimConfig | Mapping[str, Any] | None = None,
    train: TrainConfig | Mapping[str, Any] | None = None,
    device: str = "auto",
    writers: Sequence[str] = ("jsonl", "console", "csv"),
    resume: bool = False,
    name: str = "",
) -> dict[str, Any]:
    """Train `distiller` for `epochs` and write the run folder `out`; returns the summary.

    `optimizer`: an `OptimConfig` or a mapping of its keys (`name`, `lr`, `momentum`,
    `weight_decay`, `schedule`, `milestones`, ...); the defaults are the CIFAR protocol's (SGD,
    lr 0.05, momentum 0.9, weight decay 5e-4, x0.1 at epochs 150, 180, 210: set `milestones`
    or another `schedule` for a shorter run). `train`: a `TrainConfig` or a mapping of its keys
    (`amp`, `seed`, `channels_last`, `grad_clip`, ...); `epochs` replaces its `epochs`.
    """
    out = Path(out)
    optim_cfg = _as_config(OptimConfig, optimizer, "optimizer")
    train_cfg = _as_config(TrainConfig, train, "train")
    train_cfg.epochs = epochs
    batch_size = getattr(train_loader, "batch_size", None) or train_cfg.batch_size
    info, dev = init_distributed(device)
    train_cfg.batch_size = int(batch_size) * info.world_size
    cfg = RunConfig(
        name=name or out.name,
        device=str(dev),
        data=DataConfig(name="dataloader"),
        optim=optim_cfg,
        train=train_cfg,
        teacher=ModelConfig(name=_model_name(distiller.teacher)),
        student=ModelConfig(name=_model_name(distiller.student)),
        method=MethodConfig(
            name=distiller.method_name or type(distiller).__name__, options=distiller.options
        ),
        log=LogConfig(writers=list(writers)),
    )
    checkpoint = None
    if resume:
        checkpoint = load_run_checkpoint(out / "last.pt")
    elif (out / "last.pt").exists():
        raise ConfigError(
            f"{out} already holds a run (last.pt); pass resume=True to continue it, or another "
            "out= folder (nothing was overwritten)"
        )
    seed_everything(train_cfg.seed)
    data = DataBundle(
        spec=_spec_of(train_loader, val_loader, distiller.student),
        train=DataLoaderTrain(train_loader, dev),
        val=DataLoaderEval(val_loader, dev),
    )
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if checkpoint is None:
            save_config(cfg, out / "config.yaml", {"created": time.strftime("%Y-%m-%d %H:%M:%S")})
    barrier()
    return Trainer(cfg, distiller, data, out, info, dev).fit(checkpoint)


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
