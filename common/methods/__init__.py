"""Distillation methods: the Distiller base class, the registry and the shared baselines.

Every registered method is importable from here by its class name, the shared baselines and
the installed paper packages' methods alike (`from common.methods import KD, DKD, DML`); a
paper package is imported only when one of its classes is asked for.
"""

from typing import Any

from common.methods.base import Distiller, NoOptions
from common.methods.registry import all_methods, get_method, method_names, register_method

__all__ = ["Distiller", "NoOptions", "all_methods", "get_method", "method_names", "register_method"]


def __getattr__(name: str) -> Any:
    """`from common.methods import KD`: a registered method class by its class name."""
    from common.methods.registry import METHODS

    for cls in METHODS.loaded().values():  # the shared baselines: no paper package imported
        if cls.__name__ == name:
            return cls
    for cls in all_methods().values():
        if cls.__name__ == name:
            return cls
    raise AttributeError(f"module 'common.methods' has no attribute {name!r}")
