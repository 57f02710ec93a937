"""SLKD unit tests: gradients (who learns from what), detaching, fusion, options, recipes."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from common.batch import Batch
from common.config import ConfigError, load_recipe
from common.config.loader import recipe_name
from common.methods.losses import kd_loss
from common.models import build_model
from slkd.losses import fuse_logits, fusion_weights
from slkd.method import SLKD
from slkd.options import SLKDOptions
from slkd.sl_teachers import build_sl_teachers

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "slkd" / "recipes"
CLASSES = 6


pytestmark = pytest.mark.usefixtures("one_thread")


def make(num_sl: int = 2, **options) -> SLKD:
    """resnet8 student, teacher and SL-teachers (random weights) on 16x16 images."""
    torch.manual_seed(0)
    opts = SLKDOptions(num_sl_teachers=num_sl, **options)
    sl = [build_model("resnet8", CLASSES) for _ in range(num_sl)]
    method = SLKD(build_model("resnet8", CLASSES), build_model("resnet8", CLASSES), opts, sl)
    return method.train()


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, CLASSES, (n,), generator=g)


def params(module: nn.Module) -> list[nn.Parameter]:
    return list(module.parameters())


def grads_of(loss: torch.Tensor, module: nn.Module) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, params(module), retain_graph=True, allow_unused=True))


def sl_teacher_loss(losses: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(v for k, v in losses.items() if k.startswith("sl_teacher"))


def test_student_and_both_sl_teachers_get_gradients_and_the_teacher_none() -> None:
    method = make()
    images, targets = batch()
    _, losses = method(Batch(images, targets))
    assert set(losses) == {
        "ce", "kd", "sl_ce", "sl_kd",
        "sl_teacher1_ce", "sl_teacher1_kd", "sl_teacher2_ce", "sl_teacher2_kd",
    }  # fmt: skip
    sum(losses.values()).backward()
    for net in (method.student, *method.sl_teachers):
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None and not p.requires_grad for p in method.teacher.parameters())
    trainable = {id(p) for p in method.trainable_parameters()}
    assert trainable == {id(p) for n in (method.student, *method.sl_teachers) for p in params(n)}


def test_one_optimiser_step_equals_separate_kd_steps_of_each_sl_teacher() -> None:
    """Detached, SL-teacher i follows exactly Eq. 4/5 with its own SGD (the released code's
    separate optimisers): one SGD over student + SL-teachers changes nothing for it."""
    method = make()
    alone = copy.deepcopy(method.sl_teachers[1])
    images, targets = batch()
    sgd = {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
    joint = torch.optim.SGD(method.trainable_parameters(), **sgd)
    single = torch.optim.SGD(alone.parameters(), **sgd)
    for _ in range(2):
        _, losses = method(Batch(images, targets))
        joint.zero_grad()
        sum(losses.values()).backward()
        joint.step()
        z = alone(images)[0]
        own = 0.1 * F.cross_entropy(z, targets) + 0.9 * kd_loss(
            z, method.teacher_logits(images), 4.0
        )
        single.zero_grad()
        own.backward()
        single.step()
    for (name, a), b in zip(
        method.sl_teachers[1].state_dict().items(), alone.state_dict().values()
    ):
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6), name


@pytest.mark.parametrize("detach", [True, False])
def test_student_term_reaches_the_sl_teachers_only_when_coupled(detach: bool) -> None:
    method = make(detach_sl_teachers=detach)
    _, losses = method(Batch(*batch()))
    total = sum(losses.values())
    for net in method.sl_teachers:
        from_total = grads_of(total, net)
        from_own_terms = grads_of(sl_teacher_loss(losses), net)
        same = all(
            torch.allclose(a, b, rtol=0, atol=1e-7) for a, b in zip(from_total, from_own_terms)
        )
        assert same is detach
    # The student's SL term alone: no gradient at all to the SL-teachers when detached.
    student_sl = grads_of(losses["sl_kd"], method.sl_teachers[0])
    assert all(g is None for g in student_sl) is detach


def test_sl_teachers_are_independent_random_networks_of_the_teacher_arch() -> None:
    nets = build_sl_teachers("resnet32x4", 2, 100)
    a, b = (dict(n.named_parameters()) for n in nets)
    assert a.keys() == b.keys() and not torch.equal(a["conv1.weight"], b["conv1.weight"])
    with pytest.raises(ConfigError, match="did you mean 'resnet8x4'"):
        build_sl_teachers("resnet8x5", 2, 100)


def test_fusion_with_rho_matches_a_hand_computation() -> None:
    z1, z2 = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 0.0, -1.0]])
    fused = fuse_logits([z1, z2], fusion_weights(2, 0.3))
    assert torch.allclose(fused, torch.tensor([[2.4, 0.6, 0.2]]))

    class Fixed(nn.Module):
        """Returns the same logits for every image (one parameter so it can learn)."""

        def __init__(self, logits: list[float]) -> None:
            super().__init__()
            self.z = nn.Parameter(torch.tensor(logits))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
            return self.z.expand(x.shape[0], -1), {}

    student, teacher = Fixed([0.5, -0.5, 0.0]), Fixed([0.0, 0.0, 4.0])
    opts = SLKDOptions(rho=0.3, eta=3.0, temperature=2.0)
    method = SLKD(student, teacher, opts, [Fixed([1.0, 2.0, 3.0]), Fixed([3.0, 0.0, -1.0])])
    _, losses = method(Batch(torch.zeros(1, 3, 4, 4), torch.tensor([2])))

    def softmax(z: list[float], t: float) -> list[float]:
        e = [math.exp(v / t) for v in z]
        return [v / sum(e) for v in e]

    p_sl, p_s = softmax([2.4, 0.6, 0.2], 2.0), softmax([0.5, -0.5, 0.0], 2.0)
    kl = sum(a * math.log(a / b) for a, b in zip(p_sl, p_s))
    assert losses["sl_kd"].item() == pytest.approx(3.0 * 0.9 * 4.0 * kl, rel=1e-5)
    ce = -math.log(softmax([0.5, -0.5, 0.0], 1.0)[2])
    assert losses["sl_ce"].item() == pytest.approx(3.0 * 0.1 * ce, rel=1e-5)
    assert losses["ce"].item() == pytest.approx(0.1 * ce, rel=1e-5)


def test_fusion_weights_for_one_two_and_more_sl_teachers() -> None:
    assert fusion_weights(1, 0.5) == [1.0]
    assert fusion_weights(2, 0.7) == pytest.approx([0.7, 0.3])
    assert fusion_weights(4, 0.5) == pytest.approx([0.25] * 4)
    assert fusion_weights(3, 0.5, [0.5, 0.3, 0.2]) == [0.5, 0.3, 0.2]


@pytest.mark.parametrize("num", [1, 3])
def test_any_number_of_sl_teachers_learns_and_is_evaluated(num: int) -> None:
    method = make(num_sl=num)
    _, losses = method(Batch(*batch()))
    assert {f"sl_teacher{i}_kd" for i in range(1, num + 1)} <= set(losses)
    assert f"sl_teacher{num + 1}_kd" not in losses
    assert list(method.extra_eval_models()) == [f"sl_teacher{i}" for i in range(1, num + 1)]
    sum(losses.values()).backward()
    assert all(p.grad is not None for net in method.sl_teachers for p in net.parameters())


def test_loss_weights_follow_eq7() -> None:
    method = make(eta=3.0, teacher_weight=1.0)
    images, targets = batch()
    _, losses = method(Batch(images, targets))
    assert losses["sl_ce"].item() == pytest.approx(3.0 * losses["ce"].item(), rel=1e-6)
    student_logits = method.student(images)[0]
    expected_kd = 0.9 * kd_loss(student_logits, method.teacher_logits(images), 4.0)
    assert losses["kd"].item() == pytest.approx(expected_kd.item(), rel=1e-5)
    released = make(eta=1.0, sl_ce_weight=1.0, sl_kd_weight=1.0)
    _, rel = released(Batch(images, targets))
    assert rel["sl_ce"].item() == pytest.approx(10.0 * rel["ce"].item(), rel=1e-6)


def perturbed_teacher_losses(method: SLKD) -> tuple[dict, dict]:
    images, targets = batch()
    with torch.no_grad():
        _, before = method(Batch(images, targets))
        for p in method.teacher.parameters():
            p.add_(0.5 * torch.randn_like(p))
        _, after = method(Batch(images, targets))
    return before, after


def test_table4_student_from_sl_teachers_only_ignores_the_teacher() -> None:
    method = make(student_sources="sl_teachers")
    before, after = perturbed_teacher_losses(method)
    assert set(before) == {
        "sl_ce",
        "sl_kd",
        *(f"sl_teacher{i}_{t}" for i in (1, 2) for t in ("ce", "kd")),
    }
    assert before["sl_kd"].item() == pytest.approx(after["sl_kd"].item(), rel=1e-6)
    assert before["sl_teacher1_kd"].item() != pytest.approx(after["sl_teacher1_kd"].item())


def test_table4_student_from_teacher_only_ignores_the_sl_teachers() -> None:
    method = make(student_sources="teacher")
    images, targets = batch()
    _, losses = method(Batch(images, targets))
    assert {"ce", "kd"} <= set(losses) and not {"sl_ce", "sl_kd"} & set(losses)
    student_terms = losses["ce"] + losses["kd"]
    assert all(g is None for g in grads_of(student_terms, method.sl_teachers[0]))


def test_stage1_freezes_the_student_and_stage2_the_sl_teachers() -> None:
    stage1 = make(mode="sequential_sl_teachers")
    _, losses = stage1(Batch(*batch()))
    assert set(losses) == {f"sl_teacher{i}_{t}" for i in (1, 2) for t in ("ce", "kd")}
    assert not any(p.requires_grad for p in stage1.student.parameters())
    assert not stage1.student.training and list(stage1.extra_eval_models()) == [
        "sl_teacher1", "sl_teacher2",
    ]  # fmt: skip

    stage2 = make(mode="sequential_student", sl_teacher_checkpoint="unused-here.pt")
    _, losses = stage2(Batch(*batch()))
    assert set(losses) == {"ce", "kd", "sl_ce", "sl_kd"}
    assert not any(p.requires_grad for p in stage2.sl_teachers.parameters())
    assert all(not net.training for net in stage2.sl_teachers) and stage2.student.training
    assert stage2.extra_eval_models() == {}
    assert set(stage2.reference_models()) == {"teacher", "sl_teacher1", "sl_teacher2"}
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in stage2.student.parameters())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.mode=serial", "method.mode 'serial' is not one of: parallel, sequential_sl"),
        ("method.student_sources=nobody", "student_sources 'nobody'"),
        ("method.num_sl_teachers=0", "num_sl_teachers 0 is out of range: must be >= 1"),
        ("method.fusion_weights=[0.5,0.5,0.5]", "3 weights for 2"),
        ("method.fusion_weights=[0.6,0.6]", "must sum to 1"),
        ("method.rho=1.5", r"rho 1.5 is out of range: must be in \[0, 1\]"),
        ("method.mode=sequential_student", "sl_teacher_checkpoint=PATH"),
        ("method.etta=2", "did you mean 'method.eta'"),
    ],
)
def test_bad_options_are_refused_with_one_clear_message(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_recipe(RECIPES / "cifar100" / "resnet32x4_resnet8x4.yaml", [override])


def test_paper_recipes_carry_the_paper_defaults() -> None:
    opts = load_recipe(RECIPES / "cifar100" / "resnet32x4_resnet8x4.yaml").method.options
    assert (opts.teacher_weight, opts.eta, opts.temperature, opts.rho) == (1.0, 3.0, 4.0, 0.5)
    assert (opts.sl_ce, opts.sl_kd, opts.num_sl_teachers) == (0.1, 0.9, 2)
    assert opts.detach_sl_teachers and opts.mode == "parallel" and opts.sl_teacher_arch == ""
    imagenet = load_recipe(RECIPES / "imagenet" / "resnet34_resnet18.yaml")
    o = imagenet.method.options
    assert (o.temperature, o.ce_weight, o.kd_weight, o.sl_ce, o.sl_kd) == (1.0, 0.5, 0.5, 0.5, 0.5)
    assert (imagenet.teacher.name, imagenet.student.name) == ("resnet34", "resnet18")
    released = load_recipe(RECIPES / "cifar100" / "resnet32x4_resnet8x4_released.yaml")
    r = released.method.options
    assert (r.eta, r.sl_ce, r.sl_kd, r.detach_sl_teachers) == (1.0, 1.0, 1.0, False)


def test_every_sequential_recipe_reads_its_stage1_run() -> None:
    """Each stage 2 reads the stage 1 of its teacher AT ITS OWN LEARNING RATE: in parallel SLKD
    the SL-teachers train at the run's rate (0.01 with ShuffleNet/MobileNetV2 students, as in
    the released code), so Table 6's SLKD* rows get SL-teachers trained at 0.01 too
    (`<teacher>_sl_teachers_lr0_01.yaml`), Table 5's at 0.05 (`<teacher>_sl_teachers.yaml`)."""
    stage2 = sorted((RECIPES / "cifar100").glob("*_sequential.yaml"))
    assert len(stage2) == 11  # Tables 5 and 6
    rates = {}
    for path in stage2:
        cfg = load_recipe(path)
        # Stage 2 changes nothing but the mode and the checkpoint: same row otherwise.
        parallel = load_recipe(path.with_name(path.name.replace("_sequential", "")))
        assert cfg.optim == parallel.optim and cfg.student == parallel.student
        suffix = "_lr0_01" if parallel.optim.lr == 0.01 else ""
        stage1 = RECIPES / "cifar100" / f"{cfg.teacher.name}_sl_teachers{suffix}.yaml"
        first = load_recipe(stage1)
        assert first.method.options.mode == "sequential_sl_teachers"
        assert first.teacher == cfg.teacher
        expected = f"runs/{recipe_name(stage1)}/seed0/last.pt"
        assert cfg.method.options.sl_teacher_checkpoint == expected, path.name
        # The SL-teachers learn at the rate (and schedule) they have in the parallel run.
        assert first.optim == parallel.optim and first.train == parallel.train, path.name
        rates[path.stem] = first.optim.lr
    table6 = ("resnet32x4_ShuffleV2", "resnet32x4_ShuffleV1", "ResNet50_MobileNetV2",
              "vgg13_MobileNetV2", "wrn_40_2_ShuffleV1")  # fmt: skip
    assert {k for k, lr in rates.items() if lr == 0.01} == {f"{r}_sequential" for r in table6}
    stage1_files = {p.stem for p in (RECIPES / "cifar100").glob("*_sl_teachers*.yaml")}
    used = {Path(load_recipe(p).method.options.sl_teacher_checkpoint).parts[3] for p in stage2}
    assert stage1_files == used  # no stage 1 without a stage 2 reading it
