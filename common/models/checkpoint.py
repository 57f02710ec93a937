"""Loading weights into zoo models, with one clear error per failure.

Accepts the checkpoint layouts met in practice, always read with
``torch.load(path, map_location="cpu", weights_only=True)`` (no pickled code is ever run):

- ``{"model": state_dict, ...}``: teacher releases of RepDistiller / mdistiller
  (``ckpt_epoch_240.pth``, with ``epoch``, ``accuracy``, ...) and this project's ``best.pt`` /
  ``last.pt``;
- ``{"state_dict": state_dict, ...}``;
- a bare state_dict (e.g. torchvision's ``resnet50-0676ba61.pth``).

Beside the tensors, only the plain-data objects released teachers hold are accepted
(``common.models.release_globals``: an ``argparse.Namespace`` of options, NumPy scalars).

A leading ``module.`` (DataParallel / DDP) or ``_orig_mod.`` (torch.compile) prefix is stripped.
A checkpoint that does not fit the model is refused with the missing / unexpected / mis-shaped
keys, and the zoo architecture (and class count) it does fit, if any.
"""

from __future__ import annotations

import functools
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from common.errors import CheckpointError
from common.models.catalogue import resolve_checkpoint
from common.models.registry import build_model, model_names
from common.models.release_globals import release_globals

_WEIGHT_KEYS = ("model", "state_dict")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_EXAMPLES = 3

Signature = dict[str, tuple[int, ...]]


def load_weights(model: nn.Module, path: str | Path, *, model_name: str = "") -> dict[str, Any]:
    """Load the weights stored in ``path`` into ``model`` (strictly); return the other entries.

    ``path`` may be a catalogue name (``mdistiller:resnet56``, ``common.models.catalogue``),
    fetched into the torch hub cache first. ``model_name`` (the zoo name of ``model``) is only
    used in error messages. The returned dict holds the file's other top-level entries (e.g.
    ``epoch``, ``accuracy``); empty for a bare state_dict.
    """
    path = resolve_checkpoint(path)
    architecture = model_name or type(model).__name__
    weights, info = _split_weights(_read_checkpoint(path), path)
    weights = _strip_wrapper_prefixes(weights)
    problems = _describe_mismatch(_signature_of_model(model), _signature_of_weights(weights))
    if problems:
        raise CheckpointError(_mismatch_message(path, architecture, problems, weights))
    model.load_state_dict(weights, strict=True)
    return info


def fitting_architectures(weights: Mapping[str, Tensor]) -> list[tuple[str, int]]:
    """Zoo ``(name, num_classes)`` pairs whose state_dict keys and shapes equal ``weights``'."""
    found = _signature_of_weights(_strip_wrapper_prefixes(weights))
    fits = []
    for name in model_names():
        classifier_key, signature = _zoo_signature(name)
        if classifier_key not in found or len(found[classifier_key]) != 2:
            continue
        num_classes = found[classifier_key][0]
        expected = dict(signature)
        expected[classifier_key] = (num_classes, *signature[classifier_key][1:])
        bias_key = classifier_key.removesuffix("weight") + "bias"
        if bias_key in expected:
            expected[bias_key] = (num_classes,)
        if not _describe_mismatch(expected, found):
            fits.append((name, num_classes))
    return fits


def _read_checkpoint(path: Path) -> Any:
    if not path.exists():
        resolved = "" if path.is_absolute() else f" (resolved to {path.resolve()})"
        raise CheckpointError(
            f"Checkpoint file not found: {path}{resolved}. "
            "Check `teacher.checkpoint` in the recipe."
        )
    if not path.is_file():
        raise CheckpointError(f"Checkpoint path is not a file: {path}")
    try:
        with torch.serialization.safe_globals(release_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe_global = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if unsafe_global:
            raise CheckpointError(
                f"{path} is not a plain-tensor checkpoint: it holds pickled code or objects "
                f"({unsafe_global.group(1)}), refused for safety by "
                "torch.load(weights_only=True). Re-save only the tensors, e.g. "
                "torch.save({'model': model.state_dict()}, path)."
            ) from exc
        raise _not_a_weights_file(path, weights_only_reason(str(exc))) from exc
    except Exception as exc:  # torch raises KeyError/EOFError/RuntimeError for non-checkpoints
        raise _not_a_weights_file(path, f"{type(exc).__name__}: {exc}") from exc


def _not_a_weights_file(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a PyTorch weights file ({reason}); only plain-tensor checkpoints "
        "(a state_dict, or a dict holding one under 'model' / 'state_dict') are accepted."
    )


def weights_only_reason(message: str) -> str:
    """The unpickler's own reason inside torch's long weights_only message."""
    _, _, detail = message.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    return lines[0][:200] if lines else message.splitlines()[0][:200]


def _split_weights(raw: Any, path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Find the state_dict in a loaded checkpoint; return it and the other top-level entries."""
    if not isinstance(raw, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(raw).__name__}, not a dict of weights or a state_dict."
        )
    for key in _WEIGHT_KEYS:
        if isinstance(raw.get(key), Mapping):
            info = {k: v for k, v in raw.items() if k != key}
            return _checked_state_dict(raw[key], path, where=f"under {key!r}"), info
    if raw and all(isinstance(value, Tensor) for value in raw.values()):
        return _checked_state_dict(raw, path, where="at top level"), {}
    raise CheckpointError(
        f"{path} holds no weights: expected a state_dict under 'model' or 'state_dict', or a "
        f"bare state_dict; found top-level keys {sorted(map(str, raw))[:10]}."
    )


def _checked_state_dict(weights: Mapping, path: Path, where: str) -> dict[str, Tensor]:
    bad = [str(k) for k, v in weights.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if bad or not weights:
        detail = f"non-tensor entries such as {bad[:_EXAMPLES]}" if bad else "no entries"
        raise CheckpointError(f"{path}: the state_dict {where} has {detail}.")
    return dict(weights)


def _strip_wrapper_prefixes(weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    stripped = {}
    for key, value in weights.items():
        for prefix in _WRAPPER_PREFIXES:
            key = key.removeprefix(prefix)
        stripped[key] = value
    return stripped


def _signature_of_model(model: nn.Module) -> Signature:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _signature_of_weights(weights: Mapping[str, Tensor]) -> Signature:
    return {key: tuple(value.shape) for key, value in weights.items()}


@functools.cache
def _zoo_signature(name: str) -> tuple[str, Signature]:
    """Key -> shape of zoo model ``name`` (built on the meta device) and its classifier key."""
    with torch.device("meta"):
        model = build_model(name, 1)
    linear_names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return f"{linear_names[-1]}.weight", _signature_of_model(model)


def _describe_mismatch(expected: Signature, found: Signature) -> dict[str, list[str]]:
    """Missing / unexpected / mis-shaped keys; BN ``num_batches_tracked`` may be absent."""
    missing = [k for k in expected if k not in found and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in found if k not in expected]
    misshaped = [
        f"{k}: checkpoint {list(found[k])} vs model {list(expected[k])}"
        for k in expected
        if k in found and found[k] != expected[k]
    ]
    problems = {"missing": missing, "unexpected": unexpected, "mis-shaped": misshaped}
    return {kind: keys for kind, keys in problems.items() if keys}


def _mismatch_message(
    path: Path, architecture: str, problems: dict[str, list[str]], weights: Mapping[str, Tensor]
) -> str:
    parts = [
        f"{len(keys)} {kind} keys (e.g. {'; '.join(keys[:_EXAMPLES])})"
        for kind, keys in problems.items()
    ]
    fits = fitting_architectures(weights)
    if fits:
        candidates = " or ".join(f"'{name}' with {classes} classes" for name, classes in fits)
        hint = f"It fits the zoo architecture {candidates}."
    else:
        hint = "It fits no architecture of the model zoo."
    return (
        f"Checkpoint {path} does not fit architecture '{architecture}': {', '.join(parts)}. {hint}"
    )
