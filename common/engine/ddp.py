"""DistributedDataParallel over the networks a method trains, and SyncBatchNorm for them.

Only the trained networks go into DDP (timm's distillation task does the same): the frozen
teacher's parameters are never synchronised and its BatchNorm buffers never broadcast.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common.methods.base import Distiller


class TrainedPart(nn.Module):
    """The method's trained networks as one module, so that DistributedDataParallel syncs the
    gradients (and broadcasts the buffers) of those alone; the frozen teacher stays outside.
    Its forward is the method's training forward."""

    def __init__(self, method: Distiller) -> None:
        super().__init__()
        self.trained = nn.ModuleDict(method.trained_modules())
        self._method = [method]  # a list: not registered as a submodule

    def forward(self, *args: Any) -> Any:
        return self._method[0](*args)


def convert_sync_batchnorm(method: Distiller) -> None:
    """Replace BatchNorm by SyncBatchNorm in every trained network of `method` (in place)."""
    for name, module in method.trained_modules().items():
        setattr(method, name, nn.SyncBatchNorm.convert_sync_batchnorm(module))


def wrap_for_training(method: Distiller, device: torch.device, distributed: bool) -> nn.Module:
    """What the loop calls each step: the method itself, or DDP over its trained part."""
    if not distributed:
        return method
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(TrainedPart(method), device_ids=ids)
