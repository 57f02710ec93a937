"""Method registry: a Distiller subclass registers under the name recipes use in `method.name`.

The paper packages register their methods when imported; `get_method` imports them on first
need, so a recipe naming `r2kd` works from any entry point.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.methods.base import Distiller

_METHODS: dict[str, type[Distiller]] = {}

# Modules that register methods when imported (the shared baselines, then each paper's).
METHOD_MODULES = (
    "common.methods.vanilla",
    "common.methods.kd",
    "common.methods.dkd",
    "common.methods.dml",
    "r2kd.method",
    "slkd.method",
    "sokd.method",
    "cqkd.method",
)


def register_method(name: str):
    """Class decorator: make a Distiller subclass available as `method.name: <name>`."""

    def decorate(cls: type[Distiller]) -> type[Distiller]:
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method '{name}' is registered twice")
        cls.method_name = name
        _METHODS[name] = cls
        return cls

    return decorate


def _import_all() -> None:
    for module in METHOD_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            # Only a module not written yet is skipped; an import error inside one is raised.
            if err.name is None or not module.startswith(err.name):
                raise


def get_method(name: str) -> type[Distiller]:
    """The Distiller class registered as `name` (KeyError if none)."""
    if name not in _METHODS:
        _import_all()
    return _METHODS[name]


def method_names() -> list[str]:
    """Every registered method name."""
    _import_all()
    return sorted(_METHODS)
