"""Run checkpoints: atomic writes and the complete state a bit-exact resume needs.

`last.pt` is written to a temporary file in the same folder, flushed to disk, then renamed over
the old one, so a crash mid-write leaves the previous checkpoint intact. Everything stored is
plain tensors and Python primitives, so loading uses `torch.load(weights_only=True)`.
The student's weights sit under `model` (the RepDistiller/mdistiller convention), so a
`best.pt` of this project loads directly as a teacher.
"""

from __future__ import annotations

import os
import random
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.errors import ResumeError
from common.models.checkpoint import weights_only_reason


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to `path` without ever leaving a half-written file there."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def to_cpu(obj: Any) -> Any:
    """A copy of a checkpoint tree with every tensor on the CPU (what a background write may
    hold while training goes on and changes the device tensors)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


class BackgroundWriter:
    """Atomic checkpoint writes in one background thread: the loop hands over a CPU copy and
    goes on; serialising and fsync happen meanwhile. A write waits for the previous one (so
    they land in order); `wait()` before anything reads the files or the process ends."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kdzoo-checkpoint")
        self.pending: Future | None = None

    def save(self, obj: Any, path: Path) -> None:
        """Write `obj` (copied to the CPU now) to `path` atomically, in the background."""
        snapshot = to_cpu(obj)
        self.wait()
        self.pending = self.pool.submit(atomic_save, snapshot, Path(path))

    def wait(self) -> None:
        """Block until the last write is on disk (re-raising its error, if any)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        self.wait()
        self.pool.shutdown(wait=True)


def capture_rng() -> dict[str, Any]:
    """Every random generator's state: Python, NumPy, torch CPU and CUDA."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Undo `capture_rng`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_run_checkpoint(path: Path) -> dict[str, Any]:
    """Read a run's last.pt for resuming, with a clear message when it is not there."""
    path = Path(path)
    if not path.is_file():
        raise ResumeError(
            f"cannot resume: {path} does not exist (the run in {path.parent} never finished an "
            "epoch, or the folder is wrong); start it again without --resume"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        reason = weights_only_reason(str(err)) or type(err).__name__
        raise ResumeError(
            f"cannot resume: {path} is not a readable checkpoint ({reason})"
        ) from None
