"""Tests for tools/compare.py on fake run directories."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.compare import find_runs, format_markdown, load_run, main, summarise, write_csv


def _make_run(
    root: Path,
    rel: str,
    *,
    name: str,
    method: str,
    teacher: str,
    student: str,
    data: str = "cifar100",
    seed: int = 0,
    epochs: int = 240,
    paper_top1: float | None = None,
    summary: dict[str, Any] | None = None,
    epochs_logged: int = 0,
) -> Path:
    """Write config.yaml, metrics.jsonl and (when given) summary.json under root/rel."""
    run = root / rel
    run.mkdir(parents=True)
    config = {
        "name": name,
        "data": {"name": data},
        "train": {"seed": seed, "epochs": epochs},
        "teacher": {"name": teacher},
        "student": {"name": student},
        "method": {"name": method},
        "paper": {"top1": paper_top1, "table": "Table 1"},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    with open(run / "metrics.jsonl", "w") as fh:
        for epoch in range(1, epochs_logged + 1):
            fh.write(json.dumps({"epoch": epoch, "top1": 10.0 * epoch}) + "\n")
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def _summary(top1: float, best: float, ece: float, seconds: float) -> dict[str, Any]:
    return {
        "top1": top1,
        "top1_best": best,
        "top5": 90.0,
        "ece": ece,
        "nll": 1.2,
        "entropy": 0.8,
        "train_seconds": seconds,
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
        summary=_summary(70.10, 70.50, 0.05, 3600.0),
        epochs_logged=240,
        **common,
    )
    _make_run(
        root,
        "cifar100/kd_r56_r20/seed1",
        name="cifar100/kd_r56_r20",
        seed=1,
        summary=_summary(70.90, 71.30, 0.07, 3720.0),
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


def _table_rows(text: str) -> list[list[str]]:
    """Cells of the markdown table's body rows."""
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


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
    dkd, kd = rows
    assert kd.n == 2 and dkd.n == 1
    assert kd.top1_mean == pytest.approx(70.50)
    assert kd.top1_std == pytest.approx(statistics.stdev([70.10, 70.90]))  # sample std
    assert kd.top1_std == pytest.approx(0.565685, abs=1e-6)
    assert kd.top1_best_mean == pytest.approx(70.90)
    assert kd.gap == pytest.approx(70.50 - 70.66)
    assert kd.ece_mean == pytest.approx(0.06)
    assert kd.train_seconds_mean == pytest.approx(3660.0)
    assert sorted(kd.seeds) == [0, 1]
    assert dkd.top1_std is None
    assert summarise(runs, metric="top1_best")[1].gap == pytest.approx(70.90 - 70.66)


def test_markdown_rows(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(runs_root)]) == 0
    out = capsys.readouterr().out
    rows = _table_rows(out)
    assert len(rows) == 2
    dkd, kd = rows
    assert kd[:5] == ["cifar100/kd_r56_r20", "kd", "resnet56 → resnet20", "cifar100", "2"]
    assert kd[5] == "70.50 ± 0.57"
    assert kd[6] == "70.90 ± 0.57"
    assert kd[7] == "70.66"
    assert kd[8] == "-0.16"
    assert kd[9] == "6.00"  # ECE in percent
    assert kd[10] == "1h01m"
    assert dkd[0] == "cifar100/dkd_r32x4_r8x4"
    assert dkd[4] == "1"
    assert dkd[5] == "75.80"  # one seed: the mean alone, no ±
    assert "±" not in dkd[6]
    assert dkd[8] == "-0.52"
    assert dkd[10] == "45s"
    assert out.count("\n|") == 3  # header separator + two rows: exactly one table


def test_unfinished_note(runs_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(runs_root)]) == 0
    out = capsys.readouterr().out
    notes = [ln for ln in out.splitlines() if ln.startswith("unfinished:")]
    unfinished_dir = runs_root / "cifar100/dkd_r32x4_r8x4/seed1"
    assert notes == [f"unfinished: {unfinished_dir} (epoch 17 of 240)"]
    # the unfinished seed does not count in its recipe's row
    assert _table_rows(out)[0][4] == "1"


def test_csv(runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_csv = tmp_path / "table.csv"
    assert main([str(runs_root), "--csv", str(out_csv)]) == 0
    capsys.readouterr()
    with open(out_csv, newline="") as fh:
        records = list(csv.DictReader(fh))
    assert [r["recipe"] for r in records] == ["cifar100/dkd_r32x4_r8x4", "cifar100/kd_r56_r20"]
    dkd, kd = records
    assert kd["teacher"] == "resnet56" and kd["student"] == "resnet20"
    assert int(kd["n_seeds"]) == 2
    assert float(kd["top1_mean"]) == pytest.approx(70.5)
    assert float(kd["top1_std"]) == pytest.approx(statistics.stdev([70.10, 70.90]))
    assert float(kd["gap"]) == pytest.approx(-0.16)
    assert float(kd["ece_mean"]) == pytest.approx(0.06)  # unformatted fraction
    assert float(kd["train_seconds_mean"]) == pytest.approx(3660.0)
    assert dkd["top1_std"] == "" and float(dkd["top1_mean"]) == pytest.approx(75.8)


def test_write_csv_direct(runs_root: Path, tmp_path: Path) -> None:
    rows = summarise(load_run(p) for p in find_runs([runs_root]))
    write_csv(rows, tmp_path / "x.csv")
    header = (tmp_path / "x.csv").read_text().splitlines()[0]
    assert header.startswith("recipe,method,teacher,student,data,n_seeds,top1_mean")


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
    assert [r[0] for r in _table_rows(text)] == ["w", "y", "z", "x"]
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
    row = _table_rows(capsys.readouterr().out)[0]
    assert row[2] == "resnet20"
    assert row[7] == "—" and row[8] == "—"


def test_missing_path_exits_2(
    runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "does_not_exist"
    assert main([str(runs_root), str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1
    assert "error" in err_lines[0] and str(missing) in err_lines[0]
    assert "Traceback" not in captured.err


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
