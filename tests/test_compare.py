"""Tests for the compare report (common.report, run as tools/compare.py) on hand-written runs."""

from __future__ import annotations

import ast
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.errors import UserError
from common.report import (
    CSV_COLUMNS,
    CompareError,
    experiment_config,
    find_runs,
    format_markdown,
    load_run,
    main,
    run_warnings,
    summarise,
    top1_by_epoch,
    write_csv,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _make_run(
    root: Path,
    rel: str,
    *,
    name: str,
    method: str = "kd",
    teacher: str = "resnet56",
    student: str = "resnet20",
    data: str = "cifar100",
    seed: int = 0,
    epochs: int = 240,
    paper_top1: float | None = None,
    summary: dict[str, Any] | None = None,
    epochs_logged: int = 0,
    extra: dict[str, Any] | None = None,
    metrics: list[dict[str, Any]] | None = None,
) -> Path:
    """Write config.yaml, metrics.jsonl and (when given) summary.json under root/rel.

    ``extra`` is merged into the config (nested); ``metrics`` replaces the default epoch log
    (top-1 = 10 x epoch for ``epochs_logged`` epochs).
    """
    run = root / rel
    run.mkdir(parents=True)
    config: dict[str, Any] = {
        "git_commit": "abc123",
        "created": "2024-01-01 00:00:00",
        "name": name,
        "device": "auto",
        "out_root": "runs",
        "data": {"name": data, "root": "", "num_workers": 4},
        "train": {"seed": seed, "epochs": epochs, "progress": "auto"},
        "teacher": {"name": teacher},
        "student": {"name": student},
        "method": {"name": method},
        "paper": {"top1": paper_top1, "table": "Table 1"},
    }
    config = _deep_merge(config, extra or {})
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if metrics is None:
        metrics = [{"epoch": e, "top1": 10.0 * e} for e in range(1, epochs_logged + 1)]
    with open(run / "metrics.jsonl", "w") as fh:
        for record in metrics:
            fh.write(json.dumps(record) + "\n")
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def _summary(
    top1: float, best: float = 0.0, ece: float = 0.1, seconds: float = 10.0, top5: float = 90.0
) -> dict[str, Any]:
    return {
        "top1": top1,
        "top1_best": best or top1,
        "top5": top5,
        "ece": ece,
        "nll": 1.2,
        "entropy": 0.8,
        "train_seconds": seconds,
        "epochs": 240,
        "images_per_second": 1000.0,
    }


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    """Two seeds of one KD recipe, one DKD recipe (one seed), one unfinished run."""
    root = tmp_path / "runs"
    common = {"method": "kd", "teacher": "resnet56", "student": "resnet20", "paper_top1": 70.66}
    _make_run(
        root,
        "cifar100/kd_r56_r20/seed0",
        name="cifar100/kd_r56_r20",
        seed=0,
        summary=_summary(70.10, 70.50, 0.05, 3600.0, top5=91.0),
        epochs_logged=240,
        **common,
    )
    _make_run(
        root,
        "cifar100/kd_r56_r20/seed1",
        name="cifar100/kd_r56_r20",
        seed=1,
        summary=_summary(70.90, 71.30, 0.07, 3720.0, top5=92.0),
        epochs_logged=240,
        **common,
    )
    _make_run(
        root,
        "cifar100/dkd_r32x4_r8x4/seed0",
        name="cifar100/dkd_r32x4_r8x4",
        method="dkd",
        teacher="resnet32x4",
        student="resnet8x4",
        seed=0,
        paper_top1=76.32,
        summary=_summary(75.80, 76.00, 0.10, 45.0),
        epochs_logged=240,
    )
    _make_run(
        root,
        "cifar100/dkd_r32x4_r8x4/seed1",
        name="cifar100/dkd_r32x4_r8x4",
        method="dkd",
        teacher="resnet32x4",
        student="resnet8x4",
        seed=1,
        paper_top1=76.32,
        summary=None,
        epochs_logged=17,
    )
    return root


def _table(text: str) -> list[dict[str, str]]:
    """The markdown table's body rows as dicts keyed by the header."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    header = cells[0]
    return [dict(zip(header, row, strict=True)) for row in cells[2:]]


def _warnings(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("warning:")]


# --------------------------------------------------------------------------------------------
# Reading runs and the table (behaviour kept from the first compare)
# --------------------------------------------------------------------------------------------


def test_find_runs_below_parent(runs_root: Path) -> None:
    found = find_runs([runs_root])
    assert [p.relative_to(runs_root).as_posix() for p in found] == [
        "cifar100/dkd_r32x4_r8x4/seed0",
        "cifar100/dkd_r32x4_r8x4/seed1",
        "cifar100/kd_r56_r20/seed0",
        "cifar100/kd_r56_r20/seed1",
    ]
    # a run given both directly and through its parent is used once
    assert len(find_runs([runs_root, runs_root / "cifar100/kd_r56_r20/seed0"])) == 4


def test_summarise_groups_seeds(runs_root: Path) -> None:
    runs = [load_run(p) for p in find_runs([runs_root])]
    rows = summarise(runs)
    # same data; teacher "resnet32x4" sorts before "resnet56"
    assert [r.recipe for r in rows] == ["cifar100/dkd_r32x4_r8x4", "cifar100/kd_r56_r20"]
    # one configuration per name: the label is the name alone
    assert [r.label for r in rows] == [r.recipe for r in rows]
    dkd, kd = rows
    assert kd.n == 2 and dkd.n == 1
    assert kd.n_runs == 2
    assert kd.top1_mean == pytest.approx(70.50)
    assert kd.top1_std == pytest.approx(statistics.stdev([70.10, 70.90]))  # sample std
    assert kd.top1_std == pytest.approx(0.565685, abs=1e-6)
    assert kd.top1_best_mean == pytest.approx(70.90)
    assert kd.top5_mean == pytest.approx(91.5)
    assert kd.gap == pytest.approx(70.50 - 70.66)
    assert kd.ece_mean == pytest.approx(0.06)
    assert kd.train_seconds_mean == pytest.approx(3660.0)
    assert kd.seeds == ["0", "1"]
    assert dkd.top1_std is None
    assert summarise(runs, metric="top1_best")[1].gap == pytest.approx(70.90 - 70.66)


def test_markdown_rows(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(runs_root)]) == 0
    out = capsys.readouterr().out
    rows = _table(out)
    assert len(rows) == 2
    dkd, kd = rows
    assert kd["recipe"] == "cifar100/kd_r56_r20"
    assert kd["method"] == "kd"
    assert kd["teacher → student"] == "resnet56 → resnet20"
    assert kd["data"] == "cifar100"
    assert kd["n seeds"] == "2"
    assert kd["seeds"] == "0, 1"
    assert kd["top-1 (last)"] == "70.50 ± 0.57"
    assert kd["top-1 (best epoch)"] == "70.90 ± 0.57"
    assert kd["top-5"] == "91.50"
    assert kd["paper top-1"] == "70.66"
    assert kd["gap (last − paper)"] == "-0.16"
    assert kd["ECE (%)"] == "6.00"  # ECE in percent
    assert kd["train time"] == "1h01m"
    assert dkd["recipe"] == "cifar100/dkd_r32x4_r8x4"
    assert dkd["n seeds"] == "1" and dkd["seeds"] == "0"
    assert dkd["top-1 (last)"] == "75.80"  # one seed: the mean alone, no ±
    assert "±" not in dkd["top-1 (best epoch)"]
    assert dkd["gap (last − paper)"] == "-0.52"
    assert dkd["train time"] == "45s"
    assert out.count("\n|") == 3  # header separator + two rows: exactly one table


def test_metric_best_renames_gap(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(runs_root), "--metric", "top1_best"]) == 0
    kd = _table(capsys.readouterr().out)[1]
    assert kd["gap (best − paper)"] == "+0.24"


def test_csv(runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_csv = tmp_path / "table.csv"
    assert main([str(runs_root), "--csv", str(out_csv)]) == 0
    capsys.readouterr()
    with open(out_csv, newline="") as fh:
        records = list(csv.DictReader(fh))
    assert [r["recipe"] for r in records] == ["cifar100/dkd_r32x4_r8x4", "cifar100/kd_r56_r20"]
    dkd, kd = records
    assert kd["label"] == "cifar100/kd_r56_r20"
    assert kd["teacher"] == "resnet56" and kd["student"] == "resnet20"
    assert int(kd["n_seeds"]) == 2 and int(kd["n_runs"]) == 2
    assert kd["seeds"] == "0 1"
    assert float(kd["top1_mean"]) == pytest.approx(70.5)
    assert float(kd["top1_std"]) == pytest.approx(statistics.stdev([70.10, 70.90]))
    assert float(kd["top5_mean"]) == pytest.approx(91.5)
    assert float(kd["gap"]) == pytest.approx(-0.16)
    assert float(kd["ece_mean"]) == pytest.approx(0.06)  # unformatted fraction
    assert float(kd["train_seconds_mean"]) == pytest.approx(3660.0)
    assert kd["paper_top5"] == "" and kd["note"] == ""
    assert dkd["top1_std"] == "" and float(dkd["top1_mean"]) == pytest.approx(75.8)


def test_write_csv_direct(runs_root: Path, tmp_path: Path) -> None:
    rows = summarise(load_run(p) for p in find_runs([runs_root]))
    write_csv(rows, tmp_path / "x.csv")
    lines = (tmp_path / "x.csv").read_text().splitlines()
    assert lines[0].split(",") == CSV_COLUMNS
    for column in ("n_seeds", "seeds", "n_runs", "top5_mean", "paper_top1", "paper_top5", "note"):
        assert column in CSV_COLUMNS
    assert CSV_COLUMNS.index("paper_top5") == CSV_COLUMNS.index("paper_top1") + 1
    assert len(lines) == 3


def test_sorting_by_data_then_pair_then_method(tmp_path: Path) -> None:
    s = _summary(50.0, 51.0, 0.1, 10.0)
    _make_run(
        tmp_path, "a", name="z", method="kd", teacher="t1", student="s1", data="cifar100", summary=s
    )
    _make_run(
        tmp_path,
        "b",
        name="y",
        method="dkd",
        teacher="t1",
        student="s1",
        data="cifar100",
        summary=s,
    )
    _make_run(
        tmp_path, "c", name="x", method="kd", teacher="t0", student="s1", data="imagenet", summary=s
    )
    _make_run(
        tmp_path, "d", name="w", method="kd", teacher="t0", student="s1", data="cifar100", summary=s
    )
    rows = summarise(load_run(p) for p in find_runs([tmp_path]))
    assert [r.recipe for r in rows] == ["w", "y", "z", "x"]
    text = format_markdown(rows)
    assert [r["recipe"] for r in _table(text)] == ["w", "y", "z", "x"]
    assert "unfinished" not in text


def test_no_paper_number_gives_dash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _make_run(
        tmp_path,
        "r",
        name="baseline",
        method="vanilla",
        teacher="",
        student="resnet20",
        summary=_summary(69.0, 69.5, 0.08, 100.0),
    )
    assert main([str(tmp_path / "r")]) == 0
    row = _table(capsys.readouterr().out)[0]
    assert row["teacher → student"] == "resnet20"
    assert row["paper top-1"] == "—" and row["gap (last − paper)"] == "—"
    assert row["paper top-5"] == "—"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_missing_path_exits_2(
    runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "does_not_exist"
    assert main([str(runs_root), str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1
    assert err_lines[0].startswith("compare.py: error: ") and str(missing) in err_lines[0]
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("file", ["summary.json", "config.yaml"])
def test_unparsable_file_exits_2(
    tmp_path: Path, file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _make_run(tmp_path, "r", name="x", summary=_summary(50.0))
    (run / file).write_text("{not: valid: [" if file == "config.yaml" else "{not json")
    assert main([str(run)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1
    assert err_lines[0].startswith("compare.py: error: cannot parse") and file in err_lines[0]


def test_compare_error_is_a_user_error(tmp_path: Path) -> None:
    assert issubclass(CompareError, UserError)
    with pytest.raises(UserError):
        find_runs([tmp_path / "nope"])


def test_script_entry_point(runs_root: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "tools" / "compare.py"
    ok = subprocess.run(
        [sys.executable, str(script), str(runs_root)], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "70.50 ± 0.57" in ok.stdout
    bad = subprocess.run(
        [sys.executable, str(script), str(runs_root / "nope")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "nope" in bad.stderr


def test_nothing_imports_tools_compare() -> None:
    """tools/ stops being a package: compare's callers import it from common.report."""
    repo = Path(__file__).resolve().parents[1]
    for file in (repo / "tools" / "demo.py", repo / "tools" / "compare.py", Path(__file__)):
        modules = []
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules.append(node.module)
            elif isinstance(node, ast.Import):
                modules.extend(alias.name for alias in node.names)
        assert not [m for m in modules if m == "tools" or m.startswith("tools.")], file
        if file.name != "test_compare.py":
            assert "common.report.compare" in modules, file


# --------------------------------------------------------------------------------------------
# Grouping by configuration
# --------------------------------------------------------------------------------------------

NAME = "kd/cifar100/a_b"


def test_same_name_other_override_is_its_own_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = {"method": {"temperature": 4.0}}
    _make_run(tmp_path, "s0", name=NAME, seed=0, extra=base, summary=_summary(70.0))
    _make_run(tmp_path, "s1", name=NAME, seed=1, extra=base, summary=_summary(72.0))
    _make_run(
        tmp_path,
        "t2",
        name=NAME,
        seed=0,
        extra={"method": {"temperature": 2}},
        summary=_summary(60.0),
    )
    rows = summarise(load_run(p) for p in find_runs([tmp_path]))
    assert sorted(r.label for r in rows) == [
        f"{NAME} [method.temperature=2]",
        f"{NAME} [method.temperature=4]",
    ]
    by_label = {r.label: r for r in rows}
    pooled = by_label[f"{NAME} [method.temperature=4]"]
    assert pooled.n == 2 and pooled.top1_mean == pytest.approx(71.0)
    other = by_label[f"{NAME} [method.temperature=2]"]
    assert other.n == 1 and other.top1_mean == pytest.approx(60.0)
    assert main([str(tmp_path)]) == 0
    table = _table(capsys.readouterr().out)
    assert sorted(r["recipe"] for r in table) == sorted(by_label)


def test_short_run_and_other_lr_are_not_pooled(tmp_path: Path) -> None:
    _make_run(tmp_path, "s0", name=NAME, seed=0, summary=_summary(70.0))
    _make_run(tmp_path, "s1", name=NAME, seed=1, summary=_summary(72.0))
    _make_run(tmp_path, "short", name=NAME, seed=2, epochs=2, summary=_summary(20.0))
    _make_run(
        tmp_path, "lr", name=NAME, seed=3, extra={"optim": {"lr": 0.1}}, summary=_summary(65.0)
    )
    rows = summarise(load_run(p) for p in find_runs([tmp_path]))
    labels = sorted(r.label for r in rows)
    # both keys differ somewhere among the name's groups, so every label names both
    assert labels == sorted(
        [
            f"{NAME} [optim.lr=unset, train.epochs=240]",
            f"{NAME} [optim.lr=unset, train.epochs=2]",
            f"{NAME} [optim.lr=0.1, train.epochs=240]",
        ]
    )
    assert sorted(r.n for r in rows) == [1, 1, 2]


def test_keys_that_do_not_change_the_experiment_are_pooled(tmp_path: Path) -> None:
    _make_run(tmp_path, "s0", name=NAME, seed=0, summary=_summary(70.0))
    _make_run(
        tmp_path,
        "s1",
        name=NAME,
        seed=1,
        extra={
            "git_commit": "def456",
            "created": "2025-02-02 10:00:00",
            "device": "cuda:1",
            "out_root": "/scratch/runs",
            "data": {
                "root": "/data",
                "cache_dir": "/tmp/cache",
                "num_workers": 16,
                "download": True,
            },
            "train": {"progress": "none"},
            "log": {"wandb": True},
            "paper": {"note": "a note added later"},
        },
        summary=_summary(72.0),
    )
    rows = summarise(load_run(p) for p in find_runs([tmp_path]))
    assert len(rows) == 1
    assert rows[0].label == NAME and rows[0].n == 2 and rows[0].seeds == ["0", "1"]


def test_experiment_config_drops_ignored_keys() -> None:
    config = {
        "name": "x",
        "device": "cpu",
        "train": {"seed": 3, "epochs": 5, "progress": "bar"},
        "data": {"name": "cifar100", "root": "/d"},
        "log": {"every": 10},
    }
    assert experiment_config(config) == {"name": "x", "train.epochs": 5, "data.name": "cifar100"}


def test_int_and_float_values_are_one_configuration(tmp_path: Path) -> None:
    _make_run(tmp_path, "a", name=NAME, seed=0, extra={"method": {"t": 4}}, summary=_summary(1.0))
    _make_run(tmp_path, "b", name=NAME, seed=1, extra={"method": {"t": 4.0}}, summary=_summary(3.0))
    rows = summarise(load_run(p) for p in find_runs([tmp_path]))
    assert len(rows) == 1 and rows[0].n == 2


# --------------------------------------------------------------------------------------------
# Warnings
# --------------------------------------------------------------------------------------------


def test_repeated_seed_warns_and_counts_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _make_run(tmp_path, "a/seed0", name=NAME, seed=0, summary=_summary(70.0))
    b = _make_run(tmp_path, "b/seed0", name=NAME, seed=0, summary=_summary(72.0))
    _make_run(tmp_path, "a/seed1", name=NAME, seed=1, summary=_summary(80.0))
    rows = summarise(load_run(p) for p in find_runs([tmp_path]))
    (row,) = rows
    assert row.n == 2 and row.n_runs == 3
    assert row.top1_mean == pytest.approx(statistics.fmean([71.0, 80.0]))  # seed 0 averaged
    assert main([str(tmp_path)]) == 0
    captured = capsys.readouterr()
    warnings = _warnings(captured.err)
    assert len(warnings) == 1
    assert "seed 0" in warnings[0] and str(a) in warnings[0] and str(b) in warnings[0]
    cells = _table(captured.out)[0]
    assert cells["n seeds"] == "2" and cells["seeds"] == "0 (×2), 1"


def test_distinct_seeds_do_not_warn(runs_root: Path) -> None:
    runs = [load_run(p) for p in find_runs([runs_root])]
    assert run_warnings(summarise(runs)) == []


def test_unfinished_warning(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(runs_root)]) == 0
    captured = capsys.readouterr()
    unfinished_dir = runs_root / "cifar100/dkd_r32x4_r8x4/seed1"
    warnings = _warnings(captured.err)
    assert len(warnings) == 1
    assert "unfinished" in warnings[0]
    assert warnings[0].endswith(f"{unfinished_dir} (epoch 17 of 240)")
    assert "warning" not in captured.out
    # the unfinished seed does not count in its recipe's row
    assert _table(captured.out)[0]["n seeds"] == "1"


def test_only_unfinished_runs_still_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "started"
    empty.mkdir()
    assert main([str(empty)]) == 0
    captured = capsys.readouterr()
    assert _warnings(captured.err) == [
        f"warning: unfinished run (no summary.json), left out of the table: {empty} "
        "(no metrics.jsonl yet)"
    ]


# --------------------------------------------------------------------------------------------
# paper.top5 and notes
# --------------------------------------------------------------------------------------------


def test_paper_top5_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paper = {"paper": {"top1": 71.0, "top5": 90.25}}
    _make_run(tmp_path, "a", name="r", seed=0, extra=paper, summary=_summary(70.0, top5=89.0))
    _make_run(tmp_path, "b", name="r", seed=1, extra=paper, summary=_summary(70.0, top5=90.0))
    assert main([str(tmp_path), "--csv", str(tmp_path / "t.csv")]) == 0
    row = _table(capsys.readouterr().out)[0]
    assert row["paper top-1"] == "71.00" and row["paper top-5"] == "90.25"
    assert row["top-5"] == "89.50"
    header = [ln for ln in format_markdown([]).splitlines()][0]
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols.index("paper top-5") == cols.index("paper top-1") + 1
    with open(tmp_path / "t.csv", newline="") as fh:
        (record,) = list(csv.DictReader(fh))
    assert float(record["paper_top5"]) == pytest.approx(90.25)
    assert float(record["top5_mean"]) == pytest.approx(89.5)


def test_note_lines_under_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = {"paper": {"note": "2 epochs only: expect it low"}}
    _make_run(tmp_path, "short", name=NAME, epochs=2, extra=note, summary=_summary(20.0))
    _make_run(tmp_path, "full", name=NAME, epochs=240, summary=_summary(70.0))
    _make_run(tmp_path, "other", name="other", extra={"paper": {"note": "  "}}, summary=_summary(1))
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    notes = [ln for ln in lines if ln.startswith("note:")]
    assert notes == [f"note: {NAME} [train.epochs=2]: 2 epochs only: expect it low"]
    last_table_line = max(i for i, ln in enumerate(lines) if ln.startswith("|"))
    assert lines.index(notes[0]) > last_table_line


# --------------------------------------------------------------------------------------------
# --plot
# --------------------------------------------------------------------------------------------


def test_top1_by_epoch_mean_min_max(tmp_path: Path) -> None:
    _make_run(
        tmp_path,
        "s0",
        name=NAME,
        seed=0,
        summary=_summary(30.0),
        metrics=[{"epoch": 1, "top1": 10.0}, {"epoch": 2, "lr": 0.1}, {"epoch": 3, "top1": 30.0}],
    )
    _make_run(
        tmp_path,
        "s1",
        name=NAME,
        seed=1,
        summary=_summary(50.0),
        metrics=[
            {"epoch": 1, "top1": 20.0},
            {"epoch": 2, "top1": 40.0},
            {"epoch": 3, "top1": 50.0},
        ],
    )
    (row,) = summarise(load_run(p) for p in find_runs([tmp_path]))
    assert top1_by_epoch(row) == [
        (1, pytest.approx(15.0), 10.0, 20.0),
        (2, pytest.approx(40.0), 40.0, 40.0),  # seed 0 has no top-1 at epoch 2
        (3, pytest.approx(40.0), 30.0, 50.0),
    ]


def test_plot_writes_png(
    runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plots" / "top1.png"
    out.parent.mkdir()
    assert main([str(runs_root), "--plot", str(out)]) == 0
    capsys.readouterr()
    assert out.is_file()
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert out.stat().st_size > 1000


def test_plot_without_matplotlib_exits_2(
    runs_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    out = tmp_path / "top1.png"
    assert main([str(runs_root), "--plot", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1
    assert err_lines[0].startswith("compare.py: error: ") and ".[plot]" in err_lines[0]
    assert not out.exists()
