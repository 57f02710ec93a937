"""Check a parsed recipe (plain dicts) against the dataclass schema and build typed objects.

Every key must exist in the schema: a misspelt key stops with one line naming it and the nearest
valid key. A value of the wrong type names the key and the type expected. Values given as
strings (command-line overrides, or YAML's `1e-3`, which PyYAML reads as a string) are converted
by the type the schema declares.

Declaring what a key accepts (once, on the dataclass field; methods' `Options` likewise):

- **Choices**: annotate with `typing.Literal`, also inside `list[...]` and `X | None`::

      amp: Literal["none", "bf16", "fp16"] = "none"
      augments: list[Literal["cutmix", "mixup"]] = field(default_factory=list)
      mode: Literal["soft", "hard"] | None = None

  A value outside them is refused: `train.amp 'fp32' is not one of: auto, none, bf16, fp16`. Code
  that needs the choices as a tuple derives it from one alias instead of repeating them::

      Amp = Literal["none", "bf16", "fp16"]
      AMP_MODES = typing.get_args(Amp)

- **Ranges** of numbers: `ranged(default, ge=, gt=, le=, lt=, why=)` (closed bounds `ge`/`le`,
  open bounds `gt`/`lt`, any combination), or the shortcuts `at_least(low, default)` (>= low)
  and `positive(default)` (> 0); `why` is appended to the message::

      batch_size: int = at_least(1, 64)
      momentum: float = ranged(0.9, ge=0, lt=1)
      epochs: int = at_least(1, 240, why="a run trains at least one epoch")

  They are `dataclasses.field`s carrying `metadata={"range": Range(...)}` (write that directly
  to combine a range with other field options). A list's range applies to every element.
  Out of range: `train.batch_size 0 is out of range: must be >= 1`.

- **Names a registry gives**: `registered(names, default)`, a string that must be one of
  `names()` when it is checked (SoKD's `base`: any registered feature method, so a method added
  later is a choice without an edit here); the message is the choices' one.

- **A form** for open-ended strings: `matching(regex, default, expected)`, e.g. `device`
  (`metadata={"pattern": Pattern(...)}`; the whole value must match).

Checks run on the values a recipe or an override gives; dataclasses built directly in Python
are not validated (their defaults are tested to satisfy their own declarations).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, Union

from common.errors import ConfigError

__all__ = [
    "ConfigError",
    "Pattern",
    "Range",
    "at_least",
    "build_dataclass",
    "check_field",
    "convert",
    "matching",
    "nearest_key",
    "positive",
    "ranged",
    "registered",
    "to_plain",
]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NULL = {"null", "none", "~"}
RANGE_KEY = "range"
PATTERN_KEY = "pattern"
NAMES_KEY = "names"


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds of a number: `ge`/`le` closed (>=, <=), `gt`/`lt` open (>, <); None = unbounded."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    why: str = ""

    def contains(self, value: float) -> bool:
        """Whether `value` satisfies every bound (NaN never does)."""
        checks = (
            self.ge is None or value >= self.ge,
            self.gt is None or value > self.gt,
            self.le is None or value <= self.le,
            self.lt is None or value < self.lt,
        )
        return all(checks) and value == value

    def describe(self) -> str:
        """'>= 1', '> 0', 'in [0, 1)', '<= 5'."""
        low, low_open = (self.gt, True) if self.gt is not None else (self.ge, False)
        high, high_open = (self.lt, True) if self.lt is not None else (self.le, False)
        if low is not None and high is not None:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            return f"in {left}{_num(low)}, {_num(high)}{right}"
        if low is not None:
            return f"{'>' if low_open else '>='} {_num(low)}"
        if high is not None:
            return f"{'<' if high_open else '<='} {_num(high)}"
        return "any number"


@dataclasses.dataclass(frozen=True)
class Pattern:
    """A string that must match `regex` as a whole; `expected` says what that means to a user."""

    regex: str
    expected: str


@dataclasses.dataclass(frozen=True)
class Names:
    """The valid values of a string, given by `names()` when a value is checked."""

    names: Callable[[], Sequence[str]]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _field(default: Any, metadata: dict[str, Any]) -> Any:
    if isinstance(default, (list, dict, set)):  # mutable: one copy per instance
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def ranged(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    why: str = "",
) -> Any:
    """A dataclass field with `default` whose value must lie within the bounds given."""
    return _field(default, {RANGE_KEY: Range(ge=ge, gt=gt, le=le, lt=lt, why=why)})


def at_least(low: float, default: Any, why: str = "") -> Any:
    """A dataclass field with `default` whose value must be >= `low`."""
    return ranged(default, ge=low, why=why)


def positive(default: Any, why: str = "") -> Any:
    """A dataclass field with `default` whose value must be > 0."""
    return ranged(default, gt=0, why=why)


def matching(regex: str, default: str, expected: str) -> Any:
    """A string dataclass field with `default` that must match `regex` (`expected`: its form
    in words, for the message)."""
    return _field(default, {PATTERN_KEY: Pattern(regex, expected)})


def registered(names: Callable[[], Sequence[str]], default: str) -> Any:
    """A string dataclass field with `default` that must be one of `names()` (read when a
    recipe's value is checked: a registry's names, so later additions are choices too)."""
    return _field(default, {NAMES_KEY: Names(names)})


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


def _is_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is Literal


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of: " + ", ".join(str(c) for c in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"list of {_type_name(inner)}"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def choices_message(key: str, value: Any, choices: tuple[Any, ...], null: bool = False) -> str:
    """`train.amp 'fp32' is not one of: auto, none, bf16, fp16` (nearest choice named if close)."""
    names = [str(c) for c in choices] + (["null"] if null else [])
    guess = nearest_key(str(value), [str(c) for c in choices])
    hint = f"; did you mean '{guess}'?" if guess else ""
    return f"{key} {value!r} is not one of: {', '.join(names)}{hint}"


def _convert_literal(value: Any, tp: Any, key: str, null: bool = False) -> Any:
    choices = typing.get_args(tp)
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return choice
    for choice in choices:  # '8' from an override for Literal[4, 8]; 8 from YAML for Literal['8']
        try:
            if isinstance(choice, str) and not isinstance(value, (bool, str)):
                converted = _convert_scalar(value, str, key)
            else:
                converted = _convert_scalar(value, type(choice), key)
        except ConfigError:
            continue
        if type(converted) is type(choice) and converted == choice:
            return choice
    raise ConfigError(choices_message(key, value, choices, null))


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


def _convert_union(value: Any, tp: Any, key: str) -> Any:
    args = typing.get_args(tp)
    nullable = type(None) in args
    options = [a for a in args if a is not type(None)]
    if nullable and value is None:
        return None
    literal_choices = {c for a in options if _is_literal(a) for c in typing.get_args(a)}
    null_text = isinstance(value, str) and value.lower() in _NULL
    if nullable and null_text and value not in literal_choices:  # Literal["none"] keeps it
        return None
    for arg in options:
        try:
            return convert(value, arg, key)
        except ConfigError:
            continue
    if len(options) == 1 and _is_literal(options[0]):
        raise ConfigError(choices_message(key, value, typing.get_args(options[0]), nullable))
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
        return _convert_union(value, tp, key)
    if origin is Literal:
        return _convert_literal(value, tp, key)
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


def _check_range(value: Any, bounds: Range, key: str) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_range(item, bounds, f"{key}[{i}]")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return  # None (an optional key left empty) or a non-number: nothing to bound
    if not bounds.contains(value):
        why = f" ({bounds.why})" if bounds.why else ""
        raise ConfigError(f"{key} {value!r} is out of range: must be {bounds.describe()}{why}")


def check_field(field: dataclasses.Field, value: Any, key: str) -> None:
    """Raise ConfigError naming `key` when the converted `value` breaks `field`'s declared
    range or form (see the module docstring)."""
    bounds = field.metadata.get(RANGE_KEY)
    if bounds is not None:
        _check_range(value, bounds, key)
    pattern = field.metadata.get(PATTERN_KEY)
    if pattern is not None and isinstance(value, str) and not re.fullmatch(pattern.regex, value):
        raise ConfigError(f"{key} {value!r} is not valid: expected {pattern.expected}")
    names = field.metadata.get(NAMES_KEY)
    if names is not None and isinstance(value, str):
        valid = tuple(names.names())
        if value not in valid:
            raise ConfigError(choices_message(key, value, valid))


def build_dataclass(cls: type, values: dict[str, Any], path: str = "") -> Any:
    """Build `cls` from `values`, refusing unknown keys, wrong types, values outside the
    declared choices and ranges."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in hints or key not in fields:
            raise ConfigError(unknown_key_message(path, str(key), list(fields)))
        full = f"{path}.{key}" if path else key
        kwargs[key] = convert(value, hints[key], full)
        check_field(fields[key], kwargs[key], full)
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
