"""Optimisers (SGD, AdamW) and learning-rate schedules stepped once per iteration.

`multistep` reproduces the CIFAR protocol (x0.1 at epochs 150/180/210 of 240), `cosine` decays
to `min_lr`, `onecycle` is torch's OneCycleLR (CQKD: max lr 1e-3, 10% warm-up); `multistep` and
`cosine` accept a linear warm-up in epochs.

The optimisers are torch's fused implementations where the build has them for the parameters'
device (`optim.fused`, on by default), with the learning rate as a tensor on that device: the
schedule writes it in place (`fill_`), so a step never reads it on the host and a captured
step (CUDA graphs) sees each new rate. The weights equal the unfused optimiser's to float
precision (tests/test_optim_fused.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from common.config.schema import OptimConfig
from common.errors import ConfigError


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimConfig, capturable: bool = False
) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay, optional Nesterov) or AdamW from the recipe: fused, with
    a tensor learning rate on the parameters' device, where torch has that (else foreach).

    `optim.name` and `optim.schedule` are the schema's Literal choices, checked when the recipe
    is read (`common.config.validate`).
    """
    params = list(params)
    if cfg.name == "sgd" and cfg.nesterov and cfg.momentum == 0:
        raise ConfigError(
            "optim.nesterov=true needs a momentum: set optim.momentum > 0 (e.g. 0.9) "
            "or optim.nesterov=false"
        )
    if cfg.fused and params:
        try:
            lr = torch.tensor(cfg.lr, dtype=torch.float32, device=params[0].device)
            return _optimizer(params, cfg, lr=lr, fused=True, capturable=capturable)
        except (RuntimeError, ValueError):  # no fused kernel for this device or dtype
            pass
    return _optimizer(params, cfg, lr=cfg.lr, fused=None, capturable=capturable)


def _optimizer(
    params: list[torch.nn.Parameter],
    cfg: OptimConfig,
    lr: float | torch.Tensor,
    fused: bool | None,
    capturable: bool = False,
) -> torch.optim.Optimizer:
    """`capturable`: AdamW keeps its step counters on the device (a CUDA graph replays it);
    SGD has no counter to keep."""
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov,
            fused=fused,
        )
    return torch.optim.AdamW(
        params,
        lr=lr,
        betas=tuple(cfg.betas),
        weight_decay=cfg.weight_decay,
        fused=fused,
        capturable=capturable,
    )


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The first group's learning rate as a number (a host read: between steps only)."""
    lr = optimizer.param_groups[0]["lr"]
    return float(lr) if torch.is_tensor(lr) else lr


def lr_factor(cfg: OptimConfig, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The multiplier of the base lr at iteration `step` (multistep, cosine, constant)."""
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "multistep":
        epoch = step / steps_per_epoch
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.schedule == "cosine":
        progress = (step - warmup) / max(1, total_steps - warmup)
        floor = cfg.min_lr / cfg.lr if cfg.lr > 0 else 0.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int, epochs: int
) -> LRScheduler:
    """A per-iteration schedule over `epochs * steps_per_epoch` steps."""
    total = max(1, steps_per_epoch * epochs)
    if cfg.schedule == "onecycle":
        return OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total + 1, pct_start=cfg.pct_start)
    return LambdaLR(optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch, total))


def scalars_to_parameters_device(optimizer: torch.optim.Optimizer) -> None:
    """Move every tensor hyper-parameter of each group (the fused step's lr) back to the
    device of the group's parameters. `Optimizer.load_state_dict` keeps them where the
    checkpoint was read (the CPU), and a CUDA graph would then bake the host value in: the
    schedule's decays would never reach a resumed run."""
    for group in optimizer.param_groups:
        device = group["params"][0].device
        for key, value in group.items():
            if key != "params" and torch.is_tensor(value) and value.device != device:
                group[key] = value.to(device)
