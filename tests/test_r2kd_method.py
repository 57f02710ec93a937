"""The R2KD Distiller: the options contract, the loss against an independent computation,
gradients reaching only the student, the augmented copy, and short runs through the CLI
(pruned-teacher reports, structured pruning, exact resume after SIGTERM, option errors)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tiny_runs import assert_same_weights, run_interrupted_by_sigterm, same_metrics, tiny_recipe

from common.batch import Batch
from common.cli import main
from common.config import load_recipe
from common.models import build_model
from r2kd.losses import rank_distance, value_distance
from r2kd.method import R2KD, R2KDOptions
from r2kd.pruning import make_pruned_teacher

pytestmark = pytest.mark.usefixtures("one_thread")


CONTRACT = {  # the names and defaults other recipes are written against (issue 3)
    "temperature": 4.0,
    "ce_weight": 1.0,
    "alpha": 2.0,
    "beta": 2.0,
    "value_columns": True,
    "value_t_squared": True,
    "rank_mode": "soft",
    "prune": "unstructured",
    "prune_amount": 0.1,
    "teacher_mix": 0.7,
    "pruned_bn": "eval",
    "augment": "none",
    "mixup_alpha": 0.2,
    "cutout_length": 8,
    "cutmixpick_keep": 64,
}


def test_options_keep_the_contract() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(R2KDOptions)}
    for key, value in CONTRACT.items():
        assert defaults[key] == value, key
    assert "rank_sharpness" in defaults


def make_method(**options) -> R2KD:
    torch.manual_seed(0)
    teacher = build_model("resnet8", 10).eval().requires_grad_(False)
    opts = R2KDOptions(**options)
    pruned = None
    if opts.prune != "none":
        pruned, _ = make_pruned_teacher(teacher, opts.prune, opts.prune_amount, 16)
    return R2KD(build_model("resnet8", 10), teacher, opts, pruned)


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    return torch.randn(n, 3, 16, 16, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def test_loss_is_ce_plus_weighted_value_and_rank_on_the_mixed_teacher() -> None:
    method = make_method(prune_amount=0.3)
    images, targets = batch()
    logits, losses = method.forward_train(Batch(images, targets))
    assert set(losses) == {"ce", "value", "rank"}
    with torch.no_grad():
        z_s = method.student(images)[0]
        z_t = 0.7 * method.teacher(images)[0] + 0.3 * method.pruned_teacher(images)[0]
        p_s, p_t = F.softmax(z_s / 4, 1), F.softmax(z_t / 4, 1)
        value = value_distance(p_s, p_t) + value_distance(p_s.t(), p_t.t())
    assert torch.allclose(logits, z_s, atol=1e-6)
    assert losses["ce"].item() == pytest.approx(F.cross_entropy(z_s, targets).item(), rel=1e-5)
    assert losses["value"].item() == pytest.approx(2 * 16 * value.item(), rel=1e-5)
    rank = rank_distance(p_s, p_t, "soft").item()
    assert losses["rank"].item() == pytest.approx(2 * rank, rel=1e-5)


def test_switches_drop_terms_and_kl_is_available() -> None:
    images, targets = batch()
    _, losses = make_method(beta=0.0, prune="none").forward_train(Batch(images, targets))
    assert set(losses) == {"ce", "value"}
    _, losses = make_method(alpha=0.0, beta=0.0, kl_weight=0.5).forward_train(
        Batch(images, targets)
    )
    assert set(losses) == {"ce", "kl"}
    _, losses = make_method(value_columns=False).forward_train(Batch(images, targets))
    with torch.no_grad():
        method = make_method(value_columns=False)
        z_t = method.mix(*method.teacher_pair(images))
        p_s = F.softmax(method.student(images)[0] / 4, 1)
        rows = value_distance(p_s, F.softmax(z_t / 4, 1))
    assert losses["value"].item() == pytest.approx(32 * rows.item(), rel=1e-5)


@pytest.mark.parametrize("columns", [True, False])
def test_value_t_squared_false_gives_eq7s_plain_alpha_value_term(columns: bool) -> None:
    """The released code multiplies the value term by T^2 (the default); Eq. 7 has alpha alone.
    With `value_columns: false` as well, the term is Eq. 7-8's alpha * mean_i d_value(rows)."""
    images, targets = batch()
    method = make_method(value_t_squared=False, value_columns=columns, temperature=3.0)
    _, losses = method.forward_train(Batch(images, targets))
    _, released = make_method(value_columns=columns, temperature=3.0).forward_train(
        Batch(images, targets)
    )
    with torch.no_grad():
        z_t = method.mix(*method.teacher_pair(images))
        p_s, p_t = F.softmax(method.student(images)[0] / 3, 1), F.softmax(z_t / 3, 1)
        value = value_distance(p_s, p_t)
        if columns:
            value = value + value_distance(p_s.t(), p_t.t())
    assert losses["value"].item() == pytest.approx(2 * value.item(), rel=1e-5)
    assert released["value"].item() == pytest.approx(2 * 9 * value.item(), rel=1e-5)
    assert losses["rank"].item() == pytest.approx(released["rank"].item(), rel=1e-6)


def test_gradient_reaches_the_student_only() -> None:
    method = make_method(augment="cutmix")
    images, targets = batch()
    _, losses = method.forward_train(Batch(images, targets))
    assert set(losses) == {"ce", "value", "rank", "aug_value", "aug_rank"}
    for name in ("value", "rank", "aug_value", "aug_rank"):
        method.zero_grad(set_to_none=True)
        losses[name].backward(retain_graph=True)
        grads = [p.grad for p in method.student.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name
    assert all(p.grad is None for p in method.teacher.parameters())
    assert all(p.grad is None for p in method.pruned_teacher.parameters())
    trainable = {id(p) for p in method.trainable_parameters()}
    assert trainable == {id(p) for p in method.student.parameters()}


def test_hard_rank_mode_is_logged_but_carries_no_gradient() -> None:
    images, targets = batch()
    _, losses = make_method(rank_mode="hard").forward_train(Batch(images, targets))
    assert not losses["rank"].requires_grad and losses["rank"].item() > 0


@pytest.mark.parametrize("kind", ["cutmix", "mixup", "cutout", "autoaugment", "cutmixpick"])
def test_augmented_copy_goes_through_all_three_networks(kind: str) -> None:
    method = make_method(augment=kind, cutmixpick_keep=5)
    seen: dict[str, list[int]] = {"student": [], "teacher": [], "pruned": []}
    for name, net in (("student", method.student), ("teacher", method.teacher)):
        net.register_forward_hook(lambda m, i, o, n=name: seen[n].append(i[0].shape[0]))
    method.pruned_teacher.register_forward_hook(
        lambda m, i, o: seen["pruned"].append(i[0].shape[0])
    )
    images, targets = batch()
    clean = images.clone()
    _, losses = method.forward_train(Batch(images, targets))
    assert torch.equal(images, clean)
    assert {"aug_value", "aug_rank"} <= set(losses) and "aug_ce" not in losses
    picked = 5 if kind == "cutmixpick" else 8
    assert seen["student"] == [8, picked]
    assert seen["pruned"] == [8, picked]
    assert seen["teacher"] == [8, 8]  # cutmixpick: the teacher scores the whole mixed batch


# ------------------------------------------------------------------ runs through the CLI
@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("r2kd_teacher")
    out = tmp / "teacher"
    assert main(["--recipe", str(tiny_recipe(tmp)), "--out", str(out)]) == 0
    return out / "best.pt"


def r2kd_recipe(tmp_path: Path, teacher: Path, method: str) -> Path:
    return tiny_recipe(
        tmp_path,
        f"method: {{name: r2kd, {method}}}\nteacher: {{name: resnet8, checkpoint: {teacher}}}\n",
    )


def test_run_reports_teachers_and_logs_every_term(tmp_path: Path, tiny_teacher: Path) -> None:
    recipe = r2kd_recipe(tmp_path, tiny_teacher, "augment: cutmix")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out), "train.epochs=2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("teacher_top1", "pruned_teacher_top1", "mixed_teacher_top1"):
        assert 0.0 <= summary[key] <= 100.0, key
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"ce", "value", "rank", "aug_value", "aug_rank", "top1"} <= set(row)
    assert summary["top1"] > 100 / 8  # better than chance on 8 classes


def test_structured_pruning_run(tmp_path: Path, tiny_teacher: Path, caplog) -> None:
    recipe = r2kd_recipe(
        tmp_path, tiny_teacher, "prune: structured, prune_amount: 0.25, augment: cutmixpick"
    )
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "run"), "train.epochs=1"]) == 0
    assert "pruned teacher (structured, amount 0.25)" in caplog.text  # the `kdzoo` logger


def test_resume_after_sigterm_is_bit_exact(tmp_path: Path, tiny_teacher: Path, monkeypatch) -> None:
    """Augmentation draws and the pruned teacher's BatchNorm statistics (released quirk) come
    back on resume."""
    recipe = r2kd_recipe(tmp_path, tiny_teacher, "augment: cutmix, pruned_bn: train")
    straight = tmp_path / "straight"
    assert main(["--recipe", str(recipe), "--out", str(straight)]) == 0
    cut = tmp_path / "cut"
    run_interrupted_by_sigterm(main, recipe, cut, monkeypatch)  # epoch 2 of 3, mid-way
    assert main(["--resume", str(cut)]) == 0
    weights = assert_same_weights(straight, cut)
    assert any(k.startswith("pruned_teacher.") and "running_mean" in k for k in weights)
    assert same_metrics(straight, cut)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.augment=cutmax", "method.augment 'cutmax' is not one of: none, cutmix"),
        ("method.rank_mode=fast", "method.rank_mode 'fast'"),
        ("method.teacher_mix=1.5", "teacher_mix 1.5 is out of range: must be in [0, 1]"),
    ],
)
def test_bad_options_give_one_line(
    tmp_path: Path, tiny_teacher: Path, capsys, override: str, message: str
) -> None:
    recipe = r2kd_recipe(tmp_path, tiny_teacher, "augment: none")
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "x"), override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_structured_pruning_of_a_shufflenet_teacher_is_a_user_error(tmp_path: Path) -> None:
    cfg = load_recipe(
        tiny_recipe(tmp_path, "method: {name: r2kd, prune: structured}\nteacher: {name: x}\n")
    )
    from common.config import ConfigError
    from common.data import DataSpec

    spec = DataSpec(8, 16, (0.5,) * 3, (0.5,) * 3, 10, 10, [])
    with pytest.raises(ConfigError, match="prune=structured failed on teacher"):
        R2KD.from_config(cfg, build_model("resnet8", 8), build_model("ShuffleV2", 8).eval(), spec)
