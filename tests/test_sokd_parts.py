"""SoKD's parts: the nine feature operations, the relaxed policy, DAM's decoding and losses."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sokd.dam import box_mask, decode_boxes, head_loss, masked_loss
from sokd.ops import NEUTRAL, OPS, apply_op
from sokd.options import ManualOp
from sokd.policy import SUB_POLICIES, DAFAPolicy

REPO = Path(__file__).resolve().parents[1]


def features(seed: int = 0) -> torch.Tensor:
    return torch.randn(3, 6, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", OPS)
def test_every_operation_keeps_the_shape_and_has_a_finite_magnitude_gradient(name: str) -> None:
    x = features()
    m = torch.tensor(0.8, requires_grad=True)
    out = apply_op(name, x, m, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    assert m.grad is not None and torch.isfinite(m.grad)


@pytest.mark.parametrize("name", sorted(NEUTRAL))
def test_the_neutral_magnitude_is_the_identity(name: str) -> None:
    x = features()
    torch.testing.assert_close(apply_op(name, x, NEUTRAL[name]), x, atol=1e-5, rtol=0)
    assert not torch.allclose(apply_op(name, x, 1.0, torch.Generator().manual_seed(2)), x)


def test_the_magnitude_gradient_is_straight_through() -> None:
    """Eq. 10: d out / d m = 1 per element, whatever the operation."""
    x = features()
    for name in OPS:
        m = torch.tensor(0.3, requires_grad=True)
        apply_op(name, x, m, torch.Generator().manual_seed(0)).sum().backward()
        assert m.grad == pytest.approx(float(x.numel())), name


def test_geometric_operations_move_the_map_as_their_range_says() -> None:
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 2] = 1.0
    moved = apply_op("TranslateX", x, 0.5 + 0.25 / 0.9)  # v = 0.25 of the map: 2 pixels right
    assert moved[0, 0, 3, 4] == pytest.approx(1.0, abs=1e-5) and moved.sum() == pytest.approx(1.0)
    half = apply_op("Rotate", torch.ones(1, 1, 8, 8), 1.0)  # +30 degrees: corners leave
    assert half.sum() < 64 and half[0, 0, 4, 4] == pytest.approx(1.0, abs=1e-5)


def test_cutout_and_channel_drop_zero_what_they_say() -> None:
    x = torch.ones(2, 10, 20, 20)
    cut = apply_op("Cutout", x, 1.0, torch.Generator().manual_seed(3))  # side 0.2 of the map
    zeros = int((cut[0, 0] == 0).sum())
    assert 0 < zeros <= 16 and torch.equal(cut[0], cut[1])  # one hole a batch, 4 x 4 or less
    dropped = apply_op("ChannelDrop", x, 1.0, torch.Generator().manual_seed(4))  # p = 0.5
    per_channel = dropped.sum((0, 2, 3))
    assert set(per_channel.tolist()) <= {0.0, 800.0} and 0 < (per_channel == 0).sum() < 10
    shuffled = apply_op("ChannelShuffle", torch.arange(10.0).view(1, 10, 1, 1).expand(1, 10, 2, 2),
                        0.0, torch.Generator().manual_seed(5))  # fmt: skip
    assert sorted(shuffled[0, :, 0, 0].tolist()) == list(range(10))


def test_an_unknown_operation_names_the_nine() -> None:
    with pytest.raises(ValueError, match="ShearX, ShearY"):
        apply_op("Solarize", features(), 0.5)
    assert set(typing.get_args(ManualOp)) == {"", *OPS}  # the recipes' choice is this list


def test_the_search_space_is_the_36_pairs_in_list_order() -> None:
    assert len(SUB_POLICIES) == 36 and SUB_POLICIES[0] == ("ShearX", "ShearY")
    assert all(OPS.index(a) < OPS.index(b) for a, b in SUB_POLICIES)


def test_the_policy_passes_gradients_to_alpha_beta_and_m() -> None:
    policy = DAFAPolicy()
    gen, ops = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    draw = policy.draw(gen, ops)
    x = features()
    out = policy(x, draw, ops)
    assert out.shape == x.shape
    (out - x.flip(0)).pow(2).mean().backward()
    for p in (policy.logits, policy.probability, policy.magnitude):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    again = policy(x, draw, ops)  # the same draw repeats the same augmentation
    torch.testing.assert_close(again, out.detach())


def test_the_relaxed_choice_tends_to_the_hard_one_as_the_temperature_falls() -> None:
    logits = torch.tensor([0.3, 1.2, -0.5, 0.9])
    gumbel = -torch.log(-torch.log(torch.rand(4, generator=torch.Generator().manual_seed(0))))
    hard = F.one_hot((logits + gumbel).argmax(), 4).float()
    gaps = []
    for tau in (1.0, 0.5, 0.1, 0.01):
        policy = DAFAPolicy(temperature=tau)
        policy.logits.data = torch.cat([logits, torch.zeros(32)])
        draw = policy.draw(torch.Generator(), torch.Generator())
        draw.gumbel[:4], draw.gumbel[4:] = gumbel, -1e9
        gaps.append(float((policy.mixing_weights(draw).detach()[:4] - hard).abs().sum()))
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-6
    # Relaxed Bernoulli (Eq. 9): beta = 0.8, a fixed u: b -> [u > 1 - beta] as lambda -> 0
    for u, expected in ((0.3, 1.0), (0.1, 0.0)):  # fires iff u > 1 - beta
        fires = [float(DAFAPolicy(bernoulli_temperature=lam).fire(torch.tensor(0.8),
                                                                  torch.tensor(u)))
                 for lam in (1.0, 0.1, 0.01)]  # fmt: skip
        assert abs(fires[-1] - expected) < 1e-6 and abs(fires[0] - expected) > 0.05


def test_fixing_keeps_the_most_likely_sub_policy_with_hard_firings() -> None:
    policy = DAFAPolicy()
    policy.logits.data[5] = 3.0
    policy.probability.data[5] = torch.tensor([1.0 - 1e-6, 1e-6])  # first op always, second never
    assert policy.fix() == 5 and policy.summary()["sokd_subpolicy"] == "+".join(SUB_POLICIES[5])
    ops = torch.Generator().manual_seed(0)
    draw = policy.draw(torch.Generator().manual_seed(1), ops)
    x = features()
    first = SUB_POLICIES[5][0]
    expected = apply_op(first, x, policy.magnitude[5, 0].detach(), ops.set_state(draw.op_state))
    torch.testing.assert_close(policy(x, draw, ops).detach(), expected.detach())


def test_dam_decoding_against_a_hand_made_heatmap() -> None:
    heat = torch.zeros(1, 1, 6, 8)
    heat[0, 0, 1, 2] = 0.9  # a peak
    heat[0, 0, 1, 3] = 0.5  # its neighbour: suppressed by the 3x3 max-pool
    heat[0, 0, 4, 6] = 0.7  # a second peak
    size = torch.zeros(1, 2, 6, 8)
    size[0, :, 1, 2] = torch.tensor([3.0, 2.0])  # w 3, h 2
    size[0, :, 4, 6] = torch.tensor([6.0, 6.0])
    offset = torch.zeros(1, 2, 6, 8)
    offset[0, :, 1, 2] = torch.tensor([0.5, 0.0])  # dx 0.5
    boxes = decode_boxes(heat, size, offset, top_n=2)
    # peak (1, 2): centre x 2.5, y 1 -> x in [1.0, 4.0], y in [0, 2] (inclusive, truncated)
    assert boxes[0, 0].tolist() == [0.0, 1.0, 2.0, 4.0]
    # peak (4, 6): x in [3, 9] clamped to 7, y in [1, 7] clamped to 5
    assert boxes[0, 1].tolist() == [1.0, 3.0, 5.0, 7.0]
    mask = box_mask(boxes, 6, 8)[0, 0]
    expected = torch.zeros(6, 8)
    expected[0:3, 1:5] = 1
    expected[1:6, 3:8] = 1
    assert torch.equal(mask, expected)


def test_dam_losses_are_the_mses_of_eqs_12_and_13() -> None:
    s, t = features(1), features(2)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1
    by_hand = ((s - t)[..., :4, :] ** 2).sum() / s.numel()
    torch.testing.assert_close(masked_loss(s, t, mask), by_hand)
    outs_s, outs_t = (s, s[:, :2], s[:, 2:4]), (t, t[:, :2], t[:, 2:4])
    torch.testing.assert_close(
        head_loss(outs_s, outs_t), sum(F.mse_loss(a, b) for a, b in zip(outs_s, outs_t))
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"policy_objective": "train"},
        {"policy_order": "second"},
        {"relaxation": "sampled"},
        {"shared_search_forward": True},
    ],
    ids=["first-order-aug", "first-order-train", "second-order", "sampled", "shared-forward"],
)
def test_every_policy_estimate_moves_the_policy_and_only_the_policy(options: dict) -> None:
    """One search step: the policy's Adam step happens inside the student's forward, and the
    student, adapters and DAM are left for the engine's optimiser (no gradient taken yet)."""
    from common.batch import Batch
    from common.methods import get_method
    from common.models import build_model
    from sokd.options import SoKDOptions

    torch.manual_seed(0)
    teacher = build_model("resnet20", 10).eval().requires_grad_(False)
    method = get_method("sokd").build(
        build_model("resnet8", 10), teacher, SoKDOptions(**options), image_size=32
    )
    method.train().start_epoch(0)
    before = {n: p.detach().clone() for n, p in method.named_parameters()}
    batch = Batch(torch.randn(8, 3, 32, 32), torch.arange(8) % 10, torch.arange(8))
    method.forward_train(batch)
    moved = {n for n, p in method.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(n.startswith("policy.") for n in moved), moved
    assert all(p.grad is None for n, p in method.named_parameters() if not n.startswith("policy."))


def test_sokd_maps_follow_at_stage_pairing_and_crds_last_stages() -> None:
    """Networks with different stage counts (resnet8: 3 after the stem, ResNet18: 4): over AT
    with `stage_pairing: first` one adapter per paired stage, over CRD each network's last."""
    from common.batch import Batch
    from common.methods import get_method
    from common.models import build_model
    from sokd.options import SoKDOptions

    torch.manual_seed(0)
    teacher = build_model("ResNet18", 10).eval().requires_grad_(False)
    at = get_method("sokd").build(
        build_model("resnet8", 10),
        teacher,
        SoKDOptions(base="at", base_options={"stage_pairing": "first"}, search_epochs=0),
        image_size=32,
    )
    assert at.stage_indices == [1, 2, 3] and len(at.maps.adapters) == 3
    crd = get_method("sokd").build(
        build_model("resnet8", 10),
        teacher,
        SoKDOptions(base="crd", base_options={"n_negatives": 2}, search_epochs=0),
        image_size=32,
        train_targets=torch.arange(8) % 10,
    )
    assert crd.maps.shapes == [(512, 4, 4)] and len(crd.maps.adapters) == 1  # last stages
    batch = Batch(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]), torch.arange(2))
    for method in (at, crd):
        method.train().start_epoch(0)
        _, losses = method.forward_train(batch)
        assert all(torch.isfinite(v) for v in losses.values())


def _policy_gradient(options, batch, implicit_too: bool = False):
    """The policy's gradient of one search step of SoKD over ReviewKD, resnet20 -> resnet8 (the
    same networks, batch and random draws for every `options`), flattened; with `implicit_too`
    also the unrolled estimate's (direct, implicit) terms."""
    from common.methods import get_method
    from common.models import build_model

    torch.manual_seed(0)
    teacher = build_model("resnet20", 10).eval().requires_grad_(False)
    method = get_method("sokd").build(build_model("resnet8", 10), teacher, options, image_size=32)
    method.train().start_epoch(0)
    _, features, teacher_features = method.student_and_teacher(batch.images)
    pairs = method.maps.pairs(method.feature_pairs(features, teacher_features))
    draw = method.policy.draw(*method.generators(batch.images.device))
    grads = method.policy_grads(batch, pairs, draw, None)
    flat = torch.cat([g.flatten() for g in grads])
    if not implicit_too:
        return flat
    direct, implicit = method.unrolled_policy_terms(batch, draw, None)
    return (
        flat,
        torch.cat([g.flatten() for g in direct]),
        torch.cat([g.flatten() for g in implicit]),
    )


def _batch():
    from common.batch import Batch

    torch.manual_seed(3)
    return Batch(torch.randn(8, 3, 32, 32), torch.arange(8) % 10, torch.arange(8))


def test_table5_without_l_con_trains_another_policy_than_with_it() -> None:
    """Table 5's "+ DAFA w/o L_con" and "+ L_con" rows (DAM off, the recipes' own options):
    the policies' gradients on one batch point in different directions (issue 16, item 3;
    with the first-order `train` objective they were parallel, cosine 1.000000)."""
    from common.config import load_recipe

    folder = REPO / "sokd" / "recipes" / "cifar100"
    rows = [f"resnet32x4_resnet8x4_reviewkd_no_dam{s}.yaml" for s in ("", "_no_laug")]
    with_l_con, without = (load_recipe(folder / name).method.options for name in rows)
    assert (with_l_con.policy_objective, without.policy_objective) == ("aug", "train")
    batch = _batch()
    a, b = _policy_gradient(with_l_con, batch), _policy_gradient(without, batch)
    assert a.norm() > 0 and b.norm() > 0 and torch.isfinite(b).all()
    assert float(F.cosine_similarity(a, b, dim=0)) < 0.999


def test_second_order_l_aug_has_its_hessian_term() -> None:
    """`policy_order: second` with L_aug: the outer loss reaches the student through the
    virtual step, so the Hessian term of DARTS' Eq. 8 is not zero (issue 16, item 4: the
    detached student side made it exactly zero, i.e. first order) and the estimate is the
    direct gradient at w' plus that term, not the first-order gradient."""
    from sokd.options import SoKDOptions

    batch = _batch()
    first = _policy_gradient(SoKDOptions(base="reviewkd", alpha=10, beta=10), batch)
    options = SoKDOptions(base="reviewkd", alpha=10, beta=10, policy_order="second")
    second, direct, implicit = _policy_gradient(options, batch, implicit_too=True)
    assert torch.isfinite(implicit).all()
    assert implicit.norm() > 1e-3 * direct.norm() > 0
    torch.testing.assert_close(second, direct + implicit)
    assert not torch.allclose(second, first, rtol=1e-3, atol=1e-6)


def test_the_policy_draws_follow_the_training_seed_unless_method_seed_is_set() -> None:
    """`method.seed` unset: the policy's and the operations' draws are seeded by train.seed, so
    three training seeds draw three augmentation streams (issue 16, item 5: all used seed 0);
    set, it wins whatever train.seed is. From Python (no recipe) the seed torch was given."""
    from types import SimpleNamespace

    from common.config import load_recipe
    from common.methods import get_method
    from common.models import build_model

    recipe = REPO / "sokd" / "recipes" / "cifar100" / "resnet56_resnet20_fitnet.yaml"
    teacher = build_model("resnet20", 10).eval().requires_grad_(False)
    spec = SimpleNamespace(image_size=32)

    def first_draw(method) -> torch.Tensor:
        generators = method.generators(torch.device("cpu"))
        draw = method.policy.draw(*generators)
        return torch.cat(
            [draw.gumbel, draw.uniforms.flatten(), torch.rand(4, generator=generators[1])]
        )

    def drawn(*overrides: str) -> torch.Tensor:
        cfg = load_recipe(recipe, list(overrides))
        return first_draw(
            get_method("sokd").from_config(cfg, build_model("resnet8", 10), teacher, spec)
        )

    seeds = [drawn(f"train.seed={s}") for s in (0, 1, 2)]
    assert not torch.equal(seeds[0], seeds[1]) and not torch.equal(seeds[1], seeds[2])
    fixed = [drawn(f"train.seed={s}", "method.seed=5") for s in (0, 1)]
    assert torch.equal(fixed[0], fixed[1]) and not torch.equal(fixed[0], seeds[0])
    assert torch.equal(drawn("train.seed=2", "method.seed=2"), seeds[2])

    torch.manual_seed(1)  # what fit() does with its train.seed before the first step
    options = load_recipe(recipe).method.options
    plain = get_method("sokd").build(build_model("resnet8", 10), teacher, options, image_size=32)
    assert torch.equal(first_draw(plain), seeds[1])


def test_l_d_alone_asks_for_no_boxes_a_constant_head_scores_zero() -> None:
    """Why DAM's boxes never grow with L_D alone (sokd/README.md, "DAM"): a head whose last
    layers are zero (a constant output) scores L_D = 0 on any two maps, and the biases of the
    size and offset branches' last layers get exactly zero gradient (they cancel between the
    student and teacher sides; the heatmap's only through its sigmoid's curvature)."""
    from sokd.dam import DAMHead

    torch.manual_seed(0)
    student, teacher = torch.randn(2, 6, 8, 8), torch.randn(2, 6, 8, 8)
    head = DAMHead(6)
    for branch in (head.heat, head.size, head.offset):
        torch.nn.init.normal_(branch[-1].weight, std=0.5)
    loss = head_loss(head(student), head(teacher))
    assert loss > 0
    biases = [head.size[-1].bias, head.offset[-1].bias]
    for grad in torch.autograd.grad(loss, biases):
        assert torch.count_nonzero(grad) == 0
    for branch in (head.heat, head.size, head.offset):
        torch.nn.init.zeros_(branch[-1].weight)
    assert head_loss(head(student), head(teacher)) == 0


def test_min_box_floors_each_box_side_and_zero_is_the_heads_own_size() -> None:
    """`min_box` (an option for what the paper leaves open): each decoded box at least that
    fraction of the map's side; 0 leaves the head's sizes alone (here 0: one-pixel boxes)."""
    heat = torch.zeros(1, 1, 16, 16)
    heat[0, 0, 8, 8] = 0.9
    size, offset = torch.zeros(1, 2, 16, 16), torch.zeros(1, 2, 16, 16)
    one = decode_boxes(heat, size, offset, top_n=1)
    assert one[0, 0].tolist() == [8.0, 8.0, 8.0, 8.0]
    floored = decode_boxes(heat, size, offset, top_n=1, min_box=0.25)  # 4 px of 16
    assert floored[0, 0].tolist() == [6.0, 6.0, 10.0, 10.0]
    size[0, :, 8, 8] = 10.0  # a head's box larger than the floor is kept
    assert decode_boxes(heat, size, offset, 1, 0.25)[0, 0].tolist() == [3.0, 3.0, 13.0, 13.0]
    whole = box_mask(decode_boxes(heat, size * 0, offset, 1, 1.0), 16, 16)
    assert float(whole.mean()) == 1.0


def test_the_epoch_records_the_mask_coverage() -> None:
    """`sokd_mask_coverage` in metrics.jsonl: the mean fraction of a map inside DAM's mask over
    the epoch's steps (restarted once read); `min_box: 1` masks the whole map."""
    from common.batch import Batch
    from common.methods import get_method
    from common.models import build_model
    from sokd.options import SoKDOptions

    torch.manual_seed(0)
    teacher = build_model("resnet20", 10).eval().requires_grad_(False)
    batch = Batch(torch.randn(4, 3, 32, 32), torch.arange(4), torch.arange(4))
    coverage = {}
    for min_box in (0.0, 1.0):
        options = SoKDOptions(dafa=False, min_box=min_box)
        method = get_method("sokd").build(build_model("resnet8", 10), teacher, options)
        method.train().start_epoch(0)
        for _ in range(2):
            method.forward_train(batch)
        coverage[min_box] = method.epoch_metrics()["sokd_mask_coverage"]
        assert "sokd_mask_coverage" not in method.epoch_metrics()  # restarted
    assert 0 < coverage[0.0] < 0.1 and coverage[1.0] == 1.0


def _old_policy(policy: DAFAPolicy, x: torch.Tensor, draw, ops: torch.Generator) -> torch.Tensor:
    """Eqs. 6 and 8 as first written: b (O + m - sg(m)) + (1 - b) F for each operation, then
    the weighted sum of the 36 sub-policies."""
    ops.set_state(draw.op_state)
    weights = policy.mixing_weights(draw)
    total = 0
    for index, names in enumerate(SUB_POLICIES):
        out = x
        for slot, name in enumerate(names):
            p, m = policy.probability[index, slot], policy.magnitude[index, slot]
            b = policy.fire(p, draw.uniforms[index, slot])
            out = b * apply_op(name, out, m, ops) + (1 - b) * out
        total = total + weights[index] * out
    return total


def test_the_fused_blend_is_the_papers_formula_in_values_and_gradients() -> None:
    """`blend` (one lerp, the straight-through magnitude gradient in its backward) and the
    fused weighted sum give Eq. 8 as first written, to 1e-6, and the same gradients to alpha,
    beta, m and the features."""
    gen = torch.Generator().manual_seed(4)
    results = []
    for fused in (True, False):
        policy = DAFAPolicy()
        with torch.no_grad():
            policy.logits.normal_(generator=gen.manual_seed(5))
            policy.probability.uniform_(0.05, 0.95, generator=gen)
            policy.magnitude.uniform_(0.0, 1.0, generator=gen)
        ops = torch.Generator().manual_seed(1)
        draw = policy.draw(torch.Generator().manual_seed(0), ops)
        x = features().requires_grad_(True)
        out = policy(x, draw, ops) if fused else _old_policy(policy, x, draw, ops)
        (out * features(9)).sum().backward()
        grads = [p.grad for p in policy.parameters()]
        results.append((out.detach(), x.grad, *grads))
    for new, old in zip(*results):
        torch.testing.assert_close(new, old, rtol=1e-6, atol=1e-6)
