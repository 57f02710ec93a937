"""The recipe schema: every key a recipe may set, with its type and default.

A recipe is YAML; `common.config.load_recipe` turns it into a `RunConfig`. Unknown keys and
wrong types are refused there, so every field below is the complete list of what a user can
write. Method-specific hyper-parameters live under `method:` and are validated against the
dataclass the method registers (`common.methods.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SyntheticConfig:
    """The built-in `synthetic` data set (no files): classes grouped into super-classes."""

    num_classes: int = 20
    num_superclasses: int = 4
    train_per_class: int = 200
    val_per_class: int = 50
    image_size: int = 32
    seed: int = 0


@dataclass
class DataConfig:
    """Where the images come from and how they are augmented.

    `name` is one of: cifar10, cifar100, tiny_imagenet, imagenet, imagefolder, synthetic, and
    the fine-grained sets cub200, stanford_dogs, mit67, stanford40.
    `root` falls back to the DATA_ROOT environment variable when empty.
    """

    name: str = "cifar100"
    root: str = ""
    subset: int = 0  # first N training images (0 = all), for quick runs
    drop_last: bool = False  # False: train on the partial last batch too (782 CIFAR steps)
    val_subset: int = 0  # first N validation images (0 = all)
    download: bool = False  # torchvision download for CIFAR (users with a network)
    image_size: int = 0  # 0 = the data set's native size; else resize once at load time
    crop_padding: int = -1  # -1 = image_size // 8 (4 on CIFAR, 8 at 64x64)
    flip: bool = True
    randaugment: bool = False  # large-image loader only: RandAugment(2, 9)
    num_workers: int = 4  # large-image DataLoader workers
    val_batch_size: int = 256  # global
    cache_dir: str = ""  # decoded-image cache for folder data sets; "" = ~/.cache/kdzoo
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (stepped per iteration)."""

    name: str = "sgd"  # sgd | adamw
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "multistep"  # multistep | cosine | onecycle | constant
    milestones: list[int] = field(default_factory=lambda: [150, 180, 210])  # epochs
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up (multistep, cosine)
    pct_start: float = 0.1  # onecycle warm-up share
    min_lr: float = 0.0  # cosine floor


@dataclass
class TrainConfig:
    """The training loop."""

    epochs: int = 240
    batch_size: int = 64  # global; divided by the number of processes
    seed: int = 0
    amp: str = "none"  # none | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    eval_every: int = 1
    grad_clip: float = 0.0  # 0 = off
    sync_bn: bool = False  # SyncBatchNorm for the trained networks under torchrun (CUDA)
    progress: str = "auto"  # auto | bar | none


@dataclass
class ModelConfig:
    """A network of the zoo; `checkpoint` is a file to load (teacher) or to start from."""

    name: str = ""
    checkpoint: str = ""
    resolution: int = 0  # 0 = the data's size; else the input is resized to this (CQKD)


@dataclass
class MethodConfig:
    """The distillation method; its other keys are checked against the method's own schema."""

    name: str = "vanilla"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PaperConfig:
    """The number the paper reports for this recipe's row, shown beside ours by compare."""

    top1: float | None = None
    top5: float | None = None  # where the table gives one
    table: str = ""
    note: str = ""  # printed under the compare table (e.g. why a short run sits low)


@dataclass
class RunConfig:
    """A whole recipe."""

    name: str = ""  # defaults to the recipe's path below recipes/ (without .yaml)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    out_root: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    teacher: ModelConfig = field(default_factory=ModelConfig)
    student: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)
