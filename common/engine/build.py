"""Turn a validated recipe into models and a Distiller (no `if method == ...`: the registry)."""

from __future__ import annotations

import random

import numpy as np
import torch

from common.config.schema import ModelConfig, RunConfig
from common.data import DataSpec
from common.errors import ConfigError
from common.methods.base import Distiller
from common.methods.registry import get_method
from common.models import build_model, load_weights
from common.models.torchvision_models import is_torchvision_name, load_torchvision_weights


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_network(model: ModelConfig, spec: DataSpec, key: str) -> torch.nn.Module:
    """The network `model` describes (`key`: `student` or `teacher`), with its weights:
    `checkpoint` (a file) or, for `torchvision:<name>`, torchvision's named `weights`."""
    net = build_model(model.name, spec.num_classes, model.feature_nodes or None)
    if model.weights:
        if not is_torchvision_name(model.name):
            raise ConfigError(
                f"{key}.weights names torchvision's weights, for {key}.name=torchvision:<name> "
                f"only; load a file into {model.name!r} with {key}.checkpoint=PATH"
            )
        load_torchvision_weights(net, model.name, model.weights)
    if model.checkpoint:
        load_weights(net, model.checkpoint, model_name=model.name)
    return net


def build_teacher(cfg: RunConfig, spec: DataSpec, method: str) -> torch.nn.Module:
    """The trained teacher, loaded from `teacher.checkpoint` (or torchvision's
    `teacher.weights`), frozen and in eval mode."""
    if not cfg.teacher.name:
        raise ConfigError(f"method '{method}' needs a teacher: set teacher.name")
    if not cfg.teacher.checkpoint and not cfg.teacher.weights:
        raise ConfigError(
            f"method '{method}' needs a trained teacher: set teacher.checkpoint=PATH "
            "(train one with `make teacher RECIPE=tools/recipes/teachers/...`, or use a "
            "RepDistiller/mdistiller release file) or a catalogue name (teacher.checkpoint="
            "mdistiller:resnet56), or teacher.weights=NAME for a "
            "torchvision:<name> teacher"
        )
    teacher = build_network(cfg.teacher, spec, "teacher")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def build_distiller(cfg: RunConfig, spec: DataSpec) -> Distiller:
    """Student (optionally initialised from `student.checkpoint`), teacher, method."""
    if not cfg.student.name:
        raise ConfigError("student.name is empty: name a model of the zoo (e.g. resnet8x4)")
    cls = get_method(cfg.method.name)
    student = build_network(cfg.student, spec, "student")
    teacher = build_teacher(cfg, spec, cfg.method.name) if cls.needs_teacher else None
    return cls.from_config(cfg, student, teacher, spec)
