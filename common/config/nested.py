"""Options that hold another method's options, checked when the recipe is read.

A method built over another one (SoKD over FitNet, AT, CRD or ReviewKD) keeps the other's keys
in a mapping beside the field that names it::

    base: Base = "fitnet"
    base_options: dict[str, Any] = options_of("base")  # that method's own keys

`options_of(sibling)` marks the field (its `metadata`); `check_nested_options` then builds each
marked mapping against the `Options` of the method its sibling names, so a misspelt key there
(`method.base_options.hint_layr`) is refused with the same one line, nearest key included, as a
misspelt key one level up. The mapping itself is kept as written (the method builds its typed
options from it); nested marks are followed to any depth.

This module knows no method: the loader passes the look-up from a method name to its
`Options` class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from common.config.validate import build_dataclass
from common.errors import ConfigError

__all__ = ["OPTIONS_OF_KEY", "check_nested_options", "nested_fields", "options_of"]

OPTIONS_OF_KEY = "options_of"
MAX_DEPTH = 8  # methods nested deeper than this are refused (a cycle of marks, most likely)


def options_of(sibling: str) -> Any:
    """A `dict` dataclass field (default `{}`) holding the options of the method named by the
    field `sibling` of the same dataclass."""
    return dataclasses.field(default_factory=dict, metadata={OPTIONS_OF_KEY: sibling})


def nested_fields(cls: type) -> dict[str, str]:
    """The fields of the dataclass `cls` marked by `options_of`: field name -> sibling name."""
    return {
        f.name: f.metadata[OPTIONS_OF_KEY]
        for f in dataclasses.fields(cls)
        if OPTIONS_OF_KEY in f.metadata
    }


def check_nested_options(
    options: Any, path: str, options_class: Callable[[str], type], _depth: int = 0
) -> None:
    """Raise ConfigError (one line naming the key path) when a mapping marked `options_of` in
    the dataclass `options` (found at `path`, e.g. `method`) holds a key, type, choice or range
    that the named method's `Options` refuses. `options_class(name)` gives a method's `Options`
    (KeyError for an unknown name)."""
    if _depth > MAX_DEPTH:
        raise ConfigError(f"{path}: options nested more than {MAX_DEPTH} methods deep")
    for name, sibling in nested_fields(type(options)).items():
        method = getattr(options, sibling)
        values = getattr(options, name)
        key = f"{path}.{name}"
        if not isinstance(values, dict):
            raise ConfigError(f"key '{key}' expects a mapping of options, got {values!r}")
        try:
            cls = options_class(str(method))
        except KeyError:
            raise ConfigError(
                f"{path}.{sibling} '{method}' names no method, so {key} cannot be checked"
            ) from None
        try:
            built = build_dataclass(cls, dict(values), key)
        except ConfigError as err:
            raise ConfigError(f"{err} [{path}.{sibling} '{method}']") from None
        check_nested_options(built, key, options_class, _depth + 1)
