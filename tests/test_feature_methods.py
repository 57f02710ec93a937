"""FitNet, AT, CRD and ReviewKD through the engine: their modules train with the student, live
in last.pt (not best.pt), come back on resume; CRD's banks under resume and DDP; bad pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ddp_worker import PlainConvNet  # also registers test_plain_convnet
from test_distributed import launch
from tiny_runs import run_interrupted_by_sigterm, same_metrics, tiny_recipe

from common.batch import Batch
from common.cli import main
from common.engine import fit
from common.errors import DataError
from common.methods import get_method
from common.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")

OWN_MODULES = {"fitnet": "regressor.", "at": None, "crd": "embed_s.", "reviewkd": "fusion."}
CRD_SMALL = "n_negatives: 16"  # the tiny set has 192 images: a few negatives each


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    """A resnet20 teacher for the tiny 8-class data (random weights: the plumbing is tested)."""
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    torch.save({"model": build_model("resnet20", 8).state_dict()}, path)
    return path


def feature_recipe(tmp_path: Path, teacher: Path, method: str, options: str = "") -> Path:
    opts = f", {options}" if options else ""
    extra = (
        f"method: {{name: {method}{opts}}}\nteacher: {{name: resnet20, checkpoint: {teacher}}}\n"
        "train: {epochs: 2}\n"
    )
    return tiny_recipe(tmp_path, extra, f"{method}.yaml")


def cifar_pair(method: str, **options):
    cls = get_method(method)
    torch.manual_seed(0)
    teacher = build_model("resnet32x4", 10).eval().requires_grad_(False)
    student = build_model("resnet8x4", 10)
    extra = {"train_targets": torch.arange(40) % 10} if method == "crd" else {}
    return cls(student, teacher, cls.Options(**options), image_size=32, **extra)


@pytest.mark.parametrize("method", ["fitnet", "at", "crd", "reviewkd"])
def test_a_step_trains_the_student_and_the_methods_modules_never_the_teacher(method) -> None:
    options = {"n_negatives": 8} if method == "crd" else {}
    distiller = cifar_pair(method, **options).train()
    batch = Batch(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), torch.arange(4))
    _, losses = distiller.forward_train(batch)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert distiller.student.fc.weight.grad is not None
    prefix = OWN_MODULES[method]
    if prefix:
        own = [p for n, p in distiller.named_parameters() if n.startswith(prefix)]
        assert own and all(p.grad is not None and p.grad.abs().sum() > 0 for p in own)


@pytest.mark.parametrize("method", ["fitnet", "at", "crd", "reviewkd"])
def test_a_run_saves_the_modules_in_last_pt_and_the_bare_student_in_best_pt(
    tmp_path: Path, teacher_file: Path, method: str
) -> None:
    options = CRD_SMALL if method == "crd" else ""
    out = tmp_path / "run"
    assert main(["--recipe", str(feature_recipe(tmp_path, teacher_file, method, options)),
                 "--out", str(out)]) == 0  # fmt: skip
    last = torch.load(out / "last.pt", weights_only=True)
    best = torch.load(out / "best.pt", weights_only=True)
    assert set(best["model"]) == set(build_model("resnet8", 8).state_dict())
    prefix = OWN_MODULES[method]
    if prefix:
        assert any(k.startswith(prefix) for k in last["method"])
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["ce"] > 0 and ("feat" in row or "crd" in row)


def test_reviewkd_ramps_its_loss_in_over_the_warmup() -> None:
    distiller = cifar_pair("reviewkd", warmup_epochs=20).train()
    batch = Batch(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    values = {}
    for epoch in (0, 19):
        distiller.start_epoch(epoch)
        torch.manual_seed(0)
        values[epoch] = distiller.forward_train(batch)[1]["feat"]
    torch.testing.assert_close(values[0] * 20, values[19])


def test_crd_resumes_mid_epoch_with_the_same_banks(
    tmp_path: Path, teacher_file: Path, monkeypatch
) -> None:
    recipe = feature_recipe(tmp_path, teacher_file, "crd", CRD_SMALL)
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert main(["--recipe", str(recipe), "--out", str(straight)]) == 0
    run_interrupted_by_sigterm(main, recipe, cut, monkeypatch)
    assert main(["--resume", str(cut)]) == 0
    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(cut / "last.pt", weights_only=True)
    for key in ("memory.memory_s", "memory.memory_t", "memory.z_s", "embed_s.linear.weight"):
        name = key if key in a["method"] else next(k for k in a["method"] if k.startswith(key[:8]))
        assert torch.equal(a["method"][name], b["method"][name]), name
    assert same_metrics(straight, cut)


def test_crd_on_two_processes_equals_one(tmp_path: Path) -> None:
    """BatchNorm-free networks: two processes end with the same banks and metrics as one,
    the partial last batch (199 images at batch 32: 3 + 4) included."""
    torch.manual_seed(3)
    teacher = tmp_path / "teacher.pt"
    torch.save({"model": PlainConvNet(8).state_dict()}, teacher)
    extra = (
        f"method: {{name: crd, {CRD_SMALL}}}\n"
        f"teacher: {{name: test_plain_convnet, checkpoint: {teacher}}}\n"
        "student: {name: test_plain_convnet}\ntrain: {epochs: 2}\n"
        "data: {subset: 199, synthetic: {train_per_class: 25}}\n"
    )
    recipe = tiny_recipe(tmp_path, extra)
    one, two = tmp_path / "one", tmp_path / "two"
    launch(["--recipe", str(recipe), "--out", str(one)], 1)
    launch(["--recipe", str(recipe), "--out", str(two)], 2)
    a = torch.load(one / "last.pt", weights_only=True)["method"]
    b = torch.load(two / "last.pt", weights_only=True)["method"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    rows = [[json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()]
            for r in (one, two)]  # fmt: skip
    for ra, rb in zip(*rows):
        assert ra["crd"] == pytest.approx(rb["crd"], rel=1e-4) and ra["top1"] == rb["top1"]


@pytest.mark.parametrize(
    ("method", "override", "expect"),
    [
        ("fitnet", "method.hint_layer=7", "method.hint_layer 7 is out of range"),
        ("at", "teacher.name=ResNet18", "stages"),
        ("reviewkd", "student.name=test_plain_convnet", "student levels"),
    ],
)
def test_a_pair_a_method_cannot_match_ends_in_one_line(
    tmp_path: Path, teacher_file: Path, capsys, method: str, override: str, expect: str
) -> None:
    recipe = feature_recipe(tmp_path, teacher_file, method)
    ckpt = tmp_path / "resnet18.pt"
    torch.save({"model": build_model("ResNet18", 8).state_dict()}, ckpt)
    extra = [f"teacher.checkpoint={ckpt}"] if "ResNet18" in override else []
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "r"), override, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0], err


def test_crd_from_a_loader_without_indices_is_refused(tmp_path: Path) -> None:
    images, targets = torch.randn(8, 3, 16, 16), torch.arange(8) % 4
    loader = [(images[:4], targets[:4]), (images[4:], targets[4:])]
    teacher = build_model("resnet8", 4).eval()
    crd = get_method("crd")(
        build_model("resnet8", 4), teacher, image_size=16, train_targets=targets
    )
    with pytest.raises(DataError, match="indices"):
        fit(crd, loader, loader, epochs=1, out=tmp_path / "run", device="cpu")


def test_at_stage_pairing_first_is_mdistillers_zip_and_equal_refuses() -> None:
    """resnet8 (3 stages after the stem) under ResNet18 (4): `equal` refuses the pair, `first`
    pairs the three with ResNet18's first three and drops its last, as mdistiller's
    `zip(feats_s[1:], feats_t[1:])` (its resnet50 -> MobileNetV1 AT config)."""
    from common.errors import ConfigError
    from common.methods.losses import at_loss

    cls = get_method("at")
    torch.manual_seed(0)
    teacher = build_model("ResNet18", 10).eval().requires_grad_(False)
    student = build_model("resnet8", 10)
    with pytest.raises(ConfigError, match="stage_pairing=first"):
        cls(student, teacher, cls.Options(), image_size=32)
    at = cls(student, teacher, cls.Options(stage_pairing="first"), image_size=32).train()
    assert at.stage_indices == [1, 2, 3]
    batch = Batch(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]), torch.arange(2))
    _, losses = at.forward_train(batch)
    _, fs = student(batch.images)
    _, ft = teacher(batch.images)
    zipped = list(zip(fs["feats"][1:], ft["feats"][1:]))
    assert len(zipped) == 3
    reference = 1000.0 * at_loss([s for s, _ in zipped], [t for _, t in zipped], 2.0)
    torch.testing.assert_close(losses["feat"], reference)


def test_crd_negatives_follow_the_training_seed_unless_set() -> None:
    """CRD's negatives generator is seeded by the run's train.seed (the engine seeds torch with
    it first), so seeds of one recipe draw different negatives; `seed:` set wins."""
    from common.methods.crd import CRD, CRDOptions
    from common.models import build_model

    targets = torch.arange(40) % 4

    def first_draw(train_seed: int, options: CRDOptions) -> torch.Tensor:
        torch.manual_seed(train_seed)
        crd = CRD(build_model("resnet8", 4), build_model("resnet8", 4), options, 32, targets)
        return torch.randint(0, 10**6, (8,), generator=crd.generator(torch.device("cpu")))

    default = CRDOptions(n_negatives=8)
    assert not torch.equal(first_draw(0, default), first_draw(1, default))
    assert torch.equal(first_draw(0, default), first_draw(0, default))
    fixed = CRDOptions(n_negatives=8, seed=5)
    assert torch.equal(first_draw(0, fixed), first_draw(1, fixed))


@pytest.mark.parametrize("method", ["fitnet", "at", "crd", "reviewkd"])
def test_compile_targets_hold_every_trained_module(method) -> None:
    """`train.graph=compile` compiles `compile_targets()`: every trained parameter of the
    method (the student's, FitNet's regressor, CRD's embeddings, ReviewKD's fusion) lies in
    one of them, so none of the trained network work is left eager."""
    options = {"n_negatives": 8} if method == "crd" else {}
    distiller = cifar_pair(method, **options)
    covered = {id(p) for m in distiller.compile_targets() for p in m.parameters()}
    trained = [n for n, p in distiller.named_parameters() if p.requires_grad]
    params = dict(distiller.named_parameters())
    assert [n for n in trained if id(params[n]) not in covered] == []
