"""Whether this process is one of several (torchrun): the one test every layer shares.

`process_group_ready()` is true once `torch.distributed` is initialised (collectives may be
called, even by a single process); `is_distributed()` only when there are other processes.
"""

from __future__ import annotations

import torch.distributed as dist

__all__ = ["is_distributed", "process_group_ready"]


def process_group_ready() -> bool:
    """Whether a process group is initialised (collectives may be called)."""
    return dist.is_available() and dist.is_initialized()


def is_distributed() -> bool:
    """Whether this process trains beside others (an initialised group of two or more)."""
    return process_group_ready() and dist.get_world_size() > 1
