"""A context in which reading a tensor's value on the host raises: what a training step (and
an evaluation batch) must never do, since on a GPU each such read waits for the device."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

READS = ("item", "tolist", "__bool__", "__float__", "__int__")


class HostSyncError(AssertionError):
    """A tensor's value was read on the host inside `forbid_host_syncs()`."""


@contextmanager
def forbid_host_syncs() -> Iterator[None]:
    """Make `Tensor.item`, `tolist`, `__bool__`, `__float__` and `__int__` raise inside the
    block (and, on CUDA, any synchronising call through `set_sync_debug_mode("error")`)."""
    saved = {name: getattr(torch.Tensor, name) for name in READS}

    def refuse(name: str):
        def read(self, *args, **kwargs):
            raise HostSyncError(f"Tensor.{name}() read a value on the host inside a step")

        return read

    for name in READS:
        setattr(torch.Tensor, name, refuse(name))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        if cuda:
            torch.cuda.set_sync_debug_mode("default")
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)
