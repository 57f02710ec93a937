"""No training step waits on the host: every method's step (forward, losses, backward,
optimiser, schedule, the engine's NaN guard and loss sums) runs with every host read of a
tensor's value made to raise (and, on a GPU, under torch.cuda.set_sync_debug_mode("error"))."""

from __future__ import annotations

import re

import pytest
import torch
from sync_guard import forbid_host_syncs
from tiny_runs import tiny_recipe

from common.bench.steps import step_trainer
from common.engine.guards import NonFiniteGuard

pytestmark = pytest.mark.usefixtures("one_thread")

CRD_SMALL = "n_negatives: 32"
CASES = {
    "vanilla": "method: {name: vanilla}",
    "kd": "method: {name: kd}",
    "dkd": "method: {name: dkd}",
    "dml": "method: {name: dml}",
    "fitnet": "method: {name: fitnet}",
    "at": "method: {name: at}",
    "crd": f"method: {{name: crd, {CRD_SMALL}}}",
    "reviewkd": "method: {name: reviewkd}",
    "r2kd": "method: {name: r2kd}",
    "r2kd_cutmix": "method: {name: r2kd, augment: cutmix}",
    "r2kd_mixup": "method: {name: r2kd, augment: mixup}",
    "r2kd_cutout": "method: {name: r2kd, augment: cutout}",
    "r2kd_cutmixpick": "method: {name: r2kd, augment: cutmixpick, cutmixpick_keep: 16}",
    "slkd": "method: {name: slkd}",
    "cqkd": "method: {name: cqkd}\nstudent: {resolution: 16}",
    "lowres": "method: {name: lowres}\nstudent: {resolution: 16}",
    "sokd_fitnet": "method: {name: sokd, base: fitnet}",
    "sokd_at": "method: {name: sokd, base: at}",
    "sokd_crd": f"method: {{name: sokd, base: crd, base_options: {{{CRD_SMALL}}}}}",
    "sokd_reviewkd": "method: {name: sokd, base: reviewkd}",
}
SOKD_FIXED = {"sokd_fitnet_fixed": "method: {name: sokd, base: fitnet, search_epochs: 0}"}


@pytest.mark.parametrize("case", [*CASES, *SOKD_FIXED])
def test_the_training_step_never_reads_a_tensor_on_the_host(tmp_path, case: str) -> None:
    extra = {**CASES, **SOKD_FIXED}[case]
    recipe = tiny_recipe(tmp_path, extra + "\nteacher: {name: resnet20}\n")
    trainer, batch = step_trainer(recipe, torch.device("cpu"), ["student.name=resnet8"])
    guard = NonFiniteGuard(trainer.device)
    trainer.train_step(batch, 0)  # lazy set-up (generators, optimiser state) happens once
    names, total, sums = trainer.train_step(batch, 1)
    with forbid_host_syncs():
        for step in (2, 3):
            names, total, stacked = trainer.train_step(batch, step)
            sums.add_(stacked)
            guard.update(step, total, stacked)
    assert torch.isfinite(sums).all() and len(names) == sums.shape[0]


def test_every_registered_method_has_a_case() -> None:
    from test_describe import project_methods

    named = {re.search(r"name: (\w+)", body).group(1) for body in CASES.values()}
    missing = project_methods() - named
    assert not missing, f"no CASES entry for {sorted(missing)}: add one"
