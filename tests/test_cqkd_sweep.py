"""tools/cqkd_sweep.py on `synthetic`: the Fig. 2 PNG and table, with and without matplotlib,
the best-epoch top-1 and the DML best-member rule (with that member's own ECE/entropy), the
released batch sizes of the ImageNet template, skipping finished runs."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from cqkd.fig2 import NOTE, SweepRow, best_member, collect, markdown_table, read_row
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
    assert table.count("\n| ") == 2 * 4 and "| top-1 (best) | epoch | top-1 (last) |" in table
    assert NOTE in table  # says that top-1 is the best epoch's
    for label in ("Baseline (supervised)", "DML (best of cohort)", "CQKD T=10", "CQKD T=20"):
        assert table.count(label) == 2
    cfg = (sweep / "cqkd20" / "r8" / "config.yaml").read_text()
    assert "temperature: 20.0" in cfg and "resolution: 8" in cfg
    assert "name: lowres" in (sweep / "baseline" / "r16" / "config.yaml").read_text()


def test_table_numbers_come_from_the_runs(sweep: Path) -> None:
    rows = {(r.method, r.resolution): r for r in collect(sweep)}
    run = sweep / "cqkd10" / "r8"
    summary = json.loads((run / "summary.json").read_text())
    records = [json.loads(x) for x in (run / "metrics.jsonl").open()]
    at_best = next(r for r in records if r["epoch"] == summary["best_epoch"])
    row = rows[("cqkd10", 8)]
    assert (row.top1, row.top1_last, row.best_epoch) == (
        summary["top1_best"],
        summary["top1"],
        summary["best_epoch"],
    )
    assert (row.ece, row.entropy) == (at_best["ece"], at_best["entropy"])
    seconds = [r["seconds"] for r in records]
    assert row.epoch_seconds_mean == pytest.approx(sum(seconds) / len(seconds))
    dml = json.loads((sweep / "dml" / "r16" / "summary.json").read_text())
    members = [
        dml["top1_best"],
        *(dml.get(f"top1_best_peer{i}", dml[f"top1_peer{i}"]) for i in (1, 2)),
    ]
    assert rows[("dml", 16)].top1 == max(members)


def write_run(run_dir: Path, summary: dict, records: list[dict]) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    lines = [json.dumps({"seconds": 2.0, **r}) for r in records]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir


def test_a_run_reports_its_best_epoch_with_that_evaluations_metrics(tmp_path: Path) -> None:
    """Top-1 = top1_best (Fig. 2 in the released code); ECE/entropy from the same epoch."""
    records = [
        {"epoch": 1, "top1": 40.0, "top5": 80.0, "ece": 0.10, "entropy": 2.0, "nll": 2.5},
        {"epoch": 2, "top1": 45.0, "top5": 85.0, "ece": 0.05, "entropy": 1.5, "nll": 2.0},
        {"epoch": 3, "top1": 44.0, "top5": 84.0, "ece": 0.07, "entropy": 1.4, "nll": 2.1},
    ]
    summary = {"epochs": 3, "top1_best": 45.0, "best_epoch": 2, **records[2]}
    row = read_row("cqkd10", 16, write_run(tmp_path / "run", summary, records))
    assert (row.top1, row.best_epoch, row.top1_last) == (45.0, 2, 44.0)
    assert (row.top5, row.ece, row.entropy, row.nll) == (85.0, 0.05, 1.5, 2.0)
    assert row.best_member == "student"


def test_dml_reports_the_best_member_with_its_own_ece_and_entropy(tmp_path: Path) -> None:
    """Per-member keys (`top1_best_peerK`, `ece_peerK`, `entropy_peerK`) when the engine writes
    them: the best member's numbers, never member 1's."""
    student = {"top1": 50.0, "top5": 90.0, "ece": 0.01, "entropy": 1.0, "nll": 1.5}
    peer = {"top1_peer1": 51.0, "ece_peer1": 0.02, "entropy_peer1": 1.1}
    peer |= {"top1_peer2": 49.0, "ece_peer2": 0.03, "entropy_peer2": 1.2}
    records = [
        {"epoch": 1, **student, **peer, "top1_peer2": 53.0, "ece_peer2": 0.09, "entropy_peer2": 2},
        {"epoch": 2, **student, **peer},
    ]
    summary = {"epochs": 2, "top1_best": 50.0, "best_epoch": 1, **student, **peer}
    summary |= {"top1_best_peer1": 51.0, "top1_best_peer2": 53.0}
    row = read_row("dml", 16, write_run(tmp_path / "run", summary, records))
    assert (row.best_member, row.top1, row.best_epoch, row.top1_last) == ("peer2", 53.0, 1, 49.0)
    assert (row.ece, row.entropy) == (0.09, 2.0)  # peer 2 at its best epoch
    assert math.isnan(row.top5) and math.isnan(row.nll)  # not evaluated for a peer
    assert "| 16 | DML (best of cohort) [peer2] | 53.00 | 1 | 49.00 | n/a | 0.0900 |" in (
        markdown_table([row])
    )


def test_dml_runs_without_per_member_metrics_say_so(tmp_path: Path) -> None:
    """Runs written before the engine recorded a peer's ECE/entropy: the best member's top-1
    comes from metrics.jsonl, and its ECE/entropy are n/a rather than member 1's."""
    records = [
        {"epoch": 1, "top1": 50.0, "ece": 0.01, "entropy": 1.0, "top1_peer1": 54.0},
        {"epoch": 2, "top1": 52.0, "ece": 0.02, "entropy": 1.1, "top1_peer1": 53.0},
    ]
    summary = {"epochs": 2, "top1_best": 52.0, "best_epoch": 2, "top5": 90.0, "nll": 1.0}
    summary |= {**records[1]}
    row = read_row("dml", 8, write_run(tmp_path / "run", summary, records))
    assert (row.best_member, row.top1, row.best_epoch, row.top1_last) == ("peer1", 54.0, 1, 53.0)
    assert math.isnan(row.ece) and math.isnan(row.entropy)
    line = markdown_table([row]).splitlines()[2]
    assert (
        line
        == "| 8 | DML (best of cohort) [peer1] | 54.00 | 1 | 53.00 | n/a | n/a | n/a | n/a | 2.0 |"
    )


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
    best = {"top1": 50.0, "top1_best": 55.0, "top1_peer1": 52.0, "top1_best_peer1": 54.0}
    assert best_member(best) == ("student", 55.0)  # by best top-1, not the final one
    row = SweepRow("dml", 56, 52.0, 80.0, 0.05, 1.2, 1.9, 30.0, "peer1", 51.0, 7)
    assert "| 56 | DML (best of cohort) [peer1] | 52.00 | 7 | 51.00 | 80.00 | 0.0500 |" in (
        markdown_table([row])
    )


def test_imagenet_sweep_runs_use_the_released_batch_precision_and_seed(monkeypatch) -> None:
    """distillistic main.py: batch 1024 below 120 px, 512 from 120 px; fp16 AMP; seed 42. The
    sweep sets the batch per resolution, and a command-line `train.batch_size` still wins."""
    import tools.cqkd_sweep as sweep_tool
    from common.config import load_recipe

    calls: list[tuple[Path, list[str]]] = []
    monkeypatch.setattr(sweep_tool, "run_once", lambda r, d, o: calls.append((d, o)) or 0)
    monkeypatch.setattr(sweep_tool, "report", lambda out: 0)
    recipe = sweep_tool.PRESETS["imagenet"][0]
    assert sweep_main(["--preset", "imagenet", "--teacher", "t.pth", "--out", "x"]) == 0
    assert len(calls) == 6 * 4
    for run_dir, overrides in calls:
        cfg = load_recipe(recipe, overrides)
        resolution = int(run_dir.name[1:])
        assert cfg.train.batch_size == (1024 if resolution < 120 else 512), run_dir
        assert (cfg.train.amp, cfg.train.seed, cfg.student.resolution) == ("fp16", 42, resolution)
        assert cfg.method.options.antialias is False
    calls.clear()
    argv = ["--preset", "imagenet", "--teacher", "t.pth", "--out", "x", "train.batch_size=256"]
    assert sweep_main(argv) == 0
    assert {load_recipe(recipe, o).train.batch_size for _, o in calls} == {256}
    # The other templates keep their own batch size.
    assert sweep_tool.batch_overrides(sweep_tool.PRESETS["cifar10"][0], 8) == []
