"""A sweep's `resources` as submitit's SLURM parameters: one task per job (a multi-process run
is one `torchrun` inside it), the partition, account, GPUs, CPUs, memory and time limit, and
the extra `sbatch` lines.

An extra line is an sbatch option (`--qos=high`, `--constraint volta32gb`, `--exclusive`, with
or without a leading `#SBATCH`), or otherwise a shell line run in the job before the training
(`module load cuda/12.1`, `source ~/env.sh`).
"""

from __future__ import annotations

import re
from typing import Any

from common.sweep.check import SweepError
from common.sweep.spec import Resources

OPTION = re.compile(r"^--([A-Za-z][A-Za-z0-9_-]*)(?:[= ]\s*(.*))?$")


def signal_delay_s(time_min: int) -> int:
    """How long before the time limit SLURM warns the job (USR2) so it saves and requeues:
    two minutes, or a fifth of a short limit."""
    return max(10, min(120, time_min * 60 // 5))


def extra_lines(lines: list[str]) -> tuple[dict[str, Any], list[str]]:
    """`resources.sbatch` split into sbatch options and setup shell lines."""
    options: dict[str, Any] = {}
    setup: list[str] = []
    for raw in lines:
        line = raw.strip()
        if line.startswith("#SBATCH"):
            line = line.removeprefix("#SBATCH").strip()
        elif not line.startswith("-"):
            setup.append(line)
            continue
        match = OPTION.match(line)
        if not match:
            raise SweepError(
                f"resources.sbatch line {raw!r}: give sbatch options in their long form, "
                "--name=value or --flag (e.g. --qos=high, --exclusive)"
            )
        name, value = match.group(1), match.group(2)
        options[name.replace("-", "_")] = value.strip().strip("'\"") if value else True
    return options, setup


def slurm_parameters(res: Resources, job_name: str) -> dict[str, Any]:
    """submitit SlurmExecutor parameters for one run's job."""
    options, setup = extra_lines(res.sbatch)
    params: dict[str, Any] = {
        "job_name": job_name,
        "time": res.time_min,
        "nodes": 1,
        "ntasks_per_node": 1,
        "signal_delay_s": signal_delay_s(res.time_min),
        "stderr_to_stdout": True,
        "additional_parameters": {"requeue": True, **options},
    }
    if res.cpus:
        params["cpus_per_task"] = res.cpus
    if res.gpus:
        params["gpus_per_node"] = res.gpus
    if res.mem_gb:
        params["mem"] = f"{res.mem_gb}GB"
    if res.partition:
        params["partition"] = res.partition
    if res.account:
        params["account"] = res.account
    if setup:
        params["setup"] = setup
    return params
