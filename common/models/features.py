"""The feature contract shared by every zoo model.

Every model's ``forward(x)`` returns ``(logits, features)``. ``features`` follows the layout of
mdistiller (megvii-research/mdistiller, ``mdistiller/models/cifar/*.py``):

- ``"feats"``: the stem output, then each stage's output (after its final activation);
- ``"preact_feats"``: the same positions, taken before the final ReLU of each stage;
- ``"pooled_feat"``: the (B, D) vector that enters the classifier.

``get_stage_channels()`` on each model gives the channel count of every entry of ``"feats"``.
"""

from __future__ import annotations

from torch import Tensor, nn

Features = dict[str, "list[Tensor] | Tensor"]
ModelOutput = tuple[Tensor, Features]


def make_features(feats: list[Tensor], preact_feats: list[Tensor], pooled: Tensor) -> Features:
    """Pack the three entries of the feature dict in the shared layout."""
    return {"feats": feats, "preact_feats": preact_feats, "pooled_feat": pooled}


def run_stage_with_preact(stage: nn.Sequential, x: Tensor) -> tuple[Tensor, Tensor]:
    """Run a stage of blocks; return its output and the last block's pre-activation output.

    Every block but the last runs its plain ``forward``; the last one runs
    ``forward_with_preact`` (the ``is_last`` blocks of mdistiller).
    """
    *leading, last = list(stage)
    for block in leading:
        x = block(x)
    return last.forward_with_preact(x)
