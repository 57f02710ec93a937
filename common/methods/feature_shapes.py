"""The shapes of a zoo model's features, from one dry forward at the data's image size.

Feature methods size their adapters (FitNet's regressor, ReviewKD's fusion, CRD's embeddings)
from these shapes rather than from numbers typed per teacher/student pair.

mdistiller's `get_feat_shapes` runs the dry forward on the models as they are, i.e. in train
mode, so the loaded teacher's BatchNorm running statistics take one update from a random image.
Here the forward runs in eval mode by default (nothing changes); `train_mode=True` reproduces the
reference's quirk. Either way the modules' train/eval flags are restored afterwards.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

Shape = tuple[int, ...]


def _as_hw(image_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


def feature_shapes(
    model: nn.Module,
    image_size: int | tuple[int, int],
    in_channels: int = 3,
    train_mode: bool = False,
) -> dict[str, Any]:
    """{"feats": [(C, H, W), ...], "preact_feats": [(C, H, W), ...], "pooled_feat": (D,)}.

    One forward of a single random image of `image_size` ((H, W) or one int for a square) with
    `in_channels` channels, on the model's device and dtype, under `torch.no_grad()`. The batch
    dimension is left out of every shape. The image comes from a private, fixed-seed generator,
    so the global random stream is not consumed.
    """
    height, width = _as_hw(image_size)
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(1, in_channels, height, width, generator=generator)
    image = image.to(device=device, dtype=dtype)
    modes = {module: module.training for module in model.modules()}
    try:
        model.train(train_mode)
        with torch.no_grad():
            _, features = model(image)
    finally:
        for module, mode in modes.items():
            module.training = mode
    return {
        "feats": [tuple(f.shape[1:]) for f in features["feats"]],
        "preact_feats": [tuple(f.shape[1:]) for f in features["preact_feats"]],
        "pooled_feat": tuple(features["pooled_feat"].shape[1:]),
    }
