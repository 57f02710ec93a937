"""Small, fast run set-ups shared by the engine, CLI and distributed tests."""

from __future__ import annotations

from pathlib import Path

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
