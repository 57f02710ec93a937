"""Refuse a network whose forward is not the zoo's `(logits, features)`, before it is mis-read.

Every method reads `net(images)[0]` as the logits; a model returning a bare tensor would make
that the first sample's scores, silently. Forward hooks on the run's networks check the first
calls (the teacher's accuracy measured before training, the first training step) and stop
with one line naming the network and the fix; they are removed afterwards, so they cost
nothing later and need no extra forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from common.errors import ConfigError


def check_output(name: str, net: nn.Module, out: Any) -> None:
    """Raise ConfigError unless `out` is `(logits (B, C), features mapping)`."""
    if (
        isinstance(out, (tuple, list))
        and len(out) == 2
        and isinstance(out[0], Tensor)
        and out[0].dim() == 2
        and isinstance(out[1], Mapping)
    ):
        return
    kind = type(out).__name__
    if torch.is_tensor(out):
        kind += f" of shape {tuple(out.shape)}"
    raise ConfigError(
        f"the {name} ({type(net).__name__}) returns a {kind} from forward, not the zoo's "
        "(logits, features): wrap it with common.models.FeatureModel(model), or use a zoo or "
        "torchvision:<name> model"
    )


class OutputChecks:
    """Forward hooks checking each network's output until `remove()`."""

    def __init__(self, networks: Mapping[str, nn.Module]) -> None:
        self.handles = []
        for name, net in networks.items():

            def hook(module: nn.Module, _inputs: Any, out: Any, name: str = name) -> None:
                check_output(name, module, out)

            self.handles.append(net.register_forward_hook(hook))

    def remove(self) -> None:
        """Stop checking (idempotent)."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
