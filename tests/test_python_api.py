"""The README's Python snippet (between the `python-api` markers), run exactly as written in a
folder holding what it names: a small real CIFAR-10 tree and a teacher file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from common.models import build_model

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


def readme_snippet() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(
        r"<!-- python-api -->\s*```python\n(.*?)```\s*<!-- /python-api -->", text, re.S
    )
    assert block, "README.md has no python-api block"
    return block.group(1)


def small_tree(source: Path, target: Path, per_class: int) -> None:
    """`target/<class>/` with the first `per_class` images of each class of `source`."""
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:per_class]:
            (target / folder.name / image.name).symlink_to(image)


def test_the_readme_snippet_distils_and_writes_a_run_folder(
    cifar10_jpg_root: Path, tmp_path: Path, monkeypatch
) -> None:
    cifar = cifar10_jpg_root / "cifar10"
    small_tree(cifar / "train", tmp_path / "data/cifar10/train", 30)
    small_tree(cifar / "test", tmp_path / "data/cifar10/test", 10)
    teacher = tmp_path / "runs/teachers/cifar10/resnet56/seed0/final.pt"
    teacher.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save({"model": build_model("resnet56", 10).state_dict()}, teacher)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_snippet(), "README.md python-api", "exec"), namespace)
    summary = namespace["summary"]
    run = tmp_path / "runs/python_kd"
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "summary.json", "last.pt",
                 "best.pt", "final.pt"):  # fmt: skip
        assert (run / name).is_file(), name
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and {"ce", "kd", "top1"} <= set(rows[0])
    assert summary["top1"] == rows[-1]["top1"] and summary["method"] == "kd"
    assert json.loads((run / "summary.json").read_text())["top1"] == summary["top1"]
    assert summary["teacher_top1"] >= 0 and "resnet20" in (run / "config.yaml").read_text()


def _own_data(seed: int = 0):
    """The project's own loaders (`build_data`) over a tiny synthetic set."""
    from common.config.schema import DataConfig, SyntheticConfig
    from common.data.build import build_data

    synthetic = SyntheticConfig(num_classes=4, num_superclasses=2, train_per_class=8,
                                val_per_class=4, image_size=8)  # fmt: skip
    cfg = DataConfig(name="synthetic", synthetic=synthetic)
    return build_data(cfg, batch_size=8, device="cpu", seed=seed)


def test_fit_takes_the_projects_own_data_and_reshuffles_every_epoch(tmp_path: Path) -> None:
    import warnings

    from common.engine import fit
    from common.methods import Vanilla

    data = _own_data()
    orders = []
    iterate = type(data.train).__iter__

    def recording(loader):
        first = []
        for batch in iterate(loader):
            first.append(batch.targets.tolist())
            yield batch
        orders.append(first)

    torch.manual_seed(0)
    model = Vanilla(build_model("resnet8", 4), None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "iterating epoch 0 again with the same order"
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(type(data.train), "__iter__", recording)
            summary = fit(model, data, epochs=2, out=tmp_path / "run", device="cpu",
                          writers=["jsonl"], optimizer={"schedule": "cosine"})  # fmt: skip
    assert summary["epochs"] == 2 and len(orders) == 2
    assert orders[0] != orders[1]  # epoch 1 drew its own order


def test_fit_max_steps_stops_and_saves_then_resumes_and_overwrite_restarts(
    tmp_path: Path,
) -> None:
    from common.engine import fit
    from common.errors import ConfigError
    from common.methods import Vanilla

    def run(**kwargs):
        torch.manual_seed(0)
        model = Vanilla(build_model("resnet8", 4), None)
        return fit(model, _own_data(), epochs=2, out=tmp_path / "run", device="cpu",
                   writers=["jsonl"], optimizer={"schedule": "cosine"}, **kwargs)  # fmt: skip

    stopped = run(max_steps=3)  # 4 steps an epoch: stops inside epoch 1
    assert stopped == {"stopped_at_step": 3, "epoch": 1}
    assert (tmp_path / "run/last.pt").is_file() and not (tmp_path / "run/summary.json").exists()
    before = torch.load(tmp_path / "run/last.pt", weights_only=False)["state"]["epoch_seconds"]
    assert before > 0  # the interrupted epoch's time so far is kept
    with pytest.raises(ConfigError, match="already holds a run"):
        run()
    done = run(resume=True)
    assert done["epochs"] == 2 and (tmp_path / "run/summary.json").is_file()
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert rows[0]["seconds"] >= before and done["train_seconds"] >= before
    again = run(overwrite=True, max_steps=4)  # an epoch's end: stops after its checkpoint
    assert again == {"stopped_at_step": 4, "epoch": 1}
    assert not (tmp_path / "run/summary.json").exists()  # the old run's files are gone
    with pytest.raises(ConfigError, match="contradict"):
        run(resume=True, overwrite=True)
