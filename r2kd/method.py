"""R2KD (Kim et al., "Robustness-Reinforced Knowledge Distillation with Correlation Distance
and Network Pruning", IEEE TKDE 2024) as a Distiller.

Per step, on the clean batch (Eq. 7):

    z_T   = lambda z_teacher + (1 - lambda) z_pruned              (Eq. 10, mixed on logits)
    p     = softmax(z / T) for student and z_T
    loss  = ce_weight CE(y, z_s)
          + alpha T^2 (d_value(rows) + d_value(columns))          (Eqs. 5, 8; "value")
          + beta d_rank                                            (Eqs. 6, 9; "rank")

The T^2 factor and the columns' term come from the released code, not from Eqs. 7-8 (which
have alpha d_value over the rows only); both stay the defaults, as options: `value_t_squared:
false` and `value_columns: false` together give Eq. 7's plain alpha L_Value.

and, when `augment` is not `none`, the same value and rank terms on an augmented copy of the
batch passed through student, teacher and pruned teacher ("aug_value", "aug_rank"; no CE on
it, mixed labels unused; Sec. IV-D). `kl_weight` adds T^2 KL(p_T || p_S) ("kl", off by
default) for Table VII's "pruning only" rows.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.config.validate import at_least, check_field, convert, positive, ranged
from common.errors import ConfigError
from common.methods.base import Distiller
from common.methods.losses import kd_loss
from common.methods.registry import register_method
from r2kd.augment import AUGMENTS, augmented_copy, highest_entropy
from r2kd.losses import DEFAULT_SHARPNESS, probabilities, rank_distance, value_term
from r2kd.pruning import PRUNE_MODES, PruneReport, make_pruned_teacher

CIFAR_LIKE = ("cifar10", "cifar100", "synthetic")
LOGGER = logging.getLogger("kdzoo.r2kd")


# The choices of R2KD's keys; `prune` and `augment` take theirs from the modules that implement
# them (r2kd/pruning.py, r2kd/augment.py), so each list is written once.
RankMode = Literal["soft", "hard"]
PruneMode = Literal[PRUNE_MODES]  # none | unstructured | structured
PrunedBN = Literal["eval", "train"]
Augment = Literal[AUGMENTS]  # none | cutmix | mixup | cutout | autoaugment | cutmixpick
Policy = Literal["auto", "cifar10", "imagenet", "svhn"]
PickEntropy = Literal["mixed", "clean"]


@dataclass
class R2KDOptions:
    """Hyper-parameters of R2KD (defaults: the paper and its released code)."""

    temperature: float = positive(4.0)  # T of both softmaxes
    ce_weight: float = at_least(0, 1.0)  # weight of CE on the clean batch
    alpha: float = at_least(0, 2.0)  # value term weight (times T^2 unless value_t_squared is false)
    beta: float = at_least(0, 2.0)  # rank term weight; 0 drops the term
    value_columns: bool = True  # also the transposed (per-class) Eisen term (released; Eq. 8: rows)
    value_t_squared: bool = True  # the value term times T^2 (released); false: Eq. 7's alpha
    rank_mode: RankMode = "soft"  # soft: differentiable; hard: the released value, no gradient
    rank_sharpness: float = positive(DEFAULT_SHARPNESS)  # soft rank's k, on standardised log-probs
    prune: PruneMode = "unstructured"  # unstructured (released) or structured (torch-pruning)
    prune_amount: float = ranged(0.1, ge=0, lt=1)  # fraction of weights (or channels) pruned
    teacher_mix: float = ranged(0.7, ge=0, le=1)  # lambda: z = lambda z_T + (1 - lambda) z_Pr
    pruned_bn: PrunedBN = "eval"  # train: the released quirk (batch statistics, stats updated)
    augment: Augment = "none"  # the augmented copy of each batch (Sec. IV-D)
    mixup_alpha: float = positive(0.2)  # Mixup's Beta(a, a)
    cutout_length: int = at_least(2, 8)  # Cutout's side (the Tiny-ImageNet recipes: 16, released)
    cutmixpick_keep: int = at_least(1, 64)  # CutMixPick keeps this many highest-entropy samples
    # Added keys (not in the contract):
    kl_weight: float = at_least(0, 0.0)  # T^2 KL(p_T || p_S) on the mixed teacher (Table VII)
    cutout_per_image: bool = True  # false: one hole for the whole batch (released)
    autoaugment_policy: Policy = "auto"  # auto: cifar10 on CIFAR-sized data, else imagenet
    cutmixpick_entropy: PickEntropy = "mixed"  # entropy on mixed (Wang et al.) or clean (released)


def check_options(opts: R2KDOptions) -> None:
    """Options built in Python, not by a recipe, get a recipe's checks: each key's declared
    choices and range (the same one-line ConfigError)."""
    hints = typing.get_type_hints(R2KDOptions)
    for f in dataclasses.fields(R2KDOptions):
        key = f"method.{f.name}"
        check_field(f, convert(getattr(opts, f.name), hints[f.name], key), key)


class MixedTeacher(nn.Module):
    """lambda z_teacher + (1 - lambda) z_pruned as a zoo-style model (for accuracy reports)."""

    def __init__(self, teacher: nn.Module, pruned: nn.Module, mix: float) -> None:
        super().__init__()
        self.teacher, self.pruned, self.mix = teacher, pruned, mix

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, dict]:
        z_t, z_p = self.teacher(images)[0], self.pruned(images)[0]
        return self.mix * z_t + (1.0 - self.mix) * z_p, {}


@register_method("r2kd")
class R2KD(Distiller):
    """CE + value + rank against the (pruned-)mixed teacher, plus an augmented copy."""

    Options = R2KDOptions

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        options: R2KDOptions,
        pruned_teacher: nn.Module | None = None,
        mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
        std: tuple[float, float, float] = (1.0, 1.0, 1.0),
        autoaugment_policy: str = "cifar10",
    ) -> None:
        super().__init__(student, teacher, options)
        check_options(options)
        self.pruned_teacher = pruned_teacher
        if pruned_teacher is not None:
            pruned_teacher.requires_grad_(False)
            pruned_teacher.eval()
        self.mean, self.std = tuple(mean), tuple(std)
        self.policy = autoaugment_policy
        self.prune_report: PruneReport | None = None

    @classmethod
    def from_config(cls, cfg: Any, student: nn.Module, teacher: nn.Module | None, spec: Any):
        opts: R2KDOptions = cfg.method.options  # checked by the recipe's validation
        if teacher is None:
            raise ConfigError("method 'r2kd' needs a teacher: set teacher.name")
        pruned, report = None, None
        if opts.prune != "none":
            try:
                pruned, report = make_pruned_teacher(
                    teacher, opts.prune, opts.prune_amount, spec.image_size
                )
            except (RuntimeError, ValueError) as err:
                raise ConfigError(
                    f"method.prune={opts.prune} failed on teacher '{cfg.teacher.name}' ({err}); "
                    "use method.prune=unstructured"
                ) from None
            LOGGER.info(report.line())  # through the `kdzoo` logger: rank 0 prints it
        policy = opts.autoaugment_policy
        if policy == "auto":
            policy = "cifar10" if cfg.data.name in CIFAR_LIKE else "imagenet"
        method = cls(student, teacher, opts, pruned, spec.mean, spec.std, policy)
        method.prune_report = report
        return method

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> R2KD:
        super().train(mode)
        if self.pruned_teacher is not None:
            self.pruned_teacher.train(mode and self.options.pruned_bn == "train")
        return self

    def capturable(self) -> str:
        if self.options.augment == "autoaugment":
            return "with augment=autoaugment draws torchvision's policy on the host"
        return ""

    def compile_targets(self) -> list[nn.Module]:
        extra = [self.pruned_teacher] if self.pruned_teacher is not None else []
        return [*super().compile_targets(), *extra]

    def reference_models(self) -> dict[str, nn.Module]:
        refs = super().reference_models()
        if self.pruned_teacher is not None:
            refs["pruned_teacher"] = self.pruned_teacher
            mixed = MixedTeacher(self.teacher, self.pruned_teacher, self.options.teacher_mix)
            refs["mixed_teacher"] = mixed
        return refs

    # ------------------------------------------------------------------ teacher
    def teacher_pair(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(teacher logits, pruned-teacher logits or None), without a graph."""
        with torch.no_grad():
            z_t = self.teacher(images)[0]
            z_p = self.pruned_teacher(images)[0] if self.pruned_teacher is not None else None
        return z_t, z_p

    def mix(self, z_t: torch.Tensor, z_p: torch.Tensor | None) -> torch.Tensor:
        """Eq. 10 on logits: lambda z_T + (1 - lambda) z_Pr (z_T alone without pruning)."""
        if z_p is None:
            return z_t
        lam = self.options.teacher_mix
        return lam * z_t + (1.0 - lam) * z_p

    # ------------------------------------------------------------------ losses
    def distill_terms(
        self, logits_s: torch.Tensor, z_t: torch.Tensor, prefix: str = ""
    ) -> dict[str, torch.Tensor]:
        """The weighted value, rank (and optional KL) terms of one batch."""
        opts = self.options
        temp = opts.temperature
        p_s, p_t = probabilities(logits_s, temp), probabilities(z_t, temp)
        terms: dict[str, torch.Tensor] = {}
        if opts.alpha:
            value = value_term(p_s, p_t, columns=opts.value_columns)
            scale = temp**2 if opts.value_t_squared else 1.0
            terms[f"{prefix}value"] = opts.alpha * scale * value
        if opts.beta:
            rank = rank_distance(p_s, p_t, opts.rank_mode, opts.rank_sharpness)
            terms[f"{prefix}rank"] = opts.beta * rank
        if opts.kl_weight:
            terms[f"{prefix}kl"] = opts.kl_weight * kd_loss(logits_s.float(), z_t.float(), temp)
        return terms

    def augmented_terms(
        self, images: torch.Tensor, clean_teacher: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Value + rank on the augmented copy (Sec. IV-D); `clean_teacher`: z_teacher(images)."""
        opts = self.options
        aug = augmented_copy(
            opts.augment,
            images,
            mixup_alpha=opts.mixup_alpha,
            cutout_length=opts.cutout_length,
            cutout_per_image=opts.cutout_per_image,
            mean=self.mean,
            std=self.std,
            autoaugment_policy=self.policy,
        )
        if opts.augment == "cutmixpick":
            with torch.no_grad():
                z_t = self.teacher(aug)[0]
            scores = z_t if opts.cutmixpick_entropy == "mixed" else clean_teacher
            keep = highest_entropy(scores, opts.cutmixpick_keep)
            aug, z_t = aug[keep], z_t[keep]
            z_p = None
            if self.pruned_teacher is not None:
                with torch.no_grad():
                    z_p = self.pruned_teacher(aug)[0]
        else:
            z_t, z_p = self.teacher_pair(aug)
        logits_aug, _ = self.student(aug)
        return self.distill_terms(logits_aug, self.mix(z_t, z_p), prefix="aug_")

    def forward_train(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, targets = batch.images, batch.targets
        logits_s, _ = self.student(images)
        z_t, z_p = self.teacher_pair(images)
        losses = {"ce": self.options.ce_weight * F.cross_entropy(logits_s, targets)}
        losses.update(self.distill_terms(logits_s, self.mix(z_t, z_p)))
        if self.options.augment != "none":
            losses.update(self.augmented_terms(images, z_t))
        return logits_s, losses
