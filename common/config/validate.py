"""Check a parsed recipe (plain dicts) against the dataclass schema and build typed objects.

Every key must exist in the schema: a misspelt key stops with one line naming it and the nearest
valid key. A value of the wrong type names the key and the type expected. Values given as
strings (command-line overrides, or YAML's `1e-3`, which PyYAML reads as a string) are converted
by the type the schema declares.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Union

from common.errors import ConfigError

__all__ = ["ConfigError", "build_dataclass", "convert", "nearest_key", "to_plain"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def nearest_key(key: str, valid: list[str]) -> str:
    """The valid key closest to `key`, or '' when none is close."""
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return match[0] if match else ""


def unknown_key_message(path: str, key: str, valid: list[str]) -> str:
    """One line: the unknown key, the nearest valid key, the valid keys."""
    full = f"{path}.{key}" if path else key
    guess = nearest_key(key, valid)
    hint = f"; did you mean '{path + '.' if path else ''}{guess}'?" if guess else ""
    return f"unknown key '{full}'{hint} (valid keys here: {', '.join(sorted(valid))})"


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"list of {_type_name(inner)}"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert_scalar(value: Any, tp: type, key: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif tp is Any:
        return value
    raise ConfigError(f"key '{key}' expects {_type_name(tp)}, got {value!r}")


def convert(value: Any, tp: Any, key: str) -> Any:
    """Convert `value` to the schema type `tp` or raise ConfigError naming `key`."""
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"key '{key}' expects a mapping of {tp.__name__} keys, got {value!r}")
        return build_dataclass(tp, value, key)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("null", "none") and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"key '{key}' expects {_type_name(tp)}, got {value!r}")
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [v for v in value.strip("[]").split(",") if v.strip()]
            value = [v.strip() for v in value]
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"key '{key}' expects {_type_name(tp)}, got {value!r}")
        return [convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"key '{key}' expects a mapping, got {value!r}")
        return dict(value)
    return _convert_scalar(value, tp, key)


def build_dataclass(cls: type, values: dict[str, Any], path: str = "") -> Any:
    """Build `cls` from `values`, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(unknown_key_message(path, str(key), valid))
        kwargs[key] = convert(value, hints[key], f"{path}.{key}" if path else key)
    return cls(**kwargs)


def to_plain(obj: Any) -> Any:
    """A dataclass tree as plain dicts and lists (for YAML and checkpoints)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj
