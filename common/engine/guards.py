"""What the loop watches between steps: a non-finite loss and a stop signal.

Both are read without a host sync inside a step: the loss flag is a device tensor checked every
few steps (and at the end of an epoch), the signal a Python flag set by the handler.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any

import torch

from common.engine.distributed import all_reduce_max
from common.errors import NonFiniteLossError


class TrainingInterrupted(Exception):
    """SIGTERM/SIGINT arrived; the position was saved to last.pt."""


class NonFiniteGuard:
    """Watches the summed loss without a host sync per step: a device-side flag records the
    first non-finite step and its losses; `check()` syncs (every few steps and at epoch end)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.first_step = torch.full((), -1, dtype=torch.long, device=device)
        self.first_losses: torch.Tensor | None = None

    def update(self, step: int | torch.Tensor, total: torch.Tensor, losses: torch.Tensor) -> None:
        """Record `step` (and its losses) if it is the first whose total is not finite; the
        device tensors are updated in place (a captured step may hold them)."""
        newly = (self.first_step < 0) & ~torch.isfinite(total)
        self.first_step.copy_(torch.where(newly, step, self.first_step))
        if self.first_losses is None:
            self.first_losses = torch.zeros_like(losses)
        self.first_losses.copy_(torch.where(newly, losses, self.first_losses))

    def check(self, names: list[str], epoch: int) -> None:
        """Raise NonFiniteLossError (naming the step and each loss) if a step went bad."""
        step = int(all_reduce_max(self.first_step.clone()).item())
        if step < 0:
            return
        values = self.first_losses.tolist() if self.first_losses is not None else []
        detail = ", ".join(f"{n}={v:.4g}" for n, v in zip(names, values))
        raise NonFiniteLossError(
            f"loss became non-finite at step {step} (epoch {epoch + 1}): {detail}. "
            "The last good checkpoint is kept; lower optim.lr, check the data, "
            "or try train.amp=none"
        )


class SignalCatcher:
    """Turns SIGTERM/SIGINT into a flag the loop checks between steps."""

    def __init__(self) -> None:
        self.received = 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> SignalCatcher:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
