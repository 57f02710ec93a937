"""SoKD's recipe keys (everything under `method:`), with the paper's values as defaults.

Paper (Sec. 3, 4.1, Table 6): the policy searched for 20 epochs, then fixed to its most likely
sub-policy; the student minimises L_task + alpha L_D + beta L_DA (Eq. 15), the policy
L_aug = 1/2 ||s(F_t) - Phi_s(F_s)||^2 (Eq. 14). Public code (METHODS.md): alpha = beta = 1000
(FitNet base, resnet32x4 -> resnet8x4), policy Adam lr 3e-4, betas (0.5, 0.999), weight decay
1e-3, Gumbel and Bernoulli temperatures 0.5, N = 8 boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from common.config.nested import options_of
from common.config.validate import at_least, positive, ranged, registered
from sokd.ops import OPS


def feature_methods() -> tuple[str, ...]:
    """Every registered feature method (`FeatureDistiller`): what SoKD can plug into."""
    from common.methods.feature_base import FeatureDistiller
    from common.methods.registry import all_methods

    return tuple(name for name, cls in all_methods().items() if issubclass(cls, FeatureDistiller))


# "" or one of the nine operations (one list: sokd.ops.OPS)
ManualOp = Literal[("", *OPS)]  # type: ignore[valid-type]


@dataclass
class SoKDOptions:
    """Hyper-parameters of SoKD (defaults: the paper, else the public code)."""

    base: str = registered(feature_methods, "fitnet")  # the feature method SoKD plugs into
    base_options: dict[str, Any] = options_of("base")  # that method's own keys
    alpha: float = at_least(0, 1000.0)  # weight of L_D, DAM's head loss (Eq. 12)
    beta: float = at_least(0, 1000.0)  # weight of L_DA, the masked feature loss (Eq. 13)
    search_epochs: int = at_least(0, 20)  # epochs of policy search (Table 6), then fixed
    dafa: bool = True  # false: no feature augmentation (Table 5's first rows)
    dam: bool = True  # false: no masks, L_DA is the plain MSE and no L_D (Table 5)
    # aug: L_aug, Eq. 14 | train: the student's loss, no L_aug (Table 5; with second: the code's)
    policy_objective: Literal["aug", "train"] = "aug"
    policy_order: Literal["first", "second"] = "first"  # second: DARTS' unrolled estimate
    unroll_lr: float = positive(0.01)  # xi of the virtual student step (second order)
    unroll_weight_decay: float = at_least(0, 1e-4)  # its weight decay (the public code's)
    relaxation: Literal["weighted", "sampled"] = "weighted"  # Eq. 8 | one sub-policy a batch
    after_search: Literal["argmax", "keep"] = "argmax"  # fix the best | keep the relaxed policy
    shared_search_forward: bool = False  # one s_bar(F_t) a search step, student's pre-update
    temperature: float = positive(0.5)  # Gumbel-softmax temperature tau (Eq. 8)
    bernoulli_temperature: float = positive(0.5)  # relaxed Bernoulli lambda (Eq. 9)
    policy_lr: float = positive(3e-4)  # Adam learning rate of the policy
    policy_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # its Adam betas
    policy_weight_decay: float = at_least(0, 1e-3)  # its weight decay
    top_n: int = at_least(1, 8)  # boxes decoded from the heatmap (N of Eq. 13)
    min_box: float = ranged(0.0, ge=0, le=1)  # floor of a box's side / the map's; 0: the head's
    heat_channels: int = at_least(1, 1)  # DAM heatmap channels (the code's CenterNet: 100)
    replace_base_loss: bool | None = None  # L_DA replaces the base's feature loss; None: FitNet
    manual_augment: ManualOp = ""  # a fixed operation instead of DAFA (Table 7)
    manual_magnitude: float = ranged(0.5, ge=0, le=1)  # its magnitude
    manual_target: Literal["features", "images"] = "features"  # augment F_t or the images
    seed: int | None = None  # of the policy's and the operations' draws; None: train.seed
