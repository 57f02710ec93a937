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

from typing import TYPE_CHECKING

from common.registry import Registry

if TYPE_CHECKING:
    from common.methods.base import Distiller

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


def _record_name(name: str, cls: type[Distiller]) -> None:
    cls.method_name = name


METHODS: Registry[type[Distiller]] = Registry(
    "method", "kdzoo.methods", BUILTIN_MODULES, on_register=_record_name
)
ENTRY_POINT_GROUP = METHODS.group


def register_method(name: str):
    """Class decorator: make a Distiller subclass available as `method.name: <name>`."""
    return METHODS.register(name)


def get_method(name: str) -> type[Distiller]:
    """The Distiller class registered as `name` (KeyError if none)."""
    return METHODS.get(name)


def method_names() -> list[str]:
    """Every method name: the shared baselines, those registered so far and every installed
    entry point (without importing the packages)."""
    return sorted(METHODS.names())


def all_methods() -> dict[str, type[Distiller]]:
    """Every method class by name, loading every installed entry point."""
    return dict(sorted(METHODS.all().items()))
