"""Turn a validated recipe into models and a Distiller (no `if method == ...`: the registry)."""

from __future__ import annotations

import random

import numpy as np
import torch

from common.config.schema import RunConfig
from common.data import DataSpec
from common.errors import ConfigError
from common.methods.base import Distiller
from common.methods.registry import get_method
from common.models import build_model, load_weights


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_teacher(cfg: RunConfig, spec: DataSpec, method: str) -> torch.nn.Module:
    """The trained teacher, loaded from `teacher.checkpoint`, frozen and in eval mode."""
    if not cfg.teacher.name:
        raise ConfigError(f"method '{method}' needs a teacher: set teacher.name")
    if not cfg.teacher.checkpoint:
        raise ConfigError(
            f"method '{method}' needs a trained teacher: set teacher.checkpoint=PATH "
            "(train one with `make teacher RECIPE=tools/recipes/teachers/...`, or use a "
            "RepDistiller/mdistiller release file)"
        )
    teacher = build_model(cfg.teacher.name, spec.num_classes)
    load_weights(teacher, cfg.teacher.checkpoint, model_name=cfg.teacher.name)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def build_distiller(cfg: RunConfig, spec: DataSpec) -> Distiller:
    """Student (optionally initialised from `student.checkpoint`), teacher, method."""
    if not cfg.student.name:
        raise ConfigError("student.name is empty: name a model of the zoo (e.g. resnet8x4)")
    cls = get_method(cfg.method.name)
    student = build_model(cfg.student.name, spec.num_classes)
    if cfg.student.checkpoint:
        load_weights(student, cfg.student.checkpoint, model_name=cfg.student.name)
    teacher = build_teacher(cfg, spec, cfg.method.name) if cls.needs_teacher else None
    return cls.from_config(cfg, student, teacher, spec)
