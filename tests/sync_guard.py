"""A context in which reading a tensor's value on the host raises: what a training step (and
an evaluation batch) must never do, since on a GPU each such read waits for the device.

Two layers: the Python-level reads (`item`, `tolist`, `__bool__`, ...) are patched to raise,
and a TorchDispatchMode refuses, at the operator level, what the patch cannot see because it
happens inside C++: `aten._local_scalar_dense` (any value copied to the host, e.g. indexing
with a 0-d tensor), operators whose output shape depends on the data (`nonzero`,
`masked_select`, `unique`: a host read of the size), and `aten.lift_fresh` (a tensor made from
Python numbers: on a GPU, a host-to-device copy every step). On CUDA,
`set_sync_debug_mode("error")` is added.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode

READS = ("item", "tolist", "__bool__", "__float__", "__int__")
aten = torch.ops.aten
REFUSED_OPS = {
    aten._local_scalar_dense.default: "copied a tensor's value to the host",
    aten.nonzero.default: "has a data-dependent output shape (nonzero)",
    aten.masked_select.default: "has a data-dependent output shape (masked_select)",
    aten._unique2.default: "has a data-dependent output shape (unique)",
    aten.lift_fresh.default: "made a tensor from Python data (a host-to-device copy on a GPU)",
}


class HostSyncError(AssertionError):
    """A tensor's value was read on the host inside `forbid_host_syncs()`."""


class RefuseHostOps(TorchDispatchMode):
    """Raise on the operators of `REFUSED_OPS` (see the module docstring)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if func in REFUSED_OPS:
            raise HostSyncError(f"{func} {REFUSED_OPS[func]} inside a step")
        return func(*args, **(kwargs or {}))


@contextmanager
def forbid_host_syncs() -> Iterator[None]:
    """Make host reads raise inside the block (Python-level and operator-level)."""
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
        with RefuseHostOps():
            yield
    finally:
        if cuda:
            torch.cuda.set_sync_debug_mode("default")
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)
