"""Building the self-learning teachers, and reading trained ones back for SLKD* stage 2.

SL-teachers have the teacher's architecture and start from random weights (Sec. 3.1); each is
initialised independently. A run keeps them under `sl_teachers.<i>.` in the `method` entry of its
last.pt (`Distiller.trainable_state_dict`), which is what `load_sl_teachers` reads.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from common.errors import ConfigError
from common.models import CheckpointError, build_model, model_names
from common.models.registry import closest_model_name

PREFIX = "sl_teachers."


def build_sl_teachers(arch: str, num: int, num_classes: int) -> nn.ModuleList:
    """`num` randomly initialised networks of the zoo architecture `arch`."""
    if not arch:
        raise ConfigError("SLKD needs an SL-teacher architecture: set teacher.name")
    if arch not in model_names():
        raise ConfigError(
            f"method.sl_teacher_arch '{arch}' is not in the zoo; did you mean "
            f"'{closest_model_name(arch)}'?"
        )
    return nn.ModuleList(build_model(arch, num_classes) for _ in range(num))


def load_sl_teachers(sl_teachers: nn.ModuleList, path: str | Path) -> None:
    """Load every SL-teacher from the `method` entry of a run's last.pt (strictly)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"method.sl_teacher_checkpoint {path} does not exist: run the stage-1 recipe "
            "(`mode: sequential_sl_teachers`) first, or point the key at its last.pt"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise CheckpointError(f"{path} is not a readable checkpoint ({err})") from None
    method = ckpt.get("method") if isinstance(ckpt, dict) else None
    if not isinstance(method, dict):
        raise CheckpointError(
            f"{path} has no 'method' entry: method.sl_teacher_checkpoint must be a run's "
            "last.pt (best.pt holds only the student)"
        )
    for i, net in enumerate(sl_teachers):
        key = f"{PREFIX}{i}."
        state = {k[len(key) :]: v for k, v in method.items() if k.startswith(key)}
        if not state:
            found = sorted({k.split(".")[1] for k in method if k.startswith(PREFIX)})
            raise CheckpointError(
                f"{path} holds {len(found)} SL-teacher(s), this run needs {len(sl_teachers)} "
                "(method.num_sl_teachers)"
            )
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise CheckpointError(
                f"SL-teacher {i + 1} in {path} does not fit method.sl_teacher_arch ({first})"
            ) from None


def freeze(module: nn.Module) -> None:
    """No gradients and eval mode (running BatchNorm statistics), like the teacher."""
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
