"""Where a run stands: everything the loop counts, saved in every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainState:
    """Where the run stands; saved in every checkpoint."""

    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # steps of the current epoch done (non-zero only after a signal)
    global_step: int = 0
    best_top1: float = -1.0
    best_epoch: int = 0
    train_seconds: float = 0.0
    images_seen: int = 0
    epoch_loss_sums: list[float] = field(default_factory=list)
    epoch_images: int = 0  # images this process trained on in the current epoch so far
    epoch_seconds: float = 0.0  # training time of the current epoch before an interruption
    epoch_lr: float = 0.0  # the learning rate of the current epoch's first step
    last_metrics: dict[str, float] = field(default_factory=dict)  # the latest evaluation
    extra_best: dict[str, float] = field(default_factory=dict)  # best top-1 of extra networks
    reference: dict[str, float] = field(default_factory=dict)  # teacher accuracy before training
