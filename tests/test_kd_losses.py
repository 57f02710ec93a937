"""KD and DKD against hand computations and DKD's decomposition identity."""

import math

import torch
import torch.nn.functional as F

from common.methods.dkd import dkd_loss
from common.methods.losses import kd_loss


def test_kd_loss_matches_hand_computation() -> None:
    zs = torch.tensor([[1.0, 2.0, 0.5]])
    zt = torch.tensor([[2.0, 0.0, 1.0]])
    t = 2.0
    ps = [math.exp(v / t) for v in zs[0].tolist()]
    pt = [math.exp(v / t) for v in zt[0].tolist()]
    ps = [v / sum(ps) for v in ps]
    pt = [v / sum(pt) for v in pt]
    expected = sum(b * math.log(b / a) for a, b in zip(ps, pt)) * t * t
    assert abs(kd_loss(zs, zt, t).item() - expected) < 1e-6


def test_dkd_decomposes_kd() -> None:
    """Zhao et al. 2022, Eq. 3: KD = TCKD + (1 - p_t[target]) * NCKD, per sample."""
    torch.manual_seed(0)
    zs, zt = torch.randn(1, 7), torch.randn(1, 7)
    y = torch.tensor([3])
    t = 4.0
    tckd, nckd = dkd_loss(zs, zt, y, alpha=1.0, beta=1.0, temperature=t)
    pt_target = F.softmax(zt / t, dim=1)[0, 3]
    kd = kd_loss(zs, zt, t)
    assert torch.allclose(kd, tckd + (1 - pt_target) * nckd, atol=1e-5)


def test_dkd_weights_scale_each_part() -> None:
    torch.manual_seed(1)
    zs, zt = torch.randn(4, 5), torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, 3])
    a1, b1 = dkd_loss(zs, zt, y, 1.0, 1.0, 4.0)
    a2, b2 = dkd_loss(zs, zt, y, 2.0, 8.0, 4.0)
    assert torch.allclose(a2, 2 * a1) and torch.allclose(b2, 8 * b1)
