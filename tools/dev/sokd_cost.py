"""SoKD's step cost against its base's, on one CPU thread: one engine step of FitNet
resnet32x4 -> resnet8x4 (batch 64, synthetic CIFAR-100, `make bench`'s setting) and of SoKD
over it while searching and with its policy fixed, each variant timed in turn (interleaved),
the median of `--repeats` steps of thread CPU time (`time.thread_time`).

    python tools/dev/sokd_cost.py [--repeats 5] [--variant NAME=KEY=VALUE,KEY=VALUE ...]

`--variant` adds a SoKD searching step with recipe overrides (e.g.
`shared=method.shared_search_forward=true`). Prints each variant's median ms and its ratio
to the base's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from common.bench import step_trainer  # noqa: E402
from sokd.bench import BASE_RECIPE, SOKD_RECIPE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variant", action="append", default=[])
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    variants = {"base": (BASE_RECIPE, [], 0), "search": (SOKD_RECIPE, [], 0)}
    for spec in args.variant:
        name, _, overrides = spec.partition("=")
        variants[name] = (SOKD_RECIPE, overrides.split(","), 0)
    variants["fixed"] = (SOKD_RECIPE, [], 10_000)
    steps = {}
    for name, (recipe, overrides, epoch) in variants.items():
        trainer, batch = step_trainer(recipe, cpu, overrides)
        trainer.method.start_epoch(epoch)
        trainer.train_step(batch)  # warm-up
        steps[name] = (trainer, batch)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, (trainer, batch) in steps.items():
            start = time.thread_time()
            trainer.train_step(batch)
            times[name].append(time.thread_time() - start)
    base = statistics.median(times["base"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>12}: {median * 1e3:8.0f} ms  {median / base:5.2f}x the base")


if __name__ == "__main__":
    main()
