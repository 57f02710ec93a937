"""`log.writers: [..., mlflow]`: the run in MLflow (the `mlflow` extra, MLflow's client:
`pip install -e '.[mlflow]'`; declared as a `kdzoo.writers` entry point).

At the start the resolved recipe becomes the run's parameters (`train.epochs`, ...; values cut
at 500 characters) and `config.yaml` an artifact; each epoch's numbers are metrics at
step = epoch; at the end the summary's numbers are metrics `summary/<key>` and the whole
summary the artifact `summary.json`; the run ends FINISHED (KILLED when stopped early). Where:
`MLFLOW_TRACKING_URI` (a server `http://host:5000`, or a local file store
`file:/path/mlruns`, which MLflow 3 accepts only with `MLFLOW_ALLOW_FILE_STORE=true`);
experiment `MLFLOW_EXPERIMENT_NAME` (default `kd-zoo`). The MLflow run id is kept in
`<run>/mlflow_run_id`, so `--resume` continues that run (its parameters are not logged again).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from common.engine.writer_support import (
    flat,
    import_extra,
    numbers,
    read_id,
    run_config,
    run_label,
    write_id,
)
from common.engine.writers import EpochRecord, Record, RunWriter, register_writer
from common.errors import ConfigError

ID_FILE = "mlflow_run_id"
DEFAULT_EXPERIMENT = "kd-zoo"
PARAM_CHARS = 500  # the shortest limit MLflow versions have had
BATCH = 100  # MLflow's most parameters in one log_batch
NOT_A_NAME = re.compile(r"[^\w.\-/ :]")


@register_writer("mlflow")
class MlflowWriter(RunWriter):
    """The run's config, epochs and summary in an MLflow run (see the module docstring)."""

    @classmethod
    def check_available(cls) -> None:
        """ConfigError naming the `mlflow` extra when mlflow is not installed."""
        import_extra("mlflow", "mlflow", "mlflow")

    def __init__(self, run_dir: Path, epochs: int) -> None:
        super().__init__(run_dir, epochs)
        mlflow = import_extra("mlflow", "mlflow", "mlflow")
        from mlflow.exceptions import MlflowException

        self.finished = False
        try:
            self.client = mlflow.MlflowClient()
            self.run_id = self._start(run_config(self.run_dir))
        except MlflowException as err:
            reason = str(err).strip().splitlines()[0][:300]
            raise ConfigError(
                f"log.writers 'mlflow': MLflow cannot log to {mlflow.get_tracking_uri()} "
                f"({reason}); set MLFLOW_TRACKING_URI to a tracking server (http://host:5000) "
                "or a file store (file:/path/mlruns, with MLFLOW_ALLOW_FILE_STORE=true on MLflow 3)"
            ) from None
        write_id(self.run_dir / ID_FILE, self.run_id)

    def _start(self, config: dict[str, Any]) -> str:
        """The MLflow run: the saved one (resumed) or a new one with the config logged."""
        from mlflow.entities import Param

        run_id = read_id(self.run_dir / ID_FILE)
        if run_id:
            self.client.update_run(run_id, status="RUNNING")
        else:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)
            found = self.client.get_experiment_by_name(name)
            experiment = found.experiment_id if found else self.client.create_experiment(name)
            tags = {"kdzoo.run_dir": str(self.run_dir.resolve())}
            run = self.client.create_run(
                experiment, run_name=run_label(config, self.run_dir), tags=tags
            )
            run_id = run.info.run_id
            params = [Param(_name(k), str(v)[:PARAM_CHARS]) for k, v in flat(config).items()]
            for start in range(0, len(params), BATCH):
                self.client.log_batch(run_id, params=params[start : start + BATCH])
        if (self.run_dir / "config.yaml").is_file():
            self.client.log_artifact(run_id, str(self.run_dir / "config.yaml"))
        return run_id

    def _log_numbers(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(_name(k), v, stamp, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def write_epoch(self, record: EpochRecord) -> None:
        self._log_numbers(numbers(record.flat()), record.epoch)

    def write_summary(self, summary: Record) -> None:
        values = {f"summary/{k}": v for k, v in numbers(summary).items()}
        self._log_numbers(values, int(summary.get("epochs") or self.epochs))
        self.client.log_dict(self.run_id, summary, "summary.json")
        self.finished = True

    def close(self) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if self.finished else "KILLED")


def _name(key: str) -> str:
    """`key` with the characters MLflow refuses in a name replaced by `_`."""
    return NOT_A_NAME.sub("_", key)
