"""Method registry: a Distiller subclass registers under the name recipes use in `method.name`.

The shared baselines register when their modules are imported (on first look-up). Every other
method comes from an installed package that declares it as an entry point of the group
`kdzoo.methods`, named after the method and pointing at its class:

    [project.entry-points."kdzoo.methods"]
    r2kd = "r2kd.method:R2KD"

The shared layer never names those packages: a look-up of an unknown name loads only the entry
point of that name, so loading a KD recipe imports no paper package, and a third-party package
adds a method by being installed.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.methods.base import Distiller

ENTRY_POINT_GROUP = "kdzoo.methods"

# The shared baselines (common/methods), imported on the first look-up.
BUILTIN_MODULES = (
    "common.methods.vanilla",
    "common.methods.kd",
    "common.methods.dkd",
    "common.methods.dml",
    "common.methods.fitnet",
    "common.methods.at",
    "common.methods.crd",
    "common.methods.reviewkd",
)

_METHODS: dict[str, type[Distiller]] = {}


def register_method(name: str):
    """Class decorator: make a Distiller subclass available as `method.name: <name>`."""

    def decorate(cls: type[Distiller]) -> type[Distiller]:
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method '{name}' is registered twice")
        cls.method_name = name
        _METHODS[name] = cls
        return cls

    return decorate


def _import_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def _entry_points() -> dict[str, EntryPoint]:
    """The installed `kdzoo.methods` entry points by name (nothing is imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load_entry_point(ep: EntryPoint) -> type[Distiller]:
    cls = ep.load()  # imports the package, whose decorator registers the class
    if _METHODS.get(ep.name) is not cls:
        raise ValueError(
            f"entry point '{ep.name} = {ep.value}' of group {ENTRY_POINT_GROUP} does not name a "
            f"class registered as '{ep.name}' (use @register_method('{ep.name}') on it)"
        )
    return cls


def get_method(name: str) -> type[Distiller]:
    """The Distiller class registered as `name` (KeyError if none)."""
    if name not in _METHODS:
        _import_builtins()
    if name not in _METHODS:
        ep = _entry_points().get(name)
        if ep is None:
            raise KeyError(name)
        return _load_entry_point(ep)
    return _METHODS[name]


def method_names() -> list[str]:
    """Every method name: the shared baselines, those registered so far and every installed
    entry point (without importing the packages)."""
    _import_builtins()
    return sorted(set(_METHODS) | set(_entry_points()))


def all_methods() -> dict[str, type[Distiller]]:
    """Every method class by name, loading every installed entry point."""
    for name in method_names():
        get_method(name)
    return dict(sorted(_METHODS.items()))
