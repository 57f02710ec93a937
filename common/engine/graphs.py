"""`train.graph: cudagraph`: the whole training step (forward, losses, backward, optimiser)
captured once in a CUDA graph and replayed, so a step costs one launch instead of hundreds.

The first `WARMUP_STEPS` steps run eagerly on a side stream (as PyTorch's whole-network capture
recipe asks: the caching allocator and cuDNN settle), the next is captured and replayed; after
that each step copies the batch into the graph's static tensors and replays. The schedule
writes the learning rate into its device tensor between replays; epoch-dependent factors (DKD's
and ReviewKD's warm-ups) live in device buffers the methods rewrite between epochs. A step
whose batch has another shape (the partial last batch) runs eagerly.

Refused, with one line, where a capture cannot be exact: off CUDA, under torchrun, with fp16
(its GradScaler reads the inf check on the host), with a Python-number learning rate (the
unfused optimiser, `optim.fused=false`: the graph would freeze it) or OneCycleLR (it writes
beta1 as a Python number), and for methods that say they cannot be captured
(`Distiller.capturable()`: CRD and SoKD draw from their own generators and restart them;
R2KD's AutoAugment draws on the host).

Proven on the CPU only: tests/test_cudagraph_standin.py runs this path with a CPU stand-in for
capture and replay (tests/graph_standin.py: the step recorded operator by operator, Python
values frozen at capture, tensors from before capture read and updated in place by every
replay, static outputs, host reads inside capture refused) and finds every capturable method's
weights bit-identical to eager over 3 epochs (fp32, NCHW), and DKD's across a mid-epoch
`--resume`. It cannot see host-to-device copies, stream ordering, the reuse of memory inside a
graph's pool or a kernel that reads on the host inside CUDA's own code, and this path has not
yet been run on a GPU by this project: `make bench` section `kd_speed` measures it where one is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from common.batch import Batch
from common.errors import ConfigError

if TYPE_CHECKING:
    from common.engine.trainer import Trainer

WARMUP_STEPS = 3
# What the capture path calls: torch.cuda (CUDAGraph, graph, Stream, stream, current_stream).
# One name so that a test can put a CPU emulation in its place (tests/graph_standin.py).
cuda = torch.cuda


class CapturedStep:
    """Trainer.train_step, captured on first use and replayed."""

    def __init__(self, trainer: Trainer) -> None:
        method, policy = trainer.method, trainer.policy
        if trainer.info.distributed:
            raise ConfigError(
                "train.graph=cudagraph runs on one process; use compile under torchrun"
            )
        if policy.amp == "fp16":
            raise ConfigError("train.graph=cudagraph cannot capture fp16's GradScaler: use bf16")
        if trainer.cfg.optim.schedule == "onecycle":
            raise ConfigError(
                "train.graph=cudagraph cannot follow optim.schedule=onecycle: OneCycleLR writes "
                "beta1 (momentum) into the optimiser as a Python number each step, which a "
                "captured graph would freeze; use train.graph=compile or none"
            )
        if not all(torch.is_tensor(group["lr"]) for group in trainer.optimizer.param_groups):
            raise ConfigError(
                "train.graph=cudagraph needs the learning rate as a device tensor (the fused "
                "optimiser, optim.fused=true): a Python-number lr would be frozen in the "
                "captured graph and the schedule would never reach it"
            )
        reason = method.capturable()
        if reason:
            raise ConfigError(f"train.graph=cudagraph: method '{trainer.cfg.method.name}' {reason}")
        self.trainer = trainer
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: Batch | None = None
        self.outputs: tuple[list[str], torch.Tensor, torch.Tensor] | None = None
        self.side: torch.cuda.Stream | None = None

    def __call__(self, batch: Batch, step: int) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        trainer = self.trainer
        if self.static is not None and batch.images.shape != self.static.images.shape:
            return trainer.train_step(batch, step)  # another shape: the partial last batch
        self.calls += 1
        if self.calls <= WARMUP_STEPS:
            if self.side is None:  # one side stream for every warm-up step, as PyTorch's
                self.side = cuda.Stream()  # make_graphed_callables does
            side = self.side
            side.wait_stream(cuda.current_stream())
            with cuda.stream(side):
                out = trainer.train_step(batch, step)
            cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None:
            self.capture(batch, step)
        assert self.static is not None and self.graph is not None and self.outputs is not None
        self.copy_in(batch)
        self.graph.replay()
        trainer.scheduler.step()  # writes the lr tensor in place: the next replay reads it
        return self.outputs

    def copy_in(self, batch: Batch) -> None:
        """The batch's tensors into the graph's static inputs."""
        assert self.static is not None
        self.static.images.copy_(batch.images, non_blocking=True)
        self.static.targets.copy_(batch.targets, non_blocking=True)
        if batch.indices is not None and self.static.indices is not None:
            self.static.indices.copy_(batch.indices, non_blocking=True)

    def capture(self, batch: Batch, step: int) -> None:
        """Record one step (forward to optimiser, without the schedule) into a graph."""
        trainer = self.trainer
        self.static = Batch(
            batch.images.clone(), batch.targets.clone(),
            None if batch.indices is None else batch.indices.clone(), {}, batch.rank_sizes,
        )  # fmt: skip
        trainer.optimizer.zero_grad(set_to_none=True)
        graph = cuda.CUDAGraph()
        # thread_local: CUDA calls of other threads (a DataLoader's pin-memory thread) during
        # the capture are theirs, not an error of the capture (the default "global")
        with cuda.graph(graph, capture_error_mode="thread_local"):
            self.outputs = trainer.train_step(self.static, step, schedule=False)
        self.graph = graph
