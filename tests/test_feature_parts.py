"""The building blocks of the feature baselines (FitNet, AT, CRD, ReviewKD) against hand
computations written here (explicit loops over plain Python numbers, not the code under test):
AT and HCL values, FitNet's regressor and ReviewKD's fusion on every SoKD pair, the dry forward
that sizes them, and CRD's memory, normalisers, NCE loss and negative sampler."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cache
from pathlib import Path

import pytest
import torch
from torch import nn

from common.errors import ConfigError
from common.methods.abf import ReviewFusion, student_levels, teacher_levels
from common.methods.conv_reg import ConvReg
from common.methods.crd_embed import Embed
from common.methods.crd_loss import NCECriterion
from common.methods.crd_memory import ContrastMemory, gather_for_memory
from common.methods.crd_sampling import build_class_index, sample_contrast_indices
from common.methods.feature_shapes import feature_shapes
from common.methods.losses import at_loss, hcl_loss
from common.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = Path(__file__).resolve().parents[1]

CIFAR_PAIRS = [
    ("resnet56", "resnet20"),
    ("resnet110", "resnet32"),
    ("resnet32x4", "resnet8x4"),
    ("wrn_40_2", "wrn_16_2"),
    ("wrn_40_2", "wrn_40_1"),
    ("vgg13", "vgg8"),
    ("resnet32x4", "ShuffleV1"),
    ("wrn_40_2", "ShuffleV1"),
    ("vgg13", "MobileNetV2"),
    ("ResNet50", "MobileNetV2"),
    ("resnet32x4", "ShuffleV2"),
]
IMAGENET_PAIRS = [("resnet34", "resnet18"), ("resnet50", "MobileNetV1")]


@cache
def zoo_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(
        name, 1000 if name in ("resnet34", "resnet18", "resnet50", "MobileNetV1") else 100
    )


@cache
def zoo_shapes(name: str, size: int) -> dict:
    return feature_shapes(zoo_model(name), size)


# ---------------------------------------------------------------------------------------------
# Hand computations on nested lists
# ---------------------------------------------------------------------------------------------


def block_mean(fmap: list, out: int) -> list:
    """(C, H, W) nested list averaged over (H/out) x (W/out) blocks (H divisible by out)."""
    h = len(fmap[0])
    step = h // out
    return [
        [
            [
                sum(ch[i * step + a][j * step + b] for a in range(step) for b in range(step))
                / (step * step)
                for j in range(out)
            ]
            for i in range(out)
        ]
        for ch in fmap
    ]


def attention(fmap: list, p: float) -> list[float]:
    """Mean over channels of |x|^p per position, flattened row-major, L2-normalised."""
    c, h, w = len(fmap), len(fmap[0]), len(fmap[0][0])
    flat = [sum(abs(fmap[k][i][j]) ** p for k in range(c)) / c for i in range(h) for j in range(w)]
    norm = max(math.sqrt(sum(v * v for v in flat)), 1e-12)
    return [v / norm for v in flat]


def at_by_hand(feats_s: list[torch.Tensor], feats_t: list[torch.Tensor], p: float) -> float:
    total = 0.0
    for f_s, f_t in zip(feats_s, feats_t):
        hs, ht = f_s.shape[2], f_t.shape[2]
        diffs = []
        for b in range(f_s.shape[0]):
            ms, mt = f_s[b].tolist(), f_t[b].tolist()
            if hs > ht:
                ms = block_mean(ms, ht)
            if ht > hs:
                mt = block_mean(mt, hs)
            a_s, a_t = attention(ms, p), attention(mt, p)
            diffs += [(x - y) ** 2 for x, y in zip(a_s, a_t)]
        total += sum(diffs) / len(diffs)
    return total


def mse(a: list, b: list) -> float:
    fa = [x for ch in a for row in ch for x in row]
    fb = [x for ch in b for row in ch for x in row]
    return sum((x - y) ** 2 for x, y in zip(fa, fb)) / len(fa)


# The pyramid of HCL per map height: (pooled size, weight), typed out, and the weight sum.
HCL_PYRAMID = {
    8: ([(4, 0.5), (2, 0.25), (1, 0.125)], 1.875),
    4: ([(2, 0.5), (1, 0.25)], 1.75),
    2: ([(1, 0.5)], 1.5),
    1: ([], 1.0),
}


def hcl_by_hand(feats_s: list[torch.Tensor], feats_t: list[torch.Tensor]) -> float:
    total = 0.0
    for f_s, f_t in zip(feats_s, feats_t):
        pyramid, weight_sum = HCL_PYRAMID[f_s.shape[2]]
        batch = f_s.shape[0]
        level = sum(mse(f_s[b].tolist(), f_t[b].tolist()) for b in range(batch)) / batch
        for size, weight in pyramid:
            pooled = [
                mse(block_mean(f_s[b].tolist(), size), block_mean(f_t[b].tolist(), size))
                for b in range(batch)
            ]
            level += weight * sum(pooled) / batch
        total += level / weight_sum
    return total


# ---------------------------------------------------------------------------------------------
# AT and HCL
# ---------------------------------------------------------------------------------------------


def test_at_loss_equal_sizes_matches_hand_computation() -> None:
    g = torch.Generator().manual_seed(1)
    feats_s = [torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 5, 2, 2, generator=g)]
    feats_t = [torch.randn(2, 6, 4, 4, generator=g), torch.randn(2, 2, 2, 2, generator=g)]
    expected = at_by_hand(feats_s, feats_t, 2.0)
    assert at_loss(feats_s, feats_t, p=2.0).item() == pytest.approx(expected, rel=1e-5)
    # p enters the attention maps: another p gives another, equally hand-checked value.
    expected_p4 = at_by_hand(feats_s, feats_t, 4.0)
    assert abs(expected_p4 - expected) > 1e-3
    assert at_loss(feats_s, feats_t, p=4.0).item() == pytest.approx(expected_p4, rel=1e-5)


def test_at_loss_pools_the_larger_feature_map_before_the_attention() -> None:
    """Student 4x4 vs teacher 2x2 and the other way round: the larger FEATURE map is averaged
    to the smaller size, then its attention is taken (pooling the attention map instead gives
    a different number, checked too)."""
    g = torch.Generator().manual_seed(2)
    big = torch.randn(2, 3, 4, 4, generator=g)
    small = torch.randn(2, 4, 2, 2, generator=g)
    expected = at_by_hand([big], [small], 2.0)
    assert at_loss([big], [small]).item() == pytest.approx(expected, rel=1e-5)
    expected_swapped = at_by_hand([small], [big], 2.0)
    assert at_loss([small], [big]).item() == pytest.approx(expected_swapped, rel=1e-5)

    # The other order (attention of the 4x4 map, then pooled and renormalised) differs.
    diffs = []
    for b in range(2):
        fmap = big[b].tolist()
        energy = [
            [[sum(fmap[k][i][j] ** 2 for k in range(3)) / 3 for j in range(4)] for i in range(4)]
        ]
        pooled_after = attention(block_mean(energy, 2), 1.0)
        diffs += [(x - y) ** 2 for x, y in zip(pooled_after, attention(small[b].tolist(), 2.0))]
    assert abs(sum(diffs) / len(diffs) - expected) > 1e-4


def test_at_loss_is_zero_for_identical_maps_and_sums_stages() -> None:
    g = torch.Generator().manual_seed(3)
    f = [torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 2, 2, generator=g)]
    other = [torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 2, 2, generator=g)]
    assert at_loss(f, f).item() == pytest.approx(0.0, abs=1e-12)
    both = at_loss(f, other).item()
    assert both == pytest.approx(
        at_loss(f[:1], other[:1]).item() + at_loss(f[1:], other[1:]).item()
    )
    with pytest.raises(ValueError, match="as many"):
        at_loss(f, other[:1])


def test_hcl_loss_matches_hand_pyramid() -> None:
    g = torch.Generator().manual_seed(4)
    shapes = [(2, 2, 8, 8), (2, 3, 4, 4), (2, 2, 2, 2), (2, 4, 1, 1)]
    feats_s = [torch.randn(*s, generator=g) for s in shapes]
    feats_t = [torch.randn(*s, generator=g) for s in shapes]
    expected = hcl_by_hand(feats_s, feats_t)
    assert hcl_loss(feats_s, feats_t).item() == pytest.approx(expected, rel=1e-5)
    # Level by level too (each level's own pyramid and weight sum).
    for f_s, f_t in zip(feats_s, feats_t):
        assert hcl_loss([f_s], [f_t]).item() == pytest.approx(hcl_by_hand([f_s], [f_t]), rel=1e-5)


def test_hcl_loss_is_zero_for_identical_maps() -> None:
    f = [torch.randn(2, 3, 8, 8), torch.randn(2, 3, 1, 1)]
    assert hcl_loss(f, f).item() == 0.0


# ---------------------------------------------------------------------------------------------
# feature_shapes
# ---------------------------------------------------------------------------------------------


def bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k
    }


def test_feature_shapes_reads_the_models_shapes() -> None:
    shapes = feature_shapes(build_model("resnet8x4", 100), 32)
    assert shapes["feats"] == [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)]
    assert shapes["preact_feats"] == shapes["feats"]
    assert shapes["pooled_feat"] == (256,)
    # Another image size gives other spatial sizes (nothing is hard-coded).
    assert feature_shapes(build_model("resnet8x4", 100), (16, 24))["feats"][-1] == (256, 4, 6)


@pytest.mark.parametrize("start_training", [True, False])
def test_feature_shapes_leaves_bn_statistics_and_modes_alone(start_training: bool) -> None:
    model = build_model("resnet8", 10)
    model.train(start_training)
    model.layer1.eval()  # a submodule in another mode than its parent must keep it
    modes = {name: m.training for name, m in model.named_modules()}
    before = bn_state(model)
    rng_before = torch.get_rng_state()
    feature_shapes(model, 32)
    assert all(torch.equal(before[k], v) for k, v in bn_state(model).items())
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global stream is untouched


def test_feature_shapes_train_mode_updates_bn_statistics_once() -> None:
    """mdistiller's quirk, on request: one train-mode forward moves the running statistics."""
    model = build_model("resnet8", 10).eval()
    before = bn_state(model)
    feature_shapes(model, 32, train_mode=True)
    after = bn_state(model)
    assert not model.training
    counts = [k for k in after if k.endswith("num_batches_tracked")]
    assert counts and all(int(after[k]) == int(before[k]) + 1 for k in counts)
    means = [k for k in after if k.endswith("running_mean")]
    assert all(not torch.equal(before[k], after[k]) for k in means)


# ---------------------------------------------------------------------------------------------
# FitNet's ConvReg
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("teacher", "student"), CIFAR_PAIRS)
def test_conv_reg_maps_the_student_hint_onto_the_teacher_shape(teacher: str, student: str) -> None:
    s_shape = zoo_shapes(student, 32)["feats"][2]
    t_shape = zoo_shapes(teacher, 32)["feats"][2]
    reg = ConvReg(s_shape, t_shape)
    out = reg(torch.randn(2, *s_shape))
    assert tuple(out.shape[1:]) == tuple(t_shape)
    assert (out >= 0).all()  # BN then ReLU


def test_conv_reg_picks_the_reference_layer_per_size_ratio() -> None:
    down = ConvReg((8, 16, 16), (4, 8, 8)).conv
    assert isinstance(down, nn.Conv2d) and down.kernel_size == (3, 3) and down.stride == (2, 2)
    up = ConvReg((8, 8, 8), (4, 16, 16)).conv
    assert isinstance(up, nn.ConvTranspose2d) and up.kernel_size == (4, 4)
    same = ConvReg((8, 8, 8), (4, 8, 8)).conv
    assert isinstance(same, nn.Conv2d) and same.kernel_size == (1, 1) and same.padding == (0, 0)
    odd = ConvReg((1, 8, 10, 12), (1, 4, 7, 8)).conv  # batch dimension tolerated
    assert odd.kernel_size == (4, 5)
    assert ConvReg((8, 10, 12), (4, 7, 8))(torch.randn(2, 8, 10, 12)).shape == (2, 4, 7, 8)


def test_conv_reg_refuses_an_unmatchable_pair() -> None:
    with pytest.raises(ConfigError) as err:
        ConvReg((16, 4, 4), (32, 16, 16))
    message = str(err.value)
    assert "method.hint_layer" in message
    assert "(16, 4, 4)" in message and "(32, 16, 16)" in message


# ---------------------------------------------------------------------------------------------
# ReviewKD's fusion
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("teacher", "student", "size"),
    [(t, s, 32) for t, s in CIFAR_PAIRS] + [(t, s, 64) for t, s in IMAGENET_PAIRS],
)
def test_review_fusion_outputs_have_the_teacher_level_shapes(
    teacher: str, student: str, size: int
) -> None:
    t_model, s_model = zoo_model(teacher).eval(), zoo_model(student).eval()
    fusion = ReviewFusion.from_models(s_model, t_model, size)
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        _, fs = s_model(images)
        _, ft = t_model(images)
        outs = fusion(student_levels(fs, len(fusion.abfs)))
    wanted = [tuple(t.shape) for t in teacher_levels(ft)]
    assert [tuple(o.shape) for o in outs] == wanted
    assert len(wanted) == len(ft["preact_feats"])  # stages after the stem + pooled
    assert torch.isfinite(hcl_loss(outs, teacher_levels(ft)))


@pytest.mark.parametrize(
    ("teacher", "student", "size", "in_ch", "out_ch", "shapes", "mid"),
    [
        # mdistiller's cfg.py defaults (resnet32x4 -> resnet8x4): SHAPES [1, 8, 16, 32] reversed.
        (
            "resnet32x4",
            "resnet8x4",
            32,
            [64, 128, 256, 256],
            [64, 128, 256, 256],
            [32, 16, 8, 1],
            256,
        ),
        # configs/imagenet/r34_r18/reviewkd.yaml
        (
            "resnet34",
            "resnet18",
            224,
            [64, 128, 256, 512, 512],
            [64, 128, 256, 512, 512],
            [56, 28, 14, 7, 1],
            512,
        ),
        # configs/imagenet/r50_mv1/reviewkd.yaml (its code uses min(512, 1024) = 512)
        (
            "resnet50",
            "MobileNetV1",
            224,
            [128, 256, 512, 1024, 1024],
            [256, 512, 1024, 2048, 2048],
            [56, 28, 14, 7, 1],
            512,
        ),
    ],
)
def test_review_fusion_derives_mdistillers_typed_values(
    teacher: str, student: str, size: int, in_ch: list, out_ch: list, shapes: list, mid: int
) -> None:
    fusion = ReviewFusion.from_models(zoo_model(student), zoo_model(teacher), size)
    assert fusion.in_channels == in_ch and fusion.out_channels == out_ch
    assert fusion.shapes == [(s, s) for s in shapes] and fusion.out_shapes == fusion.shapes
    assert fusion.mid_channel == mid
    assert [abf.att_conv is not None for abf in fusion.abfs] == [True] * (len(in_ch) - 1) + [False]


class OneStage(nn.Module):
    """A stand-in network with a single stage map: two ReviewKD levels (map + pooled)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        f = self.conv(x)
        pooled = f.mean((2, 3))
        return pooled, {"feats": [f], "preact_feats": [f], "pooled_feat": pooled}


def test_review_fusion_refuses_a_student_with_too_few_levels() -> None:
    with pytest.raises(ConfigError, match="student levels"):
        ReviewFusion.from_models(OneStage(), build_model("resnet8", 10), 32)


def test_review_fusion_runs_from_the_deepest_level_up() -> None:
    """A deeper level reaches every shallower output; a shallower one never a deeper output."""
    torch.manual_seed(0)
    fusion = ReviewFusion([2, 3, 4], [5, 6, 7], 3, [4, 2, 1], [(8, 8), 2, 1]).eval()
    levels = [torch.randn(2, 2, 4, 4), torch.randn(2, 3, 2, 2), torch.randn(2, 4, 1, 1)]
    with torch.no_grad():
        base = fusion(levels)
        deep = fusion([levels[0], levels[1], levels[2] + 1.0])
        shallow = fusion([levels[0] + 1.0, levels[1], levels[2]])
    assert [tuple(o.shape) for o in base] == [(2, 5, 8, 8), (2, 6, 2, 2), (2, 7, 1, 1)]
    assert all(not torch.allclose(a, b) for a, b in zip(base, deep))
    assert not torch.allclose(base[0], shallow[0])
    assert torch.equal(base[1], shallow[1]) and torch.equal(base[2], shallow[2])
    with pytest.raises(ValueError, match="level 0"):
        fusion([torch.randn(2, 2, 8, 8), levels[1], levels[2]])


# ---------------------------------------------------------------------------------------------
# CRD
# ---------------------------------------------------------------------------------------------


def unit(values: list[list[float]]) -> torch.Tensor:
    rows = [[v / math.sqrt(sum(x * x for x in row)) for v in row] for row in values]
    return torch.tensor(rows)


def test_contrast_memory_holds_buffers_initialised_uniformly() -> None:
    torch.manual_seed(0)
    mem = ContrastMemory(feat_dim=12, n_data=2000, n_negatives=4)
    assert list(mem.parameters()) == []
    assert set(mem.state_dict()) == {"memory_s", "memory_t", "z_s", "z_t"}
    stdv = 1 / math.sqrt(12 / 3)
    for bank in (mem.memory_s, mem.memory_t):
        assert bank.shape == (2000, 12)
        assert bank.min() >= -stdv and bank.max() <= stdv
        assert bank.min() < -0.95 * stdv and bank.max() > 0.95 * stdv
    assert not torch.equal(mem.memory_s, mem.memory_t)
    assert mem.z_s.item() == -1.0 and mem.z_t.item() == -1.0
    v = unit([[1.0] * 12])
    with pytest.raises(ValueError, match="contrast_indices"):
        mem(v, v, torch.tensor([0]), torch.tensor([[0, 1, 2]]))  # 2 negatives, not 4


def test_contrast_memory_scores_z_and_update_match_hand_computation() -> None:
    n, t, m = 5, 0.5, 0.5
    mem = ContrastMemory(feat_dim=3, n_data=n, n_negatives=2, temperature=t, momentum=m)
    bank_s = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]
    bank_t = [[0.0, 0.0, 1.0], [0.8, 0.6, 0.0], [0.6, 0.0, 0.8], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    mem.memory_s.copy_(torch.tensor(bank_s))
    mem.memory_t.copy_(torch.tensor(bank_t))
    v_s = unit([[1.0, 2.0, 2.0], [2.0, -1.0, 2.0]])
    v_t = unit([[0.0, 3.0, 4.0], [4.0, 0.0, -3.0]])
    indices = torch.tensor([1, 3])
    contrast = torch.tensor([[1, 0, 2], [3, 4, 0]])
    vs, vt = v_s.tolist(), v_t.tolist()

    def dot(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b))

    raw_s = [[math.exp(dot(bank_t[j], vs[b]) / t) for j in contrast[b].tolist()] for b in range(2)]
    raw_t = [[math.exp(dot(bank_s[j], vt[b]) / t) for j in contrast[b].tolist()] for b in range(2)]
    z_s = sum(sum(r) for r in raw_s) / 6 * n
    z_t = sum(sum(r) for r in raw_t) / 6 * n

    out_s, out_t = mem(v_s, v_t, indices, contrast)
    assert out_s.shape == (2, 3, 1) and out_t.shape == (2, 3, 1)
    assert out_s.flatten().tolist() == pytest.approx([v / z_s for r in raw_s for v in r])
    assert out_t.flatten().tolist() == pytest.approx([v / z_t for r in raw_t for v in r])
    assert mem.z_s.item() == pytest.approx(z_s) and mem.z_t.item() == pytest.approx(z_t)

    # Momentum update of the anchors' rows, renormalised; every other row unchanged.
    for bank_now, bank_before, v in ((mem.memory_s, bank_s, vs), (mem.memory_t, bank_t, vt)):
        for row in range(n):
            if row in (1, 3):
                b = 0 if row == 1 else 1
                mixed = [m * x + (1 - m) * y for x, y in zip(bank_before[row], v[b])]
                norm = math.sqrt(sum(x * x for x in mixed))
                assert bank_now[row].tolist() == pytest.approx([x / norm for x in mixed])
            else:
                assert bank_now[row].tolist() == pytest.approx(bank_before[row], abs=1e-7)

    # Z stays as set by the first batch; the second batch is scored against the updated banks.
    bank_t2 = mem.memory_t.tolist()
    v_s2 = unit([[3.0, 0.0, 4.0], [0.0, 1.0, 0.0]])
    out_s2, _ = mem(v_s2, v_t, torch.tensor([0, 2]), contrast)
    assert mem.z_s.item() == pytest.approx(z_s) and mem.z_t.item() == pytest.approx(z_t)
    vs2 = v_s2.tolist()
    raw_s2 = [
        math.exp(dot(bank_t2[j], vs2[b]) / t) / z_s for b in range(2) for j in contrast[b].tolist()
    ]
    assert out_s2.flatten().tolist() == pytest.approx(raw_s2)


def test_contrast_memory_keeps_a_loaded_z() -> None:
    mem = ContrastMemory(feat_dim=4, n_data=10, n_negatives=2)
    mem.load_state_dict({**mem.state_dict(), "z_s": torch.tensor(3.0), "z_t": torch.tensor(7.0)})
    v = unit([[1.0, 0.0, 0.0, 0.0]])
    mem(v, v, torch.tensor([0]), torch.tensor([[0, 1, 2]]))
    assert mem.z_s.item() == 3.0 and mem.z_t.item() == 7.0


def test_nce_criterion_matches_hand_computation() -> None:
    n_data = 20
    scores = [[0.9, 0.1, 0.3, 0.05], [0.2, 0.7, 0.01, 0.4]]
    k = 3
    noise = k / n_data
    total = 0.0
    for row in scores:
        total += math.log(row[0] / (row[0] + noise + 1e-7))
        total += sum(math.log(noise / (p + noise + 1e-7)) for p in row[1:])
    expected = -total / len(scores)
    crit = NCECriterion(n_data)
    got = crit(torch.tensor(scores).unsqueeze(2))
    assert got.shape == () and got.item() == pytest.approx(expected, rel=1e-5)


def test_embed_gives_unit_vectors_and_crd_reaches_both_embeddings() -> None:
    torch.manual_seed(0)
    n, k, d = 40, 8, 16
    embed_s, embed_t = Embed(12, d), Embed(20, d)
    mem = ContrastMemory(d, n, n_negatives=k)
    crit_s, crit_t = NCECriterion(n), NCECriterion(n)
    labels = torch.arange(n) % 4
    index = build_class_index(labels)
    indices = torch.tensor([0, 5, 10, 39])
    contrast = sample_contrast_indices(labels[indices], indices, index, k)
    f_s, f_t = torch.randn(4, 12), torch.randn(4, 5, 2, 2)
    v_s, v_t = embed_s(f_s), embed_t(f_t)
    assert v_s.shape == (4, d) and v_t.shape == (4, d)
    assert torch.allclose(v_s.norm(dim=1), torch.ones(4)) and torch.allclose(
        v_t.norm(dim=1), torch.ones(4)
    )
    out_s, out_t = mem(v_s, v_t, indices, contrast)
    assert out_s.shape == (4, k + 1, 1)
    (crit_s(out_s) + crit_t(out_t)).backward()
    for embed in (embed_s, embed_t):
        assert embed.linear.weight.grad is not None and embed.linear.weight.grad.abs().sum() > 0


# The sampler ------------------------------------------------------------------------------


def uneven_labels() -> torch.Tensor:
    """60 samples of 4 classes of sizes 10, 15, 20, 15, interleaved (class runs not contiguous)."""
    sizes = {0: 10, 1: 15, 2: 20, 3: 15}
    labels = [c for c, s in sizes.items() for _ in range(s)]
    perm = torch.randperm(60, generator=torch.Generator().manual_seed(0))
    return torch.tensor(labels)[perm]


def test_class_index_groups_samples_by_class() -> None:
    labels = uneven_labels()
    ci = build_class_index(labels)
    assert ci.counts.tolist() == [10, 15, 20, 15] and ci.starts.tolist() == [0, 10, 25, 45]
    assert ci.max_count == 20 and ci.n_data == 60
    for c in range(4):
        run = ci.order[ci.starts[c] : ci.starts[c] + ci.counts[c]].tolist()
        assert sorted(run) == [i for i in range(60) if labels[i] == c]


@pytest.mark.parametrize("replacement", [False, True])
def test_exact_negatives_come_from_other_classes(replacement: bool) -> None:
    labels = uneven_labels()
    ci = build_class_index(labels)
    indices = torch.arange(60)
    k = 30  # every pool (40..50 samples) holds k
    g = torch.Generator().manual_seed(1)
    out = sample_contrast_indices(labels, indices, ci, k, g, replacement=replacement)
    assert out.shape == (60, k + 1) and out.dtype == torch.long
    assert out[:, 0].tolist() == indices.tolist()
    for row, i in zip(out.tolist(), range(60)):
        negatives = row[1:]
        assert i not in negatives
        assert all(labels[j] != labels[i] for j in negatives)
        assert all(0 <= j < 60 for j in negatives)
        if not replacement:
            assert len(set(negatives)) == k
    if replacement:  # 30 draws from 40..50 samples: repeats are all but certain somewhere
        assert any(len(set(row[1:])) < k for row in out.tolist())
    again = sample_contrast_indices(
        labels, indices, ci, k, torch.Generator().manual_seed(1), replacement=replacement
    )
    assert torch.equal(out, again)


def test_negatives_fall_back_to_replacement_only_where_the_pool_is_short() -> None:
    labels = uneven_labels()  # pools: 50, 45, 40, 45
    ci = build_class_index(labels)
    k = 42  # only class 2's pool (40) is shorter than k
    indices = torch.arange(60)
    out = sample_contrast_indices(labels, indices, ci, k, torch.Generator().manual_seed(2))
    for row, i in zip(out.tolist(), range(60)):
        negatives = row[1:]
        assert all(labels[j] != labels[i] for j in negatives)
        if labels[i] != 2:
            assert len(set(negatives)) == k
        else:
            assert len(set(negatives)) < k


@pytest.mark.parametrize("replacement", [False, True])
def test_negatives_are_uniform_over_the_other_classes(replacement: bool) -> None:
    labels = uneven_labels()
    ci = build_class_index(labels)
    rows = 4000
    targets = torch.full((rows,), 2)  # class 2: 40 candidates
    indices = torch.tensor([i for i in range(60) if labels[i] == 2] * (rows // 20))
    out = sample_contrast_indices(
        targets, indices, ci, 8, torch.Generator().manual_seed(3), replacement=replacement
    )
    counts = torch.bincount(out[:, 1:].flatten(), minlength=60).tolist()
    expected = rows * 8 / 40
    for j in range(60):
        if labels[j] == 2:
            assert counts[j] == 0
        else:
            assert abs(counts[j] - expected) < 0.15 * expected  # 4 sigma


def test_relax_positive_is_a_same_class_sample() -> None:
    labels = uneven_labels()
    ci = build_class_index(labels)
    indices = torch.arange(60).repeat(5)
    out = sample_contrast_indices(
        labels[indices], indices, ci, 5, torch.Generator().manual_seed(4), mode="relax"
    )
    assert all(labels[p] == labels[i] for p, i in zip(out[:, 0].tolist(), indices.tolist()))
    assert (out[:, 0] != indices).any()
    assert all(
        labels[j] != labels[i] for row, i in zip(out.tolist(), indices.tolist()) for j in row[1:]
    )
    with pytest.raises(ValueError, match="mode"):
        sample_contrast_indices(labels, torch.arange(60), ci, 5, mode="loose")


@contextmanager
def no_host_reads() -> Iterator[None]:
    """Any read of a tensor's value into Python raises inside the block."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a training-step helper read a tensor value on the host")

    names = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "numpy")
    saved = {name: getattr(torch.Tensor, name) for name in names}
    try:
        for name in names:
            setattr(torch.Tensor, name, refuse)
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)


def crd_step(device: torch.device, k: int, guard: Callable[[], AbstractContextManager]) -> int:
    """One CRD step (sample, score, update, NCE, backward) inside `guard`; returns k + 1."""
    labels = uneven_labels()
    n = labels.shape[0]
    ci = build_class_index(labels).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    mem = ContrastMemory(8, n, n_negatives=k).to(device)
    crit = NCECriterion(n)
    embed = Embed(6, 8).to(device)
    indices = torch.arange(0, n, 7, device=device)
    targets = labels.to(device)[indices]
    features = torch.randn(indices.shape[0], 6, device=device)
    with guard():
        v = embed(features)
        contrast = sample_contrast_indices(targets, indices, ci, k, g)
        out_s, out_t = mem(v, v.detach(), indices, contrast)
        loss = crit(out_s) + crit(out_t)
        loss.backward()
    return contrast.shape[1]


@pytest.mark.parametrize("k", [5, 35])  # 35: the with-replacement fallback of short pools too
def test_crd_step_never_reads_the_device_on_the_host(k: int) -> None:
    assert crd_step(torch.device("cpu"), k, no_host_reads) == k + 1


@contextmanager
def no_cuda_sync() -> Iterator[None]:
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with no_host_reads():
            yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("k", [5, 35])
def test_crd_step_never_synchronises_cuda(k: int) -> None:
    assert crd_step(torch.device("cuda"), k, no_cuda_sync) == k + 1


# Distributed: the global batch reaches every process's banks ------------------------------


def test_gather_for_memory_is_the_identity_without_a_process_group() -> None:
    a, b, i = torch.randn(3, 4), torch.randn(3, 4), torch.tensor([4, 1, 2])
    out = gather_for_memory(a, b, i)
    assert out[0] is a and out[1] is b and out[2] is i


# Each process: 4-dim banks over 10 samples, different until `sync_memory_`; rank r holds
# samples sum(SIZES[:r]) ... of a batch of 5 unit vectors (an uneven last batch: 3 + 2).
GLOO_WORKER = """
import os, sys
import torch
import torch.distributed as dist
from common.methods.crd_memory import ContrastMemory, gather_for_memory

rank, init_file, out_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sizes = [3, 2]
dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=2)
torch.manual_seed(100 + rank)
mem = ContrastMemory(4, 10, n_negatives=2)
mem.sync_memory_()
start = sum(sizes[:rank])
indices = torch.arange(start, start + sizes[rank])
v_all = torch.nn.functional.normalize(torch.randn(5, 4, generator=torch.Generator().manual_seed(7)))
v = v_all[start : start + sizes[rank]]
contrast = torch.stack([indices, (indices + 5) % 10, (indices + 6) % 10], dim=1)
gathered = gather_for_memory(v, 2 * v, indices, sizes)
mem(v, v, indices, contrast, sizes=sizes)
torch.save({"gathered": gathered, "memory_s": mem.memory_s, "z_s": mem.z_s, "v_all": v_all},
           os.path.join(out_dir, "rank%d.pt" % rank))
dist.destroy_process_group()
"""


def test_gather_for_memory_updates_every_process_with_the_global_batch() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        init_file = os.path.join(tmp, "init")
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", GLOO_WORKER, str(rank), init_file, tmp],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for rank in range(2)
        ]
        logs = [p.communicate(timeout=120)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs), "\n".join(logs)[-3000:]
        results = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(2)]
    v_all = results[0]["v_all"]
    for res in results:
        g_s, g_t, g_i = res["gathered"]
        assert torch.equal(g_s, v_all) and torch.equal(g_t, 2 * v_all)
        assert g_i.tolist() == [0, 1, 2, 3, 4]
    # Same banks and Z everywhere, every sample of both ranks updated.
    assert torch.equal(results[0]["memory_s"], results[1]["memory_s"])
    assert torch.equal(results[0]["z_s"], results[1]["z_s"])
    bank = results[0]["memory_s"]
    assert torch.allclose(bank[:5].norm(dim=1), torch.ones(5))
    assert not torch.allclose(bank[5:].norm(dim=1), torch.ones(5))  # never in a batch


@pytest.mark.parametrize("n_data", [50, 5000])  # scored by one product (50 <= K*D), gathered
def test_crd_scores_equal_the_gathered_rows_and_their_gradient(n_data: int) -> None:
    """CRD's scores by a product of the whole bank equal exp(<bank[idx], v> / T) from the
    gathered rows, and so does the gradient to v; the bank may change after scoring."""
    from common.methods.crd_memory import ContrastMemory

    torch.manual_seed(0)
    mem = ContrastMemory(feat_dim=8, n_data=n_data, n_negatives=15)
    v = torch.nn.functional.normalize(torch.randn(4, 8), dim=1).requires_grad_(True)
    idx = torch.randint(0, n_data, (4, 16))
    rows = mem.memory_s[idx].clone()
    want = torch.exp(torch.bmm(rows, v.detach().unsqueeze(2)) / mem.temperature)
    got = mem._scores(mem.memory_s, v, idx)
    mem.memory_s.mul_(0.5)  # as `update` does between scoring and backward
    got.sum().backward()
    v_ref = v.detach().clone().requires_grad_(True)
    torch.exp(torch.bmm(rows, v_ref.unsqueeze(2)) / mem.temperature).sum().backward()
    assert torch.allclose(got.detach(), want, rtol=1e-5)
    assert torch.allclose(v.grad, v_ref.grad, rtol=1e-4)
