"""`tools/describe.py` and the READMEs' generated options tables (common/config/describe.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from common.config.describe import (
    describe_options,
    field_comments,
    marked_block,
    options_markdown,
    options_table,
    readme_blocks,
    readme_paths,
    update_blocks,
)
from common.config.validate import at_least, positive, ranged
from common.methods.registry import get_method, method_names
from tools.describe import main

REPO = Path(__file__).resolve().parents[1]

# Every method of the packages that exist now; each must have an options block in a README
# (`*/README.md` or common/methods/README.md). A package that adds a method (fitnet, at, crd,
# reviewkd, sokd, ...) adds its name here together with its README's block.
DOCUMENTED = {
    "vanilla", "kd", "dkd", "dml", "fitnet", "at", "crd", "reviewkd", "r2kd", "slkd", "cqkd",
    "lowres", "sokd",
}  # fmt: skip


@dataclass
class Probe:
    """A test dataclass. The `documented` key is explained here: in one sentence. Nothing else.

    Label smoothing is a sentence about `label_smoothing` (spaces for underscores)."""

    mode: Literal["soft", "hard"] = "soft"  # how the rank is taken
    weight: float = at_least(0, 1.0)  # a weight | with a bar
    mix: float = ranged(0.5, ge=0, lt=1)
    items: list[float] = field(  # one per teacher
        default_factory=lambda: [0.5, 0.5],
    )
    spread: tuple[int, ...] | None = field(
        default=None,
    )  # a multi-line default
    # A section note: it belongs to no field.
    documented: bool = True
    label_smoothing: float = 0.0
    undocumented: str = ""
    cohort: int = at_least(2, 3, why="two members at least")  # m
    temperature: float | None = positive(None)  # T; null = the default


def rows() -> dict[str, tuple[str, str, str]]:
    return {r.key: (r.type, r.default, r.meaning) for r in describe_options(Probe)}


def test_the_meaning_is_the_fields_comment() -> None:
    got = rows()
    assert got["mode"][2] == "how the rank is taken"
    assert got["weight"][2] == "a weight | with a bar"
    assert got["items"][2] == "one per teacher"  # a field(...) over several lines
    assert got["spread"][2] == "a multi-line default"
    assert got["mix"][2] == ""  # no comment, no mention in the docstring
    assert got["undocumented"][2] == ""
    assert "section note" not in " ".join(m for _, _, m in got.values())
    assert got["cohort"][2] == "m (two members at least)"  # the range's why is appended
    assert field_comments(Probe)["temperature"] == "T; null = the default"


def test_a_field_without_comment_takes_the_docstrings_mention() -> None:
    got = rows()
    assert got["documented"][2] == "The `documented` key is explained here: in one sentence."
    assert got["label_smoothing"][2].startswith("Label smoothing is a sentence")


def test_the_type_column_shows_choices_and_ranges() -> None:
    got = rows()
    assert got["mode"][:2] == ("soft | hard", "soft")
    assert got["weight"][:2] == ("float >= 0", "1.0")
    assert got["mix"][:2] == ("float in [0, 1)", "0.5")
    assert got["items"][:2] == ("list of float", "[0.5, 0.5]")
    assert got["spread"][:2] == ("list of int | null", "null")
    assert got["documented"][:2] == ("bool", "true")
    assert got["undocumented"][:2] == ("str", '""')
    assert got["cohort"][:2] == ("int >= 2", "3")
    assert got["temperature"][:2] == ("float > 0 | null", "null")


def test_markdown_escapes_bars_and_blocks_regenerate() -> None:
    table = options_table(Probe)
    assert "| `mode` | soft \\| hard | `soft` | how the rank is taken |" in table
    assert "a weight \\| with a bar" in table
    stale = "intro\n<!-- options:kd -->\n| old |\n<!-- /options:kd -->\noutro\n"
    fresh = update_blocks(stale)
    assert fresh == f"intro\n{marked_block('kd')}\noutro\n"
    assert readme_blocks(fresh) == {"kd": options_markdown("kd")}


def test_every_readme_table_matches_its_dataclass() -> None:
    stale = []
    for path in readme_paths(REPO):
        for name, body in readme_blocks(path.read_text()).items():
            if body != options_markdown(name):
                stale.append(f"{path.relative_to(REPO)}: {name}")
    assert not stale, f"stale options tables {stale}: run python tools/describe.py --update"


def test_every_method_has_its_options_block() -> None:
    assert set(method_names()) >= DOCUMENTED, "a method of DOCUMENTED is no longer registered"
    found = set()
    for path in readme_paths(REPO):
        found |= set(readme_blocks(path.read_text()))
    has_options = {n for n in DOCUMENTED if describe_options(get_method(n).Options)}
    missing = has_options - found
    assert not missing, (
        f"no <!-- options:NAME --> block for {sorted(missing)} in any README: add "
        "`python tools/describe.py NAME --markdown` between the markers"
    )
    assert {"vanilla", "kd", "dkd", "dml"} <= set(
        readme_blocks((REPO / "common" / "methods" / "README.md").read_text())
    )


def test_the_tool_prints_a_method(capsys) -> None:
    assert main(["r2kd", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out == f"### r2kd\n\n{options_markdown('r2kd')}"
    assert main(["slkd"]) == 0
    out = capsys.readouterr().out
    assert "num_sl_teachers" in out and "int >= 1" in out and "parallel | sequential" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["r2kdd"], "error: unknown method 'r2kdd'; did you mean 'r2kd'? (known: "),
        ([], "error: give exactly one of METHOD, --all or --update"),
        (["--update", "no/such/README.md"], "error: --update no/such/README.md: no such file"),
    ],
)
def test_a_mistake_is_one_error_line(capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err


def test_update_rewrites_a_stale_block(tmp_path: Path, capsys) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- options:dkd -->\nold\n<!-- /options:dkd -->\n")
    assert main(["--update", str(readme)]) == 0
    assert readme_blocks(readme.read_text()) == {"dkd": options_markdown("dkd")}
    assert "updated" in capsys.readouterr().out


def project_methods() -> set[str]:
    """Every method the project's own packages register (plug-ins of other packages aside)."""
    from common.methods.registry import all_methods

    own = ("common", "r2kd", "slkd", "sokd", "cqkd")
    return {n for n, cls in all_methods().items() if cls.__module__.split(".")[0] in own}


def test_documented_lists_every_registered_method() -> None:
    missing = project_methods() - DOCUMENTED
    assert not missing, f"registered but not in DOCUMENTED (add it and its README block): {missing}"
