"""Where records go is up to the writers: the loop hands each epoch's record and the summary
to every writer of `log.writers`; a new writer needs no change to the loop."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tiny_runs import tiny_recipe

from common.cli import main
from common.engine.writers import EpochRecord, RunWriter, register_writer


@register_writer("test_collect")
class CollectingWriter(RunWriter):
    """Test-only: keeps what it receives."""

    epochs_seen: list[EpochRecord] = []
    summaries: list[dict] = []

    def write_epoch(self, record: EpochRecord) -> None:
        type(self).epochs_seen.append(record)

    def write_summary(self, summary: dict) -> None:
        type(self).summaries.append(summary)


def test_a_registered_writer_receives_every_record(tmp_path: Path) -> None:
    CollectingWriter.epochs_seen, CollectingWriter.summaries = [], []
    recipe = tiny_recipe(tmp_path, "log: {writers: [test_collect]}\ntrain: {epochs: 2}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out)]) == 0
    assert [r.epoch for r in CollectingWriter.epochs_seen] == [1, 2]
    assert set(CollectingWriter.epochs_seen[0].losses) == {"ce"}
    assert CollectingWriter.summaries[0]["epochs"] == 2
    assert not (out / "metrics.jsonl").exists() and not (out / "metrics.csv").exists()


def test_csv_jsonl_and_console_agree(tmp_path: Path, caplog) -> None:
    """eval_every=2: the first row has no top1; the column still gets its header."""
    recipe = tiny_recipe(tmp_path, "train: {epochs: 2, eval_every: 2}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out)]) == 0
    jsonl = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    with open(out / "metrics.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 2 and "top1" not in jsonl[0] and table[0]["top1"] == ""
    assert float(table[1]["top1"]) == jsonl[1]["top1"]
    assert float(table[0]["ce"]) == jsonl[0]["ce"]
    assert "epoch 2/2" in caplog.text and "done: top1" in caplog.text


def test_tensorboard_writes_event_files(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, "log: {writers: [jsonl, tensorboard]}\ntrain: {epochs: 1}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out)]) == 0
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert {"losses/ce", "val/top1", "train/lr"} <= set(acc.Tags()["scalars"])


def test_an_unknown_writer_is_refused_before_anything_is_written(tmp_path: Path, capsys) -> None:
    recipe = tiny_recipe(tmp_path, "log: {writers: [jsonl, tensorbord]}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown writer 'tensorbord'" in err[0] and "tensorboard" in err[0]
    assert not out.exists()
