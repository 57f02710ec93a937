"""Any classifier as a zoo model: `(logits, features)` through torchvision's feature extraction.

`FeatureModel(model)` traces `model` with `torchvision.models.feature_extraction` and returns,
like every zoo model, `(logits, {"feats": [...], "preact_feats": [...], "pooled_feat": ...})`:

- `feats`: the outputs of the named graph nodes (`feature_nodes`); by default the stage
  outputs, found by a dry forward on the meta device (no compute): of the modules at depth one
  and two that return a (B, C, H, W) map, the last one at each spatial size, in forward order,
  the first being the stem (e.g. ResNet: `relu`, `layer1` ... `layer4`; ConvNeXt and
  EfficientNet: `features.*`). A method that distils other maps names them instead.
- `preact_feats`: the same maps (a traced model exposes no pre-activation outputs);
- `pooled_feat`: the input of the final classifier layer.

The state-dict keys are the wrapped model's own, so torchvision's weight files load
unchanged. Models whose maps are not (B, C, H, W) (ViT's tokens, Swin's NHWC maps) give the
few NCHW maps they have, often only the patch embedding; logit methods (KD, DKD) need none.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from common.models.features import ModelOutput, make_features

DRY_RUN_SIZE = 224  # the input side of the shape-finding dry forward (meta device)


def classifier_nodes(model: nn.Module) -> tuple[str, str]:
    """(pooled-feature node, logits node): the output node and the node feeding it."""
    train_nodes, _ = get_graph_node_names(model)
    if len(train_nodes) < 2:
        raise ValueError(f"{type(model).__name__} has too few graph nodes to find its classifier")
    return train_nodes[-2], train_nodes[-1]


@torch.no_grad()
def stage_nodes(model: nn.Module, size: int = DRY_RUN_SIZE) -> tuple[list[str], list[int]]:
    """The default feature nodes (stem and stage outputs) and their channel counts.

    A dry forward of a meta-device copy of `model`'s architecture records the output shape of
    every module at depth one or two; each spatial size's last (B, C, H, W) output is kept,
    in forward order; 1 x 1 maps (global pooling) are left out.
    """
    meta = _meta_copy(model)
    seen: list[tuple[str, tuple[int, ...]]] = []
    hooks = []
    for name, module in meta.named_modules():
        if name and name.count(".") <= 1:

            def record(_m: nn.Module, _i: object, out: object, name: str = name) -> None:
                if isinstance(out, Tensor) and out.dim() == 4:
                    seen.append((name, tuple(out.shape)))

            hooks.append(module.register_forward_hook(record))
    try:
        meta.eval()(torch.zeros(1, 3, size, size, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    names: list[str] = []
    channels: list[int] = []
    last_size: tuple[int, int] | None = None
    for name, shape in seen:
        spatial = (shape[2], shape[3])
        if spatial == (1, 1):
            continue
        if spatial == last_size:
            names[-1], channels[-1] = name, shape[1]
        else:
            names.append(name)
            channels.append(shape[1])
            last_size = spatial
    return names, channels


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` whose tensors live on the meta device (no memory, no compute)."""
    memo = {
        id(t): torch.empty_like(t, device="meta") for t in [*model.parameters(), *model.buffers()]
    }
    return copy.deepcopy(model, memo)


class FeatureModel(nn.Module):
    """`model` returning `(logits, features)`; state-dict keys are `model`'s own."""

    def __init__(self, model: nn.Module, feature_nodes: Sequence[str] | None = None) -> None:
        super().__init__()
        pooled, logits = classifier_nodes(model)
        if feature_nodes:
            nodes, channels = list(feature_nodes), []
        else:
            nodes, channels = stage_nodes(model)
        return_nodes = {node: f"feat{i}" for i, node in enumerate(nodes)}
        return_nodes.update({pooled: "pooled", logits: "logits"})
        graph = create_feature_extractor(model, return_nodes=return_nodes)
        # The graph's own submodules and tensors become this module's, under the same names:
        # the traced forward uses them, and the state dict keeps the wrapped model's keys.
        for name, child in graph.named_children():
            self.add_module(name, child)
        for name, param in graph.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buffer in graph.named_buffers(recurse=False):
            self.register_buffer(name, buffer)
        self._graph = [graph]  # a list: not a second registration of the same modules
        self.feature_nodes = nodes
        self.stage_channels = channels
        self.architecture = type(model).__name__

    def train(self, mode: bool = True) -> FeatureModel:
        super().train(mode)
        self._graph[0].train(mode)  # a traced model may have separate train and eval graphs
        return self

    def __deepcopy__(self, memo: dict) -> FeatureModel:
        """A copy sharing its submodules with its own copied graph, in this module's mode
        (copying a traced graph re-runs its constructor, which switches it to training)."""
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = copy.deepcopy(value, memo)
        modes = {name: m.training for name, m in self.named_modules()}
        new._graph[0].train(self.training)
        for name, module in new.named_modules():
            module.training = modes[name]
        return new

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 (nn.Module's signature)
        super()._apply(fn, recurse)
        graph = self._graph[0]
        for name in list(graph._buffers):  # top-level buffers are replaced, not updated
            graph._buffers[name] = self._buffers[name]
        return self

    def get_stage_channels(self) -> list[int]:
        """Channels of every entry of `feats` (from the dry forward; [] for named nodes)."""
        return list(self.stage_channels)

    def forward(self, images: Tensor) -> ModelOutput:
        out = self._graph[0](images)
        feats = [out[f"feat{i}"] for i in range(len(self.feature_nodes))]
        return out["logits"], make_features(feats, feats, out["pooled"])
