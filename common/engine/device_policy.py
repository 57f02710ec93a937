"""What `auto` means on the device at hand: precision, memory format, teacher dtype, graphs.

On CUDA the defaults are what a GPU run wants: bf16 autocast (`train.amp: auto`), NHWC
convolutions (`train.channels_last: null`), `cudnn.benchmark`, and the frozen teacher's
weights kept in bf16 under bf16 autocast (`train.teacher_dtype: auto`), so it is not recast
every step. On the CPU every `auto` is the plain fp32 NCHW eager step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from common.config.schema import TrainConfig
from common.errors import ConfigError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class DevicePolicy:
    """The resolved choices of a run."""

    amp: str  # none | bf16 | fp16
    channels_last: bool
    teacher_bf16: bool
    graph: str  # none | compile | cudagraph

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return AMP_DTYPES.get(self.amp)


def resolve_policy(train: TrainConfig, device: torch.device) -> DevicePolicy:
    """The run's precision, layout and graph mode on `device` (refusing what it cannot do)."""
    cuda = device.type == "cuda"
    amp = ("bf16" if cuda else "none") if train.amp == "auto" else train.amp
    channels_last = cuda if train.channels_last is None else train.channels_last
    teacher_bf16 = train.teacher_dtype == "bfloat16" or (
        train.teacher_dtype == "auto" and cuda and amp == "bf16"
    )
    if train.graph == "cudagraph" and not cuda:
        raise ConfigError(
            f"train.graph=cudagraph captures the step in a CUDA graph, but the device is "
            f"{device}: use train.graph=compile or none off CUDA"
        )
    if cuda:
        torch.backends.cudnn.benchmark = True
    return DevicePolicy(amp, channels_last, teacher_bf16, train.graph)
