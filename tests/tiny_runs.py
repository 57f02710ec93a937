"""Small, fast run set-ups shared by the engine, CLI and distributed tests."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

TINY_RECIPE = """\
device: cpu
data:
  name: synthetic
  synthetic: {num_classes: 8, num_superclasses: 2, train_per_class: 24, val_per_class: 8,
              image_size: 16, seed: 0}
  crop_padding: 2
optim: {name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 5.0e-4, schedule: cosine}
train: {epochs: 3, batch_size: 32, seed: 0, progress: none}
method: {name: vanilla}
student: {name: resnet8}
"""


def tiny_recipe(tmp_path: Path, extra: str = "", name: str = "tiny.yaml") -> Path:
    """Write the tiny synthetic recipe (plus `extra` YAML merged through `base:`)."""
    base = tmp_path / "tiny_base.yaml"
    base.write_text(TINY_RECIPE)
    path = tmp_path / name
    path.write_text(f"base: tiny_base.yaml\n{extra}")
    return path


def timeless(row: str) -> dict:
    """A metrics.jsonl row without its wall-clock fields (they differ between runs)."""
    return {k: v for k, v in json.loads(row).items() if k not in ("seconds", "images_per_second")}


def same_metrics(run_a: Path, run_b: Path) -> bool:
    """Whether two runs logged the same metrics.jsonl rows, wall-clock fields aside."""
    rows_a = (run_a / "metrics.jsonl").read_text().splitlines()
    rows_b = (run_b / "metrics.jsonl").read_text().splitlines()
    return [timeless(r) for r in rows_a] == [timeless(r) for r in rows_b]


def assert_same_weights(run_a: Path, run_b: Path, part: str = "method") -> dict:
    """Assert that two runs' `last.pt` hold bit-identical tensors under `part` (``"method"``:
    every trained network with its buffers; ``"model"``: the student); return run_a's."""
    import torch

    a = torch.load(run_a / "last.pt", weights_only=True)
    b = torch.load(run_b / "last.pt", weights_only=True)
    assert set(a[part]) == set(b[part])
    for key, value in a[part].items():
        assert torch.equal(value, b[part][key]), key
    return a[part]


def run_interrupted_by_sigterm(
    main: Callable[[list[str]], int],
    recipe: Path,
    out: Path,
    monkeypatch: pytest.MonkeyPatch,
    at_step: int = 9,
) -> None:
    """Start a run and send it SIGTERM after its `at_step`-th training step (exit code 130).

    The engine saves `last.pt` mid-epoch and exits; the caller then resumes with `--resume`.
    """
    from common.engine.trainer import Trainer

    original = Trainer.train_step
    calls = {"n": 0}

    def step_then_signal(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == at_step:
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(Trainer, "train_step", step_then_signal)
    try:
        assert main(["--recipe", str(recipe), "--out", str(out)]) == 130
    finally:
        monkeypatch.setattr(Trainer, "train_step", original)


def short_cifar10_run(
    root: Path, cache: Path, epochs: int, subset: int = 4000, val_subset: int = 2000
) -> list[str]:
    """Overrides turning a CIFAR-100 protocol recipe into a short CPU run on real CIFAR-10."""
    return [
        "data.name=cifar10", f"data.root={root}", f"data.cache_dir={cache}",
        f"data.subset={subset}", f"data.val_subset={val_subset}", "device=cpu",
        f"train.epochs={epochs}", "train.batch_size=64", "train.progress=none",
        "optim.schedule=cosine",
    ]  # fmt: skip
