"""CRD, contrastive representation distillation (Tian et al., ICLR 2020), as mdistiller runs it.

Student and teacher pooled features are embedded (Linear + L2 normalisation, dim 128) and
scored against momentum memory banks over the whole training set (`ContrastMemory`): each
sample's positive is itself (mode "exact") or a same-class sample ("relax"), its K = 16384
negatives samples of OTHER classes drawn on the device each step. The NCE objective (Eqs.
18-19, `NCECriterion`) is applied to both directions:

    L = ce_weight CE(y, z_s) + feat_weight * (NCE(student anchors) + NCE(teacher anchors))

(no KD term; defaults: mdistiller's CIFAR-100 config, feat_weight 0.8, temperature 0.07,
momentum 0.5). The method needs each sample's index (`batch_fields = ("indices",)`), filled by
every built-in loader; the embedding widths come from the models (one dry forward), the bank
size and the classes from the training set (`DataSpec.train_targets`). The banks are buffers
(in every last.pt, back on resume), the sampling generator's state is in the checkpoint too.
Under DDP every process samples the negatives of the whole global batch from the same
generator and keeps its own rows, and updates the banks with the whole global batch, so two
processes compute exactly what one does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.config.validate import at_least, positive, ranged
from common.errors import ConfigError
from common.methods.crd_embed import Embed
from common.methods.crd_loss import NCECriterion
from common.methods.crd_memory import ContrastMemory, gather_rows
from common.methods.crd_sampling import ClassIndex, build_class_index, sample_contrast_indices
from common.methods.feature_base import FeatureDistiller, FeaturePairs
from common.methods.feature_shapes import feature_shapes
from common.methods.registry import register_method
from common.world import is_distributed


@dataclass
class CRDOptions:
    """Hyper-parameters of CRD (mdistiller's CIFAR-100 values)."""

    feat_dim: int = at_least(1, 128)  # embedding width of both sides
    n_negatives: int = at_least(1, 16384)  # K negatives per anchor
    temperature: float = positive(0.07)  # NCE temperature tau
    momentum: float = ranged(0.5, ge=0, lt=1)  # memory bank update momentum
    feat_weight: float = at_least(0, 0.8)  # weight of the two NCE terms
    ce_weight: float = at_least(0, 1.0)  # weight of the cross-entropy on the labels
    mode: Literal["exact", "relax"] = "exact"  # positive: the sample itself | a same-class one
    replacement: bool = False  # negatives with replacement (mdistiller's ImageNet loader)
    seed: int | None = None  # of the negatives' draws; None: the run's train.seed


def _rank_offset(sizes: tuple[int, ...] | None, local: int) -> tuple[int, tuple[int, ...]]:
    """(this process's first row in the global batch, every process's rows)."""
    if not is_distributed():
        return 0, (local,)
    world, rank = dist.get_world_size(), dist.get_rank()
    sizes = sizes or (local,) * world
    return sum(sizes[:rank]), tuple(sizes)


@register_method("crd")
class CRD(FeatureDistiller):
    """CE + feat_weight * (NCE_s + NCE_t) over memory banks of the training set."""

    Options = CRDOptions
    batch_fields = ("indices",)

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        options: CRDOptions | None = None,
        image_size: int = 32,
        train_targets: torch.Tensor | None = None,
    ) -> None:
        super().__init__(student, teacher, options)
        if train_targets is None or len(train_targets) == 0:
            raise ConfigError(
                "method 'crd' needs the training set's labels (its memory banks and negatives "
                "cover every sample): the built-in data sets give them; for a DataLoader, use a "
                "data set with a `targets` list or pass train_targets="
            )
        o = self.options
        s = feature_shapes(student, image_size)["pooled_feat"][0]
        t = feature_shapes(teacher, image_size)["pooled_feat"][0]
        self.embed_s, self.embed_t = Embed(s, o.feat_dim), Embed(t, o.feat_dim)
        n_data = int(len(train_targets))
        self.memory = ContrastMemory(o.feat_dim, n_data, o.n_negatives, o.temperature, o.momentum)
        self.nce_s, self.nce_t = NCECriterion(n_data), NCECriterion(n_data)
        self.class_index = build_class_index(torch.as_tensor(train_targets, dtype=torch.long))
        self._generator: torch.Generator | None = None
        self._generator_state: torch.Tensor | None = None

    @classmethod
    def data_kwargs(cls, spec: Any) -> dict[str, Any]:
        """What the construction needs of the data: the image size and the training labels."""
        return {"image_size": spec.image_size, "train_targets": spec.train_targets}

    def generator(self, device: torch.device) -> torch.Generator:
        """The negatives' generator on `device` (seeded, or restored from a checkpoint)."""
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            seed = self.options.seed
            if seed is None:  # the run's train.seed: the engine seeds torch with it first
                seed = torch.initial_seed() % 2**62
            self._generator.manual_seed(seed)
            if self._generator_state is not None:
                self._generator.set_state(self._generator_state)
            self.class_index_device: ClassIndex = self.class_index.to(device)
        return self._generator

    def contrast_indices(self, batch: Batch) -> torch.Tensor:
        """(B, K + 1) rows to score this process's anchors against, positive first: drawn
        for the whole global batch (same on every process), this process's rows kept."""
        assert batch.indices is not None
        local = batch.size
        offset, sizes = _rank_offset(batch.rank_sizes, local)
        targets, indices = gather_rows(batch.targets, batch.indices, sizes=sizes)
        generator = self.generator(batch.targets.device)
        rows = sample_contrast_indices(
            targets, indices, self.class_index_device, self.options.n_negatives, generator,
            self.options.mode, self.options.replacement,
        )  # fmt: skip
        return rows[offset : offset + local]

    # ----------------------------------------------------------------- forward
    def feature_pairs(self, features: dict, teacher_features: dict) -> FeaturePairs:
        """Each network's last stage map, the one its embedding pools (the stage counts may
        differ: resnet50 has four after the stem, MobileNetV1 three)."""
        return FeaturePairs([features["feats"][-1]], [teacher_features["feats"][-1]], False)

    def losses(
        self,
        batch: Batch,
        logits: torch.Tensor,
        features: dict,
        teacher_features: dict,
        pairs: FeaturePairs,
    ) -> dict[str, torch.Tensor]:
        """{"ce", "crd"}: the weighted cross-entropy and the two NCE terms (of the pooled
        features; the pairs are for plug-ins)."""
        o = self.options
        v_s = self.embed_s(features["pooled_feat"])
        v_t = self.embed_t(teacher_features["pooled_feat"])
        _, sizes = _rank_offset(batch.rank_sizes, batch.size)
        out_s, out_t = self.memory(v_s, v_t, batch.indices, self.contrast_indices(batch), sizes)
        return {
            "ce": o.ce_weight * F.cross_entropy(logits, batch.targets),
            "crd": o.feat_weight * (self.nce_s(out_s) + self.nce_t(out_t)),
        }

    # ------------------------------------------------------------ checkpoints
    def extra_state(self) -> dict[str, Any]:
        """The sampling generator's state (the banks are buffers, in the state dict)."""
        if self._generator is None:
            return {}
        return {"crd_generator": self._generator.get_state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._generator_state = state.get("crd_generator")
        if self._generator is not None and self._generator_state is not None:
            self._generator.set_state(self._generator_state)

    def compile_targets(self) -> list[nn.Module]:
        return [*super().compile_targets(), self.embed_s, self.embed_t]

    def capturable(self) -> str:
        return "draws its negatives from its own generator: use train.graph=compile or none"
