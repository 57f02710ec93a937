"""A CPU stand-in for CUDA-graph capture and replay, to test `train.graph: cudagraph` without a
GPU (tests/test_cudagraph_standin.py).

`install(monkeypatch)` puts it in place of `torch.cuda` in `common.engine.graphs` (the module's
`cuda` name) and lets the trainer accept `train.graph=cudagraph` on the CPU. What it keeps of a
CUDA graph's semantics:

* Capture records the step: every ATen operator that reaches the dispatcher (forward,
  autograd's backward, the optimiser's kernels), with its arguments, through a
  TorchDispatchMode. Python runs once, at capture: every Python number an operator receives
  (a float learning rate, a loss weight) is frozen at its captured value, and Python-level
  effects (counters, attribute writes) happen at capture only.
* Capture computes nothing that lasts: as a CUDA graph's capture launches no kernel, every
  tensor that existed before it (parameters, buffers, optimiser state, the learning-rate
  tensor, the static batch) and every generator it draws from are put back as they were when
  it ends; the first replay runs the step.
* Replay re-executes the recording. Tensors that existed before capture are referenced by
  identity, so a replay reads their current values and updates them in place; tensors made
  during capture are recomputed. Memory made during capture is static, as a graph's private
  pool is: after each replay its contents are copied into the capture-time tensors, so what
  the captured step returned (and `param.grad`) holds the latest replay's values.
* Random operators draw, at replay, from the generator they were given (the default one when
  none), so the sequence of draws is eager's.
* A host read inside capture raises `CaptureError`, as it does on a GPU:
  `aten._local_scalar_dense` (`item()`, `float(t)`, `bool(t)`, indexing with a 0-d tensor),
  `aten.equal`, operators whose output shape depends on the data (`nonzero`, `masked_select`,
  `unique`, ...: tagged `dynamic_output_shape`; indexing with a boolean mask), and
  `Tensor.tolist()` / `.numpy()`.

What it cannot see: host-to-device copies (every tensor here is on the CPU, which plays the
device), streams and their ordering, the reuse of freed memory inside a graph's pool, and a
host read inside an operator's own CUDA implementation (it sees operators, not kernels).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

aten = torch.ops.aten
HOST_READS = {
    aten._local_scalar_dense.default: "copies a tensor's value to the host",
    aten.item.default: "copies a tensor's value to the host",
    aten.equal.default: "compares two tensors on the host",
}
# Indexing operators whose output shape depends on the data only for mask indices (their
# `index.Tensor` carries the dynamic_output_shape tag for all indices).
MASK_INDEXING = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}
PYTHON_READS = ("tolist", "numpy")
NOT_A_TENSOR = "-"  # an output leaf a replay does not keep (a pytree leaf, unlike None)


class CaptureError(RuntimeError):
    """What a CUDA-graph capture would refuse (a host read inside the captured step)."""


@dataclasses.dataclass(frozen=True)
class Slot:
    """A tensor made during capture: the `index`-th operator output, recomputed each replay."""

    index: int


@dataclasses.dataclass(frozen=True)
class SlotView:
    """Another tensor object over a slot's memory (autograd's saved tensors, `detach()`):
    rebuilt over the replayed slot with the captured size, stride and offset."""

    base: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int


def host_read(func: Any, args: tuple[Any, ...]) -> str:
    """Why `func` would read a value on the host ('' when it would not)."""
    if func in HOST_READS:
        return HOST_READS[func]
    if func.overloadpacket in MASK_INDEXING:  # integer indices: a gather; a mask: nonzero
        if any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
               for i in args[1]):  # fmt: skip
            return "indexes with a mask (nonzero: a data-dependent shape)"
        return ""
    if torch.Tag.dynamic_output_shape in func.tags:
        return "has a data-dependent output shape (a host read)"
    return ""


def storage_key(tensor: torch.Tensor) -> int | None:
    """The address of a tensor's memory (None for a tensor without any)."""
    storage = tensor.untyped_storage()
    return storage.data_ptr() if storage.nbytes() else None


class Recorder(TorchDispatchMode):
    """Records every operator of the captured step (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[Any, Any, Any, Any]] = []
        self.slots: list[torch.Tensor] = []  # alive during capture: ids stay unique
        self.slot_ids: dict[int, int] = {}
        self.slot_memory: dict[int, int] = {}  # storage address -> the slot that made it
        self.outside_memory: dict[int, tuple[torch.UntypedStorage, torch.UntypedStorage]] = {}
        self.generators: dict[int, tuple[torch.Generator, torch.Tensor]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        reason = host_read(func, args)
        if reason:
            raise CaptureError(f"{func} {reason} inside a captured step")
        inputs: dict[int, Any] = {}
        spec_args, spec_kwargs = tree_map(lambda x: self.refer(x, inputs), (args, kwargs))
        out = func(*args, **kwargs)
        spec_out = tree_map(lambda x: self.bind(x, inputs), out)
        self.ops.append((func, spec_args, spec_kwargs, spec_out))
        return out

    def refer(self, value: Any, inputs: dict[int, Any]) -> Any:
        """How a replay finds an argument: a slot, a view of one, or the object itself."""
        if isinstance(value, torch.Generator):
            self.generators.setdefault(id(value), (value, value.get_state()))
            return value
        if not isinstance(value, torch.Tensor):
            return value  # a Python value: frozen
        if id(value) in self.slot_ids:
            ref: Any = Slot(self.slot_ids[id(value)])
        else:
            key = storage_key(value)
            if key in self.slot_memory:
                base = self.slots[self.slot_memory[key]]
                if value.dtype != base.dtype:
                    raise NotImplementedError(f"{value.dtype} view of {base.dtype} memory")
                ref = SlotView(self.slot_memory[key], tuple(value.shape), value.stride(),
                               value.storage_offset())  # fmt: skip
            else:  # a tensor from before capture: by identity; put back when capture ends
                if key is not None and key not in self.outside_memory:
                    storage = value.untyped_storage()
                    self.outside_memory[key] = (storage, storage.clone())
                ref = value
        inputs[id(value)] = ref
        return ref

    def bind(self, value: Any, inputs: dict[int, Any]) -> Any:
        """An operator's output: an argument returned (in place), else a new slot."""
        if not isinstance(value, torch.Tensor):
            return NOT_A_TENSOR
        if id(value) in inputs:
            return inputs[id(value)]
        index = len(self.slots)
        self.slots.append(value)
        self.slot_ids[id(value)] = index
        key = storage_key(value)
        if key is not None and key not in self.slot_memory and key not in self.outside_memory:
            self.slot_memory[key] = index
        return Slot(index)


class StandInGraph:
    """torch.cuda.CUDAGraph on the CPU: `capture` (through `graph(...)`) and `replay`."""

    def __init__(self) -> None:
        self.ops: list[tuple[Any, Any, Any, Any]] = []
        self.static: list[tuple[int, torch.Tensor]] = []  # (slot, its capture-time tensor)
        self.replays = 0
        self.captured = False

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        if self.captured:
            raise RuntimeError("this stand-in graph was captured already")
        recorder = Recorder()
        rng = torch.get_rng_state()
        saved = {name: getattr(torch.Tensor, name) for name in PYTHON_READS}

        def refuse(name: str):
            def read(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
                raise CaptureError(f"Tensor.{name}() read a value on the host inside capture")

            return read

        for name in PYTHON_READS:
            setattr(torch.Tensor, name, refuse(name))
        try:
            with recorder:
                yield
        finally:
            for name, method in saved.items():
                setattr(torch.Tensor, name, method)
            with torch.no_grad():  # capture launched nothing: the state is as before it
                for storage, before in recorder.outside_memory.values():
                    storage.copy_(before)
            for generator, state in recorder.generators.values():
                generator.set_state(state)
            torch.set_rng_state(rng)
        self.ops = recorder.ops
        self.static = [(index, recorder.slots[index]) for index in recorder.slot_memory.values()]
        self.captured = True

    def replay(self) -> None:
        if not self.captured:
            raise RuntimeError("replay() before capture")
        env: dict[int, torch.Tensor] = {}

        def resolve(ref: Any) -> Any:
            if isinstance(ref, Slot):
                return env[ref.index]
            if isinstance(ref, SlotView):
                return env[ref.base].as_strided(ref.size, ref.stride, ref.offset)
            return ref

        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            for func, spec_args, spec_kwargs, spec_out in self.ops:
                args, kwargs = tree_map(resolve, (spec_args, spec_kwargs))
                out = func(*args, **kwargs)
                for ref, value in zip(tree_flatten(spec_out)[0], tree_flatten(out)[0]):
                    if isinstance(ref, Slot):
                        env[ref.index] = value
            for index, tensor in self.static:  # the graph's pool: static memory
                tensor.untyped_storage().copy_(env[index].untyped_storage())
        self.replays += 1


class StandInStream:
    """A stream that orders nothing (the CPU runs one thing at a time)."""

    def wait_stream(self, other: StandInStream) -> None:
        pass


class StandIn:
    """The `cuda` namespace `common.engine.graphs` calls, on the CPU; `graphs` holds every
    graph it made (for the tests to count captures and replays)."""

    def __init__(self) -> None:
        self.graphs: list[StandInGraph] = []
        self.main_stream = StandInStream()

    def namespace(self) -> SimpleNamespace:
        def make_graph() -> StandInGraph:
            graph = StandInGraph()
            self.graphs.append(graph)
            return graph

        def graph(
            cuda_graph: StandInGraph, pool: Any = None, stream: Any = None,
            capture_error_mode: str = "global",
        ) -> contextlib.AbstractContextManager:  # fmt: skip
            return cuda_graph.capture()

        @contextlib.contextmanager
        def stream(s: StandInStream) -> Iterator[None]:
            yield

        return SimpleNamespace(
            CUDAGraph=make_graph,
            graph=graph,
            Stream=StandInStream,
            stream=stream,
            current_stream=lambda: self.main_stream,
        )


def install(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    """The stand-in in place of torch.cuda in common.engine.graphs, and `train.graph=cudagraph`
    accepted on the CPU (the run builder, which resolves a run's device policy, refuses it off
    CUDA otherwise)."""
    from common.engine import graphs, run_builder

    stand_in = StandIn()
    monkeypatch.setattr(graphs, "cuda", stand_in.namespace())
    resolve = run_builder.resolve_policy

    def resolve_on_the_cpu(train, device):  # noqa: ANN001, ANN202
        policy = resolve(dataclasses.replace(train, graph="none"), device)
        policy.graph = train.graph
        return policy

    monkeypatch.setattr(run_builder, "resolve_policy", resolve_on_the_cpu)
    return stand_in
