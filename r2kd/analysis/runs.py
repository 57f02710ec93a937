"""Finished run directories -> networks and their validation logits (any method's runs).

A run directory holds `config.yaml` (the resolved recipe, with `teacher.checkpoint` for a
distillation run) and `best.pt` / `last.pt` with the student's state_dict under `model`.
Networks come from `common.models.build_model` + `load_weights`, the validation set from
`common.data.build_data` with the run's own data config (overridable, e.g. `data.root=...`).
A model with `resolution > 0` (CQKD-style) sees the batch resized to that size by the same
function training and evaluation use (`common.methods.resize.resize_to`), with the run's own
`antialias` option (`cfg.method.options.antialias` where the method has one, else the shared
default `DEFAULT_ANTIALIAS`), so the analysis of a CQKD or DML run sees the inputs the run saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from common.config import RunConfig, load_saved_config
from common.config.validate import to_plain
from common.data import DataBundle, build_data
from common.errors import UserError
from common.methods.resize import DEFAULT_ANTIALIAS, resize_to
from common.models import build_model, load_weights

CHECKPOINTS = ("best", "last")
# Data keys that change which images (or pixels) are evaluated; runs compared must agree.
DATA_KEYS = ("name", "val_subset", "image_size", "synthetic")


class AnalysisError(UserError):
    """A problem with the tool's inputs: one line naming it and the fix (exit code 2)."""


@dataclass
class Network:
    """A trained network ready for evaluation, the input size it expects (0 = as given) and
    whether its run resized with antialiasing."""

    name: str
    module: nn.Module
    resolution: int = 0
    antialias: bool = DEFAULT_ANTIALIAS


def run_antialias(cfg: RunConfig) -> bool:
    """The run's resize option: `method.antialias` when its method has one, else the default."""
    return bool(getattr(cfg.method.options, "antialias", DEFAULT_ANTIALIAS))


def load_student(
    run_dir: Path, cfg: RunConfig, checkpoint: str, num_classes: int, device: torch.device
) -> Network:
    """The run's student, from `<run_dir>/<checkpoint>.pt` (`checkpoint`: best or last)."""
    if checkpoint not in CHECKPOINTS:
        raise AnalysisError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}")
    path = run_dir / f"{checkpoint}.pt"
    if not path.is_file():
        raise AnalysisError(f"{path} not found: is {run_dir} a finished run directory?")
    module = build_model(cfg.student.name, num_classes)
    load_weights(module, path, model_name=cfg.student.name)
    return Network(
        cfg.student.name, module.to(device).eval(), cfg.student.resolution, run_antialias(cfg)
    )


def read_config(run_dir: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """`<run_dir>/config.yaml` (with `key=value` overrides)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise AnalysisError(f"{run_dir} has no config.yaml: give the directory of a run")
    return load_saved_config(run_dir / "config.yaml", list(overrides))


def load_teacher(
    cfg: RunConfig, num_classes: int, device: torch.device, name: str = "", checkpoint: str = ""
) -> Network:
    """The teacher of `cfg` (or the `name`/`checkpoint` given instead), in eval mode."""
    name = name or cfg.teacher.name
    checkpoint = checkpoint or cfg.teacher.checkpoint
    if not name or not checkpoint:
        raise AnalysisError(
            f"run {cfg.name!r} has no teacher (teacher.name / teacher.checkpoint are empty); "
            "give --teacher-name and --teacher-checkpoint"
        )
    module = build_model(name, num_classes)
    load_weights(module, checkpoint, model_name=name)
    return Network(name, module.to(device).eval(), cfg.teacher.resolution, run_antialias(cfg))


def validation_data(cfg: RunConfig, device: torch.device) -> DataBundle:
    """The run's data (its validation split is what the tools evaluate)."""
    return build_data(cfg.data, batch_size=cfg.train.batch_size, device=device, seed=cfg.train.seed)


def check_same_data(configs: Mapping[str, RunConfig]) -> None:
    """Refuse runs whose validation images differ (another data set, size or subset)."""
    views = {
        label: {k: to_plain(getattr(cfg.data, k)) for k in DATA_KEYS}
        for label, cfg in configs.items()
    }
    first_label, first = next(iter(views.items()))
    for label, view in views.items():
        diff = [k for k in DATA_KEYS if view[k] != first[k]]
        if diff:
            raise AnalysisError(
                f"runs {first_label!r} and {label!r} differ in data.{diff[0]} "
                f"({first[diff[0]]!r} vs {view[diff[0]]!r}): compare runs on the same data"
            )


def network_input(images: Tensor, net: Network) -> Tensor:
    """The batch as `net`'s run fed it: `resize_to` at its resolution, with its antialiasing."""
    return resize_to(images, net.resolution, net.antialias)


@torch.no_grad()
def collect_logits(
    networks: Sequence[Network] | Mapping[str, Network],
    loader: Iterable[tuple[Tensor, Tensor]],
) -> tuple[dict[str, Tensor], Tensor]:
    """({network name: (N, C) float32 logits on the CPU}, (N,) targets) over `loader`.

    With a mapping, the keys name the outputs (two students of the same architecture).
    """
    named = dict(networks) if isinstance(networks, Mapping) else {n.name: n for n in networks}
    if not named:
        raise AnalysisError("no network to evaluate")
    outputs: dict[str, list[Tensor]] = {key: [] for key in named}
    targets: list[Tensor] = []
    for images, labels in loader:
        for key, net in named.items():
            outputs[key].append(net.module(network_input(images, net))[0].float().cpu())
        targets.append(labels.cpu())
    if not targets:
        raise AnalysisError("the validation set is empty")
    return {k: torch.cat(v) for k, v in outputs.items()}, torch.cat(targets)
