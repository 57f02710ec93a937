"""The W&B and MLflow writers (optional extras, `kdzoo.writers` entry points): a real short run
offline with each where its package is installed (W&B in offline mode, read back from its run
file; MLflow to a file store), and, always, one `error:` line naming the extra when the
package is missing."""

from __future__ import annotations

import json
import struct
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from tiny_runs import tiny_recipe

from common.cli import main
from common.engine import writers
from common.errors import ConfigError

EXTRAS = {"wandb": "wandb", "mlflow": "mlflow"}  # writer -> the package it imports


def rows(run: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def train(tmp_path: Path, names: str, epochs: int = 2) -> Path:
    recipe = tiny_recipe(tmp_path, f"log: {{writers: [{names}]}}\ntrain: {{epochs: {epochs}}}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out)]) == 0
    return out


# ---------------------------------------------------------------- always: declared, or missing


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_each_writer_is_a_declared_entry_point(name: str) -> None:
    declared = {ep.name: ep.value for ep in entry_points(group=writers.ENTRY_POINT_GROUP)}
    assert declared.get(name) == f"common.engine.{name}_writer:{writers_class(name)}", (
        "reinstall (make install) after pyproject.toml's entry points change"
    )
    assert name in writers.writer_names()


def writers_class(name: str) -> str:
    return {"wandb": "WandbWriter", "mlflow": "MlflowWriter"}[name]


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch):
    """Make a package unimportable (as where the extra is not installed) for the test."""

    def hide(package: str) -> None:
        for module in list(sys.modules):
            if module == package or module.startswith(f"{package}."):
                monkeypatch.delitem(sys.modules, module)
        monkeypatch.setitem(sys.modules, package, None)

    return hide


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_a_missing_package_is_one_error_line_naming_the_extra(
    tmp_path: Path, capsys, without, name: str
) -> None:
    without(EXTRAS[name])
    with pytest.raises(ConfigError) as err:
        writers.writer_class(name)
    assert f"pip install -e '.[{name}]'" in str(err.value)
    recipe = tiny_recipe(tmp_path, f"log: {{writers: [jsonl, {name}]}}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == (
        f"error: log.writers has '{name}' but {EXTRAS[name]} is not installed: "
        f"pip install -e '.[{name}]' (or drop it from log.writers)"
    )
    assert not out.exists()  # refused before anything is written


# ---------------------------------------------------------------- W&B, offline


@pytest.fixture
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    wandb = pytest.importorskip("wandb", reason="the wandb extra is not installed")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    for var in ("WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(var, raising=False)
    return wandb


def wandb_records(path: Path) -> list[Any]:
    """The records of a `.wandb` run file (a LevelDB-style log of protobuf records: a 7-byte
    header, 32 KiB blocks, each chunk with a 7-byte header of checksum, length, kind)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, found, pending = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:  # zero padding to the block's end
            pos += left
            continue
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(pending)
            found.append(record)
            pending = b""
    return found


def finished_records(path: Path, timeout: float = 60.0) -> list[Any]:
    """The run file's records once W&B's service process has written them all (its exit
    record last): `run.finish()` can return before that process has flushed the file."""
    deadline = time.monotonic() + timeout
    while True:
        records = wandb_records(path)
        if records and records[-1].WhichOneof("record_type") == "exit":
            return records
        assert time.monotonic() < deadline, [r.WhichOneof("record_type") for r in records]
        time.sleep(0.1)


def item_key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


def test_wandb_offline_logs_config_epochs_and_summary(tmp_path: Path, wandb_offline) -> None:
    out = train(tmp_path, "jsonl, wandb")
    (run_file,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    records = finished_records(run_file)
    kinds = [r.WhichOneof("record_type") for r in records]
    run = records[kinds.index("run")].run
    assert run.run_id == (out / "wandb_run_id").read_text().strip()
    assert run.project == "kd-zoo" and run.display_name.endswith("/seed0")
    config = {item_key(u): json.loads(u.value_json) for u in run.config.update}
    assert config["train"]["epochs"] == 2 and config["student"]["name"] == "resnet8"
    history = [
        {item_key(i): json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    expected = rows(out)
    assert [h["_step"] for h in history] == [1, 2]
    for logged, row in zip(history, expected):
        for key in ("top1", "ce", "lr", "images_per_second"):
            assert logged[key] == pytest.approx(row[key]), key
    summary = json.loads((out / "summary.json").read_text())
    final = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            final.update({item_key(u): json.loads(u.value_json) for u in r.summary.update})
    assert final["top1_best"] == pytest.approx(summary["top1_best"])
    assert final["student_params"] == summary["student_params"]
    assert kinds[-1] == "exit" and records[-1].exit.exit_code == 0


def test_wandb_a_resumed_run_continues_the_same_wandb_run(tmp_path: Path, wandb_offline) -> None:
    from common.engine.wandb_writer import WandbWriter

    (tmp_path / "config.yaml").write_text("name: a/b\ntrain: {seed: 3}\n")
    first = WandbWriter(tmp_path, 2)
    first.close()
    again = WandbWriter(tmp_path, 2)
    again.close()
    assert again.run.id == first.run.id and again.run.name == "a/b/seed3"


# ---------------------------------------------------------------- MLflow, file store


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for it
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return uri


def test_mlflow_logs_config_epochs_and_summary_to_a_file_store(
    tmp_path: Path, mlflow_store: str
) -> None:
    from mlflow import MlflowClient

    out = train(tmp_path, "jsonl, mlflow")
    client = MlflowClient(tracking_uri=mlflow_store)
    experiment = client.get_experiment_by_name("kd-zoo")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == (out / "mlflow_run_id").read_text().strip()
    assert run.info.status == "FINISHED" and run.info.run_name.endswith("/seed0")
    params = run.data.params
    assert params["train.epochs"] == "2" and params["student.name"] == "resnet8"
    assert params["optim.milestones"] == "[150, 180, 210]"
    expected = rows(out)
    top1 = client.get_metric_history(run.info.run_id, "top1")
    assert [(m.step, m.value) for m in top1] == [
        (r["epoch"], pytest.approx(r["top1"])) for r in expected
    ]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "lr")] == [1, 2]
    summary = json.loads((out / "summary.json").read_text())
    assert run.data.metrics["summary/top1_best"] == pytest.approx(summary["top1_best"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "summary.json"} <= artifacts


def test_mlflow_a_resumed_run_continues_the_same_mlflow_run(
    tmp_path: Path, mlflow_store: str
) -> None:
    from mlflow import MlflowClient

    from common.engine.mlflow_writer import MlflowWriter

    (tmp_path / "config.yaml").write_text("name: a/b\ntrain: {seed: 3, epochs: 2}\n")
    first = MlflowWriter(tmp_path, 2)
    first.close()  # stopped before its summary: KILLED
    client = MlflowClient(tracking_uri=mlflow_store)
    assert client.get_run(first.run_id).info.status == "KILLED"
    (tmp_path / "config.yaml").write_text("name: a/b\ntrain: {seed: 3, epochs: 4}\n")
    again = MlflowWriter(tmp_path, 4)  # --resume train.epochs=4: params are not logged again
    assert again.run_id == first.run_id
    assert client.get_run(again.run_id).info.status == "RUNNING"
    again.close()
    experiment = client.get_experiment_by_name("kd-zoo")
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_mlflow_an_unusable_store_is_one_line(
    tmp_path: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.engine.mlflow_writer import MlflowWriter

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://x")
    with pytest.raises(ConfigError) as err:
        MlflowWriter(tmp_path, 1)
    assert str(err.value).startswith("log.writers 'mlflow': MLflow cannot log to nosuchscheme://x")
    assert "\n" not in str(err.value)
