"""Where a run's records go: the training loop emits one record an epoch and a summary at the
end; writers decide what to do with them (detectron2's event writers, in small).

Built in (`log.writers` in a recipe, default `[jsonl, console, csv]`):

- `jsonl`: `metrics.jsonl` (one JSON object an epoch) and `summary.json`, the files
  `tools/compare.py` reads;
- `console`: one line an epoch and the summary through `logging` (logger `kdzoo`);
- `csv`: `metrics.csv`, the same epochs as columns for a spreadsheet;
- `tensorboard`: scalars under `tensorboard/` (the optional extra: `pip install -e '.[tb]'`);
- `wandb`, `mlflow`: the run in Weights & Biases or MLflow (`common/engine/wandb_writer.py`,
  `mlflow_writer.py`; the optional extras `pip install -e '.[wandb]'`, `'.[mlflow]'`), declared
  as `kdzoo.writers` entry points like a package outside this one would.

A writer is a `RunWriter` subclass registered with `@register_writer("name")`; a package
outside this one may also declare it as an entry point of the group `kdzoo.writers`. Adding a
writer touches no line of the loop. Only rank 0 writes.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.engine.progress import format_epoch_line
from common.errors import ConfigError
from common.registry import Registry

LOGGER_NAME = "kdzoo"
Record = dict[str, Any]


@dataclass
class EpochRecord:
    """What the loop reports after an epoch."""

    epoch: int  # counted from 1
    lr: float  # the rate the epoch trained with
    losses: dict[str, float]  # each named loss, the epoch's mean
    metrics: dict[str, float]  # validation metrics (empty on an epoch without evaluation)
    seconds: float
    images_per_second: float
    extra: dict[str, Any] = field(default_factory=dict)  # the method's own epoch values

    def flat(self) -> Record:
        """One flat mapping: the `metrics.jsonl` line."""
        return {
            "epoch": self.epoch,
            "lr": self.lr,
            **self.metrics,
            "loss": sum(self.losses.values()),
            **self.losses,
            "seconds": self.seconds,
            "images_per_second": self.images_per_second,
            **self.extra,
        }


def console_logger(is_main: bool = True) -> logging.Logger:
    """The `kdzoo` logger (methods log under `kdzoo.<method>`), printing plain lines to stdout
    unless the application configured logging itself (a handler on it or on the root logger);
    processes other than rank 0 only print warnings."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    return logger


class RunWriter:
    """Receives a run's records. `run_dir` is the run folder; `epochs` the planned length."""

    def __init__(self, run_dir: Path, epochs: int) -> None:
        self.run_dir = Path(run_dir)
        self.epochs = epochs

    @classmethod
    def check_available(cls) -> None:
        """Raise ConfigError (one line) when what the writer needs is not installed; called
        when `log.writers` is checked, before anything is written."""

    def write_epoch(self, record: EpochRecord) -> None:
        """One epoch's record."""

    def write_summary(self, summary: Record) -> None:
        """The run's summary, once at the end."""

    def close(self) -> None:
        """Flush and release what the writer holds."""


WRITERS: Registry[type[RunWriter]] = Registry("writer", "kdzoo.writers")
ENTRY_POINT_GROUP = WRITERS.group


def register_writer(name: str) -> Callable[[type[RunWriter]], type[RunWriter]]:
    """Class decorator: make a RunWriter available as `log.writers: [..., <name>]`."""
    return WRITERS.register(name)


def writer_names() -> list[str]:
    """Every writer name: built in, registered, and installed entry points."""
    return sorted(WRITERS.names())


def writer_class(name: str) -> type[RunWriter]:
    """The writer registered as `name` (ConfigError naming the valid ones otherwise, or
    naming the extra to install when its package is missing)."""
    try:
        cls = WRITERS.get(name)
    except KeyError:
        raise ConfigError(
            f"log.writers: unknown writer '{name}' (known: {', '.join(writer_names())})"
        ) from None
    cls.check_available()
    return cls


class Writers:
    """The run's writers as one: rank 0 passes every record to each; other ranks do nothing."""

    def __init__(self, writers: Sequence[RunWriter]) -> None:
        self.writers = list(writers)

    @classmethod
    def build(cls, names: Sequence[str], run_dir: Path, epochs: int, is_main: bool) -> Writers:
        """Instantiate `names` for `run_dir` (none off rank 0); unknown names are refused."""
        classes = [writer_class(name) for name in names]
        return cls([c(run_dir, epochs) for c in classes] if is_main else [])

    def write_epoch(self, record: EpochRecord) -> None:
        for writer in self.writers:
            writer.write_epoch(record)

    def write_summary(self, summary: Record) -> None:
        for writer in self.writers:
            writer.write_summary(summary)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


@register_writer("jsonl")
class JsonLinesWriter(RunWriter):
    """`metrics.jsonl` (appended, one line an epoch) and `summary.json`."""

    def write_epoch(self, record: EpochRecord) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record.flat()) + "\n")

    def write_summary(self, summary: Record) -> None:
        tmp = self.run_dir / ".summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        os.replace(tmp, self.run_dir / "summary.json")


@register_writer("console")
class ConsoleWriter(RunWriter):
    """One line an epoch (`epoch 3/240  lr 0.05  loss ...  top1 ...`) and a closing line."""

    def __init__(self, run_dir: Path, epochs: int) -> None:
        super().__init__(run_dir, epochs)
        self.logger = console_logger(is_main=True)

    def write_epoch(self, record: EpochRecord) -> None:
        self.logger.info(
            format_epoch_line(
                record.epoch,
                self.epochs,
                record.lr,
                record.losses,
                record.metrics,
                record.seconds,
                record.images_per_second,
            )
        )

    def write_summary(self, summary: Record) -> None:
        self.logger.info(
            f"done: top1 {summary['top1']:.2f} (best {summary['top1_best']:.2f} at epoch "
            f"{summary['best_epoch']})  ece {summary['ece']:.4f}  -> {self.run_dir}"
        )


@register_writer("csv")
class CsvWriter(RunWriter):
    """`metrics.csv`: one row an epoch, one column a key (rewritten whole each epoch, so
    that a column first seen late, e.g. the first evaluated epoch, still gets a header)."""

    def __init__(self, run_dir: Path, epochs: int) -> None:
        super().__init__(run_dir, epochs)
        self.path = self.run_dir / "metrics.csv"
        self.rows: list[Record] = []
        if self.path.is_file():  # a resumed run continues its table
            with open(self.path, newline="") as fh:
                self.rows = list(csv.DictReader(fh))

    def write_epoch(self, record: EpochRecord) -> None:
        row = {
            k: v if isinstance(v, (int, float, str)) else json.dumps(v)
            for k, v in record.flat().items()
        }
        self.rows.append(row)
        columns: list[str] = []
        for row in self.rows:
            columns.extend(k for k in row if k not in columns)
        tmp = self.path.with_name(".metrics.csv.tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)


@register_writer("tensorboard")
class TensorBoardWriter(RunWriter):
    """Every number of each epoch as a scalar under `<run>/tensorboard`, step = epoch."""

    def __init__(self, run_dir: Path, epochs: int) -> None:
        super().__init__(run_dir, epochs)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "log.writers has 'tensorboard' but TensorBoard is not installed: "
                "pip install -e '.[tb]' (or drop it from log.writers)"
            ) from None
        self.writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def write_epoch(self, record: EpochRecord) -> None:
        groups = {"losses": record.losses, "val": record.metrics, "train": {"lr": record.lr}}
        for group, values in groups.items():
            for key, value in values.items():
                self.writer.add_scalar(f"{group}/{key}", value, record.epoch)
        for key, value in record.extra.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"method/{key}", value, record.epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
