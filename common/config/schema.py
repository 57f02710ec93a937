"""The recipe schema: every key a recipe may set, with its type and default.

A recipe is YAML; `common.config.load_recipe` turns it into a `RunConfig`. Unknown keys, wrong
types, values outside a key's choices (`Literal[...]`) or range (`at_least`, `positive`,
`ranged`) and a malformed `device` are refused there, each in one line naming the key (see
`common.config.validate`), so every field below is the complete list of what a user can write
and what it accepts. Method-specific hyper-parameters live under `method:` and are validated
against the dataclass the method registers (`common.methods.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from common.config.validate import at_least, matching, positive, ranged

OptimName = Literal["sgd", "adamw"]
Schedule = Literal["multistep", "cosine", "onecycle", "constant"]
Amp = Literal["auto", "none", "bf16", "fp16"]
Graph = Literal["none", "compile", "cudagraph"]
TeacherDtype = Literal["auto", "float32", "bfloat16"]
Progress = Literal["auto", "bar", "none"]
DEVICE_FORM = r"auto|cpu|cuda(:\d+)?|mps"


@dataclass
class SyntheticConfig:
    """The built-in `synthetic` data set (no files): classes grouped into super-classes."""

    num_classes: int = at_least(2, 20)
    num_superclasses: int = at_least(1, 4)  # at most num_classes
    train_per_class: int = at_least(1, 200)
    val_per_class: int = at_least(1, 50)
    image_size: int = at_least(4, 32)
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
    subset: int = at_least(0, 0)  # first N training images (0 = all), for quick runs
    drop_last: bool = False  # False: train on the partial last batch too (782 CIFAR steps)
    val_subset: int = at_least(0, 0)  # first N validation images (0 = all)
    download: bool = False  # torchvision download for CIFAR (users with a network)
    image_size: int = at_least(0, 0)  # 0 = the data set's native size; else resized once at load
    crop_padding: int = at_least(-1, -1)  # -1 = image_size // 8 (4 on CIFAR, 8 at 64x64)
    flip: bool = True
    randaugment: bool = False  # large-image loader only: RandAugment(2, 9)
    num_workers: int = at_least(0, 4)  # large-image DataLoader workers
    val_batch_size: int = at_least(1, 256)  # global
    cache_dir: str = ""  # decoded-image cache for folder data sets; "" = ~/.cache/kdzoo
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (stepped per iteration)."""

    name: OptimName = "sgd"
    lr: float = at_least(0, 0.05)
    momentum: float = ranged(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = at_least(0, 5e-4)
    betas: list[float] = ranged([0.9, 0.999], ge=0, lt=1)
    schedule: Schedule = "multistep"
    milestones: list[int] = at_least(0, [150, 180, 210])  # epochs
    gamma: float = positive(0.1)
    warmup_epochs: float = at_least(0, 0.0)  # linear warm-up (multistep, cosine)
    pct_start: float = ranged(0.1, ge=0, le=1)  # onecycle warm-up share
    fused: bool = True  # torch's fused SGD/AdamW with a device-tensor lr, where available
    min_lr: float = at_least(0, 0.0)  # cosine floor


@dataclass
class TrainConfig:
    """The training loop."""

    epochs: int = at_least(1, 240, why="a run trains at least one epoch; 0 would train nothing")
    batch_size: int = at_least(1, 64)  # global; divided by the number of processes
    seed: int = 0
    amp: Amp = "auto"  # auto: bf16 autocast on CUDA, none on the CPU
    channels_last: bool | None = None  # null: on CUDA (NHWC convolutions), off on the CPU
    graph: Graph = "none"  # compile: torch.compile the networks and the optimiser step;
    # cudagraph: capture the whole step in one CUDA graph (CUDA only)
    teacher_dtype: TeacherDtype = "auto"  # auto: the frozen teacher kept in bf16 under bf16 amp
    eval_every: int = at_least(1, 1)  # epochs
    grad_clip: float = at_least(0, 0.0)  # 0 = off
    sync_bn: bool = False  # SyncBatchNorm for the trained networks under torchrun (CUDA)
    progress: Progress = "auto"


@dataclass
class ModelConfig:
    """A network: a zoo name or `torchvision:<name>`; `checkpoint` is a file to load (teacher)
    or to start from; `weights` names torchvision's weights (`IMAGENET1K_V1`, `DEFAULT`)."""

    name: str = ""
    checkpoint: str = ""
    weights: str = ""  # torchvision:<name> only: downloaded where a network exists
    feature_nodes: list[str] = field(default_factory=list)  # torchvision: [] = stage outputs
    resolution: int = at_least(0, 0)  # 0 = the data's size; else inputs resized to this (CQKD)


@dataclass
class LogConfig:
    """Where the run's records go (`common.engine.writers`): any of jsonl (metrics.jsonl and
    summary.json, read by compare), console, csv (metrics.csv), tensorboard (the `tb` extra),
    wandb and mlflow (the `wandb` and `mlflow` extras)."""

    writers: list[str] = field(default_factory=lambda: ["jsonl", "console", "csv"])


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
    device: str = matching(DEVICE_FORM, "auto", "auto, cpu, cuda, cuda:N or mps")  # auto: GPU/CPU
    out_root: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    teacher: ModelConfig = field(default_factory=ModelConfig)
    student: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    log: LogConfig = field(default_factory=LogConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)
