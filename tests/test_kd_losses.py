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


def kd_pair(method: str, **options):
    from common.methods import get_method
    from common.models import build_model

    torch.manual_seed(0)
    cls = get_method(method)
    teacher = build_model("resnet8", 5).eval().requires_grad_(False)
    return cls(build_model("resnet8", 5), teacher, cls.Options(**options))


def test_kd_forward_train_on_a_batch_matches_the_per_sample_mean() -> None:
    """KD through `KD.forward_train` on a batch of 6: CE and KD are batch means of the
    per-sample terms (KL summed over classes, times T^2), weighted 0.1 / 0.9."""
    from common.batch import Batch

    method = kd_pair("kd").train()
    torch.manual_seed(1)
    images, targets = torch.randn(6, 3, 16, 16), torch.tensor([0, 1, 2, 3, 4, 0])
    logits, losses = method.forward_train(Batch(images, targets))
    with torch.no_grad():
        z_t = method.teacher(images)[0]
    t = 4.0
    per_sample = [
        (
            F.softmax(z_t[i] / t, 0)
            * (F.log_softmax(z_t[i] / t, 0) - F.log_softmax(logits[i] / t, 0))
        )
        .sum()
        .item()
        * t
        * t
        for i in range(6)
    ]
    ce = [-F.log_softmax(logits[i], 0)[targets[i]].item() for i in range(6)]
    assert math.isclose(losses["kd"].item(), 0.9 * sum(per_sample) / 6, rel_tol=1e-5)
    assert math.isclose(losses["ce"].item(), 0.1 * sum(ce) / 6, rel_tol=1e-5)


def test_dkd_forward_train_ramps_in_over_the_warmup() -> None:
    """DKD's distillation terms are scaled by min((epoch + 1) / 20, 1): 1/20 at epoch 0,
    20/20 at epoch 19 and after (the authors' code counts epochs from 1)."""
    from common.batch import Batch

    method = kd_pair("dkd", warmup_epochs=20).train()
    torch.manual_seed(2)
    batch = Batch(torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3]))
    terms = {}
    for epoch in (0, 19, 20):
        method.start_epoch(epoch)
        _, losses = method.forward_train(batch)
        terms[epoch] = losses
    full = terms[20]
    for name in ("tckd", "nckd"):
        assert torch.allclose(terms[0][name], full[name] / 20, rtol=1e-5)
        assert torch.allclose(terms[19][name], full[name], rtol=1e-5)
    assert torch.allclose(terms[0]["ce"], full["ce"])  # CE is never ramped
    logits = method.student(batch.images)[0]
    with torch.no_grad():
        z_t = method.teacher(batch.images)[0]
    tckd, nckd = dkd_loss(logits, z_t, batch.targets, 1.0, 8.0, 4.0)
    assert torch.allclose(full["tckd"], tckd, rtol=1e-5) and torch.allclose(
        full["nckd"], nckd, rtol=1e-5
    )
