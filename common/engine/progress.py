"""Console output: one line an epoch always, a live bar within the epoch on a terminal."""

from __future__ import annotations

import sys
import time


def _format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """A one-line bar redrawn in place (only when `enabled`, i.e. on an interactive rank 0)."""

    def __init__(self, total: int, label: str, enabled: bool, width: int = 24) -> None:
        self.total = max(total, 1)
        self.label = label
        self.enabled = enabled
        self.width = width
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def update(self, step: int, text: str = "") -> None:
        """Redraw at most 10 times a second."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1 and step < self.total:
            return
        self.last_draw = now
        done = int(self.width * step / self.total)
        elapsed = now - self.start
        eta = elapsed / max(step, 1) * (self.total - step)
        bar = "#" * done + "." * (self.width - done)
        line = f"\r{self.label} [{bar}] {step}/{self.total} {_format_seconds(eta)} left {text}"
        sys.stdout.write(line[:150].ljust(150))
        sys.stdout.flush()

    def close(self) -> None:
        """Erase the bar so the epoch line replaces it."""
        if self.enabled:
            sys.stdout.write("\r" + " " * 150 + "\r")
            sys.stdout.flush()


def want_bar(mode: str, is_main: bool) -> bool:
    """'auto' shows the bar on an interactive terminal, 'bar' always, 'none' never."""
    if not is_main or mode == "none":
        return False
    return mode == "bar" or sys.stdout.isatty()


def format_epoch_line(
    epoch: int,
    epochs: int,
    lr: float,
    losses: dict[str, float],
    metrics: dict[str, float],
    seconds: float,
    images_per_second: float,
) -> str:
    """'epoch 3/240 lr 0.05 loss 1.23 (ce 0.50 kd 0.73) top1 45.67 best 45.67 12s 4500 img/s'."""
    total = sum(losses.values())
    parts = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
    line = f"epoch {epoch}/{epochs}  lr {lr:.4g}  loss {total:.4f} ({parts})"
    if "top1" in metrics:
        line += f"  top1 {metrics['top1']:.2f}  best {metrics.get('top1_best', 0.0):.2f}"
    for key, value in metrics.items():
        if key.startswith("top1_") and not key.startswith("top1_best"):
            line += f"  {key} {value:.2f}"
    line += f"  {seconds:.1f}s  {images_per_second:.0f} img/s"
    return line
