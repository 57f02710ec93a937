"""tools/cqkd_sweep.py on `synthetic`: the Fig. 2 PNG and table, with and without matplotlib,
the DML best-member rule, skipping finished runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from cqkd.fig2 import best_member, collect, markdown_table
from tools.cqkd_sweep import main as sweep_main
from tools.cqkd_sweep import report

SWEEP_YAML = """\
optim: {name: adamw, lr: 1.0e-3, weight_decay: 0.01, schedule: onecycle, pct_start: 0.1}
train: {epochs: 1, batch_size: 32}
method: {name: cqkd}
teacher: {name: resnet8}
student: {name: resnet8, resolution: 8}
"""
ARGS = ["--resolutions", "16,8", "--teacher-epochs", "1", "data.subset=64", "data.val_subset=32"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    from tests.tiny_runs import tiny_recipe

    tmp = tmp_path_factory.mktemp("sweep")
    recipe = tiny_recipe(tmp, SWEEP_YAML)
    out = tmp / "out"
    assert sweep_main(["--recipe", str(recipe), "--out", str(out), *ARGS]) == 0
    return out


def test_sweep_writes_the_figure_and_the_table(sweep: Path) -> None:
    png = sweep / "fig2.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 200_000
    table = (sweep / "fig2.md").read_text()
    assert table.count("\n") == 2 + 2 * 4  # header, rule, 2 resolutions x 4 methods
    for label in ("Baseline (supervised)", "DML (best of cohort)", "CQKD T=10", "CQKD T=20"):
        assert table.count(label) == 2
    cfg = (sweep / "cqkd20" / "r8" / "config.yaml").read_text()
    assert "temperature: 20.0" in cfg and "resolution: 8" in cfg
    assert "name: lowres" in (sweep / "baseline" / "r16" / "config.yaml").read_text()


def test_table_numbers_come_from_the_runs(sweep: Path) -> None:
    rows = {(r.method, r.resolution): r for r in collect(sweep)}
    summary = json.loads((sweep / "cqkd10" / "r8" / "summary.json").read_text())
    row = rows[("cqkd10", 8)]
    assert (row.top1, row.ece, row.entropy) == (
        summary["top1"],
        summary["ece"],
        summary["entropy"],
    )
    seconds = [json.loads(x)["seconds"] for x in (sweep / "cqkd10" / "r8" / "metrics.jsonl").open()]
    assert row.epoch_seconds_mean == pytest.approx(sum(seconds) / len(seconds))
    dml = json.loads((sweep / "dml" / "r16" / "summary.json").read_text())
    assert rows[("dml", 16)].top1 == max(dml["top1"], dml["top1_peer1"], dml["top1_peer2"])


def test_without_matplotlib_the_table_still_prints(sweep: Path, monkeypatch, capsys) -> None:
    (sweep / "fig2.png").unlink()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    assert report(sweep) == 0
    out = capsys.readouterr().out
    assert "| 8 | CQKD T=20 |" in out and "matplotlib is not installed" in out
    assert not (sweep / "fig2.png").exists() and (sweep / "fig2.md").is_file()


def test_a_second_call_keeps_the_finished_runs(sweep: Path, capsys) -> None:
    recipe = sweep.parent / "tiny.yaml"
    before = (sweep / "dml" / "r8" / "summary.json").stat().st_mtime_ns
    assert sweep_main(["--recipe", str(recipe), "--out", str(sweep), *ARGS]) == 0
    assert (sweep / "dml" / "r8" / "summary.json").stat().st_mtime_ns == before
    assert capsys.readouterr().out.count("done already, kept") == 9  # teacher + 8 runs


def test_best_member_and_table_row_label() -> None:
    assert best_member({"top1": 50.0, "top1_peer1": 52.0, "top1_peer2": 51.0}) == ("peer1", 52.0)
    assert best_member({"top1": 50.0}) == ("student", 50.0)
    from cqkd.fig2 import SweepRow

    row = SweepRow("dml", 56, 52.0, 80.0, 0.05, 1.2, 1.9, 30.0, "peer1")
    assert "| 56 | DML (best of cohort) [peer1] | 52.00 | 80.00 | 0.0500 |" in markdown_table([row])
