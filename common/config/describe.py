"""A method's `method:` keys described from its `Options` dataclass (`tools/describe.py`).

Each key gets one `OptionRow`: its name, its type with what the field declares (choices of a
`typing.Literal` as `soft | hard`, a range as `float >= 0` or `float in [0, 1)`, a form as
`str (what it must look like)`), its default as a recipe writes it, and its meaning:

- the field's comment in the dataclass source, found with `ast` (the field's lines) and
  `tokenize` (the comments on those lines), so a multi-line default or a `field(...)` call
  keeps its comment; comment lines between fields (section notes) belong to no field;
- else the first sentence of the dataclass's docstring that names the key (`label_smoothing`
  or "label smoothing");
- else nothing.

A range's `why` is appended to the meaning. Fields inherited from a dataclass base take their
comment from the base's source.

The READMEs carry each method's table between `<!-- options:NAME -->` and
`<!-- /options:NAME -->`; `update_blocks` regenerates every such block of a text,
`readme_blocks` reads them (tests/test_describe.py fails when one is stale).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from common.config.validate import NAMES_KEY, PATTERN_KEY, RANGE_KEY, nearest_key
from common.errors import ConfigError

__all__ = [
    "OptionRow",
    "describe_options",
    "field_comments",
    "marked_block",
    "method_options",
    "options_markdown",
    "options_table",
    "options_text",
    "readme_blocks",
    "readme_paths",
    "type_text",
    "update_blocks",
]

BLOCK = re.compile(
    r"<!-- options:(?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- /options:(?P=name) -->", re.S
)


@dataclasses.dataclass(frozen=True)
class OptionRow:
    """One `method:` key: name, type (with choices or range), default (YAML), meaning."""

    key: str
    type: str
    default: str
    meaning: str


# ---------------------------------------------------------------------------- meanings
def _class_source(cls: type) -> tuple[dict[str, str], str]:
    """({field: its comment}, the class docstring) read from `cls`'s own source."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(source)
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, TypeError, SyntaxError, tokenize.TokenError):
        return {}, ""  # built at run time, or no source file: no comments
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
    if node is None:
        return {}, ""
    comments: dict[int, list[str]] = {}
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            comments.setdefault(tok.start[0], []).append(tok.string.lstrip("#").strip())
    found = {}
    for stmt in node.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            end = stmt.end_lineno or stmt.lineno
            texts = [c for line in range(stmt.lineno, end + 1) for c in comments.get(line, [])]
            if texts:
                found[stmt.target.id] = " ".join(t for t in texts if t)
    return found, ast.get_docstring(node) or ""


def field_comments(cls: type) -> dict[str, str]:
    """{field name: its source comment} of dataclass `cls`, its dataclass bases' included."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            found.update(_class_source(klass)[0])
    return found


def _sentences(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [s.strip() for s in re.split(r"(?<=[.;])\s+", flat) if s.strip()]


def docstring_mention(cls: type, key: str) -> str:
    """The first sentence of `cls`'s docstring (or a dataclass base's) naming `key`, or ''."""
    words = r"[_ ]".join(re.escape(part) for part in key.split("_"))
    pattern = re.compile(rf"(?<![\w]){words}(?![\w])", re.I)
    for klass in cls.__mro__:
        if dataclasses.is_dataclass(klass):
            for sentence in _sentences(_class_source(klass)[1]):
                if pattern.search(sentence):
                    return sentence
    return ""


# ---------------------------------------------------------------------------- types, defaults
def _value_text(value: Any) -> str:
    """`value` as a recipe writes it (YAML flow style)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value_text(v)}" for k, v in value.items()) + "}"
    if dataclasses.is_dataclass(value):
        return "{...}"
    return repr(value)


def type_text(tp: Any, field: dataclasses.Field | None = None) -> str:
    """`soft | hard`, `float >= 0`, `int in [1, 8]`, `list of float`, `float | null`."""
    metadata = field.metadata if field is not None else {}
    bounds, pattern = metadata.get(RANGE_KEY), metadata.get(PATTERN_KEY)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        parts = [type_text(a, field) for a in args if a is not type(None)]
        return " | ".join(parts + (["null"] if type(None) in args else []))
    if origin is Literal:
        return " | ".join(_value_text(c) for c in typing.get_args(tp))
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        return f"list of {type_text(inner, field)}"
    if origin is dict or tp is dict:
        return "mapping"
    if dataclasses.is_dataclass(tp):
        return f"{tp.__name__} keys"
    name = "any" if tp is Any else getattr(tp, "__name__", str(tp))
    if bounds is not None and tp in (int, float):
        name = f"{name} {bounds.describe()}"
    if pattern is not None and tp is str:
        name = f"{name} ({pattern.expected})"
    names = metadata.get(NAMES_KEY)
    if names is not None and tp is str:
        return " | ".join(names.names())
    return name


def default_text(field: dataclasses.Field) -> str:
    """The field's default as a recipe writes it ('required' when it has none)."""
    if field.default is not dataclasses.MISSING:
        return _value_text(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return _value_text(field.default_factory())
    return "required"


# ---------------------------------------------------------------------------- rows, tables
def describe_options(options_cls: type) -> list[OptionRow]:
    """One row per field of the dataclass `options_cls`, in declaration order."""
    if not dataclasses.is_dataclass(options_cls):
        raise TypeError(f"{options_cls!r} is not a dataclass")
    hints = typing.get_type_hints(options_cls)
    comments = field_comments(options_cls)
    rows = []
    for f in dataclasses.fields(options_cls):
        meaning = comments.get(f.name) or docstring_mention(options_cls, f.name)
        bounds = f.metadata.get(RANGE_KEY)
        if bounds is not None and bounds.why:
            meaning = f"{meaning} ({bounds.why})" if meaning else bounds.why
        rows.append(OptionRow(f.name, type_text(hints[f.name], f), default_text(f), meaning))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def options_table(options_cls: type) -> str:
    """The markdown table of `options_cls` (a line saying so when it has no field)."""
    rows = describe_options(options_cls)
    if not rows:
        return "No `method:` keys.\n"
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| `{r.key}` | {_cell(r.type)} | `{r.default}` | {_cell(r.meaning)} |")
    return "\n".join(lines) + "\n"


def options_text(options_cls: type) -> str:
    """The rows of `options_cls` as aligned plain-text columns (for a terminal)."""
    rows = describe_options(options_cls)
    if not rows:
        return "  (no method: keys)\n"
    table = [("key", "type", "default", "meaning")] + [
        (r.key, r.type, r.default, r.meaning) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    lines = [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[3] for row in table
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def method_options(method_name: str) -> type:
    """The Options dataclass of the registered method `method_name` (ConfigError naming the
    nearest method when there is none)."""
    from common.methods.registry import get_method, method_names

    try:
        return get_method(method_name).Options
    except KeyError:
        names = method_names()
        guess = nearest_key(method_name, names)
        hint = f"; did you mean '{guess}'?" if guess else ""
        raise ConfigError(
            f"unknown method '{method_name}'{hint} (known: {', '.join(names)})"
        ) from None


def options_markdown(method_name: str) -> str:
    """The generated body of a README's `<!-- options:METHOD -->` block: a comment naming the
    source, then the table."""
    cls = method_options(method_name)
    source = f"{cls.__module__}.{cls.__qualname__}"
    note = f"<!-- generated from {source} by tools/describe.py: edit the field comments there -->"
    return f"{note}\n{options_table(cls)}"


def marked_block(method_name: str) -> str:
    """The whole block, markers included, as a README holds it."""
    body = options_markdown(method_name)
    return f"<!-- options:{method_name} -->\n{body}<!-- /options:{method_name} -->"


def readme_blocks(text: str) -> dict[str, str]:
    """{method name: block body} of every options block in `text`."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def update_blocks(text: str) -> str:
    """`text` with every options block regenerated from its dataclass."""
    return BLOCK.sub(lambda m: marked_block(m["name"]), text)


def readme_paths(root: Path) -> list[Path]:
    """The READMEs that may hold options blocks: each package's and the shared baselines'."""
    paths = sorted(root.glob("*/README.md")) + [root / "common" / "methods" / "README.md"]
    return [p for p in paths if p.is_file()]
