"""torchrun integration: process group set-up, rank queries, metric all-reduce.

Under torchrun (RANK/WORLD_SIZE/LOCAL_RANK set) the group uses nccl on CUDA and gloo on CPU;
a plain `python` run is a world of one and needs no group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from common.errors import DeviceError
from common.world import process_group_ready


@dataclass
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def check_device(name: str, local_rank: int = 0) -> torch.device:
    """The device `name` means on this machine ('auto' -> the local CUDA device when present,
    else CPU), without selecting it.

    Raises `DeviceError` naming the value and the fix for a device this machine lacks (CUDA
    without a visible GPU, a GPU index past the last one, MPS off Apple silicon) or a name
    that is no device at all.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(
            f"device={name!r} is not a device: use device=auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device={name} was asked for but no CUDA GPU is visible on this machine; "
                "use device=cpu, or device=auto (the GPU when there is one, else the CPU)"
            )
        if device.index is None:
            device = torch.device("cuda", local_rank)
        count = torch.cuda.device_count()
        if device.index >= count:
            fix = (
                "start at most one process per GPU (torchrun --nproc_per_node)"
                if name == "cuda"
                else "use device=cuda or device=auto"
            )
            raise DeviceError(
                f"device={device} was asked for but this machine has {count} CUDA GPU(s) "
                f"(cuda:0 to cuda:{count - 1}); {fix}"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(
            f"device={name} was asked for but MPS is not available on this machine; "
            "use device=cpu or device=auto"
        )
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device={name!r} is not supported: use device=auto, cpu or cuda")
    return device


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`check_device`, and the CUDA device selected as the current one."""
    device = check_device(name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def world_size_from_env() -> int:
    """The number of processes of this job: torchrun's WORLD_SIZE, else 1."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def init_distributed(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group when launched by torchrun; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    device = resolve_device(device_name, info.local_rank)
    if info.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, device_id=device if backend == "nccl" else None)
    return info, device


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over all processes (in place, also returned); a no-op for one process."""
    if process_group_ready():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Max of `tensor` over all processes (in place); a no-op for one process."""
    if process_group_ready():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def barrier() -> None:
    """Wait for every process (no-op for one)."""
    if process_group_ready():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group."""
    if process_group_ready():
        dist.destroy_process_group()
