"""SoKD's step cost against its base's, on one CPU thread: one engine step of FitNet
resnet32x4 -> resnet8x4 (batch 64, synthetic CIFAR-100, `make bench`'s setting) and of SoKD
over it while searching and with its policy fixed, each variant timed in turn (interleaved),
the median of `--repeats` steps of thread CPU time (`time.thread_time`).

    python tools/dev/sokd_cost.py [--repeats 7] [--before] [--variant NAME=KEY=VALUE,...]

`--variant` adds a SoKD searching step with recipe overrides (e.g.
`shared=method.shared_search_forward=true`); `--before` adds the searching and fixed steps
with DAFA's Eqs. 6 and 8 as written before the fused blend (`b (O + m - sg(m)) + (1 - b) F`
and a Python sum, patched onto those steps' policies), so that the old and the new step are
timed in turn in one process. Prints each variant's median ms and its ratio to the base's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from common.bench import step_trainer  # noqa: E402
from sokd.bench import BASE_RECIPE, SOKD_RECIPE  # noqa: E402
from sokd.ops import apply_op  # noqa: E402
from sokd.policy import SUB_POLICIES  # noqa: E402


def written_sub_policy(self, index, features, draw, generator, hard, rows=None):
    """Eq. 6 as first written: four passes over the map an operation."""
    out = features
    for slot, name in enumerate(SUB_POLICIES[index]):
        p, m = self.probability[index, slot], self.magnitude[index, slot]
        u = draw.uniforms[index, slot]
        b = (u > 1 - p).to(out.dtype) if hard else self.fire(p, u)
        out = b * apply_op(name, out, m, generator, rows) + (1 - b) * out
    return out


def written_forward(self, features, draw, generator, rows=None):
    """Eq. 8 as first written: a product and a sum a sub-policy."""
    generator.set_state(draw.op_state)
    if self._fixed is not None:
        return self.sub_policy(self._fixed, features, draw, generator, True, rows)
    weights = self.mixing_weights(draw)
    return sum(
        weights[i] * self.sub_policy(i, features, draw, generator, False, rows)
        for i in range(len(SUB_POLICIES))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", action="store_true")
    parser.add_argument("--variant", action="append", default=[])
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    variants = {"base": (BASE_RECIPE, [], 0, False)}
    if args.before:
        variants["before"] = (SOKD_RECIPE, [], 0, True)
    variants["search"] = (SOKD_RECIPE, [], 0, False)
    for spec in args.variant:
        name, _, overrides = spec.partition("=")
        variants[name] = (SOKD_RECIPE, overrides.split(","), 0, False)
    if args.before:
        variants["fixed_before"] = (SOKD_RECIPE, [], 10_000, True)
    variants["fixed"] = (SOKD_RECIPE, [], 10_000, False)
    steps = {}
    for name, (recipe, overrides, epoch, written) in variants.items():
        trainer, batch = step_trainer(recipe, cpu, overrides)
        trainer.method.start_epoch(epoch)
        if written:
            policy = trainer.method.policy
            policy.sub_policy = types.MethodType(written_sub_policy, policy)
            policy.forward = types.MethodType(written_forward, policy)
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
