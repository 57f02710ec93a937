"""Distillation losses shared by several methods: logit KD, attention transfer (AT) and
ReviewKD's hierarchical context loss (HCL)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Hinton et al. 2015: KL(p_t^T || p_s^T) * T^2, mean over the batch.

    The T^2 factor keeps the gradient scale independent of T (Hinton et al., Sec. 2).
    """
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return kl * temperature**2


def _attention_map(feat: torch.Tensor, p: float) -> torch.Tensor:
    """Zagoruyko & Komodakis 2017, Sec. 3.1: F^p_mean(A) = mean_c |A_c|^p, flattened and
    L2-normalised per sample (the vec(Q) / ||vec(Q)||_2 of Eq. 2). (B, C, H, W) -> (B, H*W)."""
    return F.normalize(feat.abs().pow(p).mean(1).flatten(1), dim=1)


def at_loss(
    feats_s: list[torch.Tensor], feats_t: list[torch.Tensor], p: float = 2.0
) -> torch.Tensor:
    """Attention transfer (Zagoruyko & Komodakis 2017, Eq. 2), as the authors' code computes it:
    per stage pair, the mean over batch and positions of (a_s - a_t)^2 with a = `_attention_map`,
    summed over the pairs. Eq. 2 writes beta/2 times the 2-norm of the difference; the authors'
    code (and mdistiller) uses this mean of its square instead, with the caller's weight 1000
    on CIFAR-100. |A|^p is the paper's; the code's A.pow(p) agrees for p = 2 (and A >= 0).

    Where the two maps of a pair differ in size, the larger FEATURE map is adaptive-avg-pooled to
    the smaller one's (H, W) before its attention is taken (as mdistiller's AT does).
    """
    if len(feats_s) != len(feats_t):
        raise ValueError(
            f"at_loss needs as many student maps ({len(feats_s)}) as teacher maps ({len(feats_t)})"
        )
    total = feats_s[0].new_zeros(())
    for f_s, f_t in zip(feats_s, feats_t):
        size = (min(f_s.shape[2], f_t.shape[2]), min(f_s.shape[3], f_t.shape[3]))
        if tuple(f_s.shape[2:]) != size:
            f_s = F.adaptive_avg_pool2d(f_s, size)
        if tuple(f_t.shape[2:]) != size:
            f_t = F.adaptive_avg_pool2d(f_t, size)
        total = total + (_attention_map(f_s, p) - _attention_map(f_t, p)).pow(2).mean()
    return total


HCL_POOL_SIZES = (4, 2, 1)


def hcl_loss(feats_s: list[torch.Tensor], feats_t: list[torch.Tensor]) -> torch.Tensor:
    """ReviewKD's hierarchical context loss (Chen et al. 2021, Sec. 3.3), as the authors' code
    computes it. Per level (fused student map vs teacher map, same shape):

        (MSE(f_s, f_t) + sum_j w_j MSE(pool_j(f_s), pool_j(f_t))) / (1 + sum_j w_j)

    with pool_j the adaptive average pool to 4x4, 2x2, 1x1 (a size >= the map's height is
    skipped) and weights w = 1/2, 1/4, 1/8 given in that order to the sizes that are kept.
    Summed over levels.
    """
    if len(feats_s) != len(feats_t):
        raise ValueError(
            f"hcl_loss needs as many student maps ({len(feats_s)}) as teacher maps ({len(feats_t)})"
        )
    total = feats_s[0].new_zeros(())
    for f_s, f_t in zip(feats_s, feats_t):
        h = f_s.shape[2]
        loss = F.mse_loss(f_s, f_t)
        weight, weight_sum = 1.0, 1.0
        for size in HCL_POOL_SIZES:
            if size >= h:
                continue
            weight /= 2.0
            pooled_s = F.adaptive_avg_pool2d(f_s, (size, size))
            pooled_t = F.adaptive_avg_pool2d(f_t, (size, size))
            loss = loss + weight * F.mse_loss(pooled_s, pooled_t)
            weight_sum += weight
        total = total + loss / weight_sum
    return total
