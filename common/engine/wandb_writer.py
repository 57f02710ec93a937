"""`log.writers: [..., wandb]`: the run in Weights & Biases (the `wandb` extra:
`pip install -e '.[wandb]'`; declared as a `kdzoo.writers` entry point).

At the start the resolved recipe (`config.yaml`) becomes the W&B run's config; each epoch's
numbers (validation metrics, losses, lr, seconds, images/s, a method's numeric values) are
logged at step = epoch; the summary (`summary.json`'s values) goes to the run's summary at the
end. W&B's own settings come from its environment variables: `WANDB_PROJECT` (default
`kd-zoo`), `WANDB_ENTITY`, `WANDB_MODE=offline` (no account or network: the run is written to
`<run>/wandb/offline-run-*`, to upload later with `wandb sync`), `WANDB_DIR` (default: the run
folder). The W&B run id is kept in `<run>/wandb_run_id`, so `--resume` continues that run.
"""

from __future__ import annotations

import os
from pathlib import Path

from common.engine.writer_support import (
    import_extra,
    numbers,
    read_id,
    run_config,
    run_label,
    write_id,
)
from common.engine.writers import EpochRecord, Record, RunWriter, register_writer
from common.errors import ConfigError

ID_FILE = "wandb_run_id"
DEFAULT_PROJECT = "kd-zoo"


@register_writer("wandb")
class WandbWriter(RunWriter):
    """The run's config, epochs and summary in a W&B run (see the module docstring)."""

    @classmethod
    def check_available(cls) -> None:
        """ConfigError naming the `wandb` extra when wandb is not installed."""
        import_extra("wandb", "wandb", "wandb")

    def __init__(self, run_dir: Path, epochs: int) -> None:
        super().__init__(run_dir, epochs)
        wandb = import_extra("wandb", "wandb", "wandb")
        config = run_config(self.run_dir)
        run_id = read_id(self.run_dir / ID_FILE)
        try:
            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT),
                dir=os.environ.get("WANDB_DIR") or str(self.run_dir),
                name=run_label(config, self.run_dir),
                config=config,
                id=run_id or None,
                resume="allow" if run_id else None,
                allow_val_change=True,  # a resumed run may change train.epochs
            )
        except wandb.errors.Error as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(
                f"log.writers 'wandb': W&B could not start a run ({reason}); log in with "
                "`wandb login`, or set WANDB_MODE=offline to write it under the run folder"
            ) from None
        write_id(self.run_dir / ID_FILE, self.run.id)
        self.finished = False

    def write_epoch(self, record: EpochRecord) -> None:
        self.run.log(numbers(record.flat()), step=record.epoch)

    def write_summary(self, summary: Record) -> None:
        values = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}
        self.run.summary.update(values)
        self.finished = True

    def close(self) -> None:
        self.run.finish(exit_code=0 if self.finished else 1)
