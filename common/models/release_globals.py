"""The few plain-data Python objects that released teacher files hold beside their tensors.

`torch.load(weights_only=True)` refuses every Python global it was not told is safe. Released
CIFAR teachers (RepDistiller's, as mdistiller ships them in `cifar_teachers.tar`) are known to
hold, beside the state_dict under `model`, the training options as an `argparse.Namespace` and
accuracies as NumPy scalars (third-party loaders of these files allow exactly these; not
re-checked here against the real files, which cannot be downloaded on this machine). These
types only carry data: unpickling them runs no code of the file's choosing. Anything else
stays refused (`common.models.checkpoint`).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

__all__ = ["release_globals"]

_DTYPES = ("float64", "float32", "float16", "int64", "int32", "bool")


def release_globals() -> list[Any]:
    """The allow-list for `torch.serialization.safe_globals` (NumPy 1 and 2 pickle names)."""
    core = getattr(np, "_core", None) or np.core  # NumPy 2 | 1
    scalar = core.multiarray.scalar
    allowed: list[Any] = [argparse.Namespace, np.dtype, scalar]
    allowed += [type(np.dtype(name)) for name in _DTYPES]
    allowed += [(scalar, f"{module}.multiarray.scalar") for module in ("numpy.core", "numpy._core")]
    return allowed
