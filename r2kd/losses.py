"""R2KD's correlation distances on (batch, classes) probability matrices (Sec. III-B).

* Value-based (Eqs. 2, 5, 8): the Eisen distance 1 - mean_i |cos(p_s[i], p_t[i])|, the uncentred
  cosine with an absolute value, as the released code computes it. The loss applies it to the
  rows (each sample across classes) and to the transposed matrices (each class across the
  batch) and adds both (`value_term`).
* Rank-based (Eqs. 4, 6, 9): 1 - mean_i Spearman(p_s[i], p_t[i]), the Pearson correlation of
  the rows' ranks. `mode="hard"` is the released code's value (double argsort: no gradient);
  `mode="soft"` ranks with a pairwise-sigmoid soft rank (`r2kd.soft_rank`) that passes gradient
  to the student. Soft ranks are taken of the standardised log-probabilities: the log keeps the
  order (so the hard ranks are unchanged) and spreads softmax outputs, whose non-target
  classes crowd near zero, evenly enough for one sharpness to suit every row.

Every function returns a scalar tensor; the method (`r2kd.method`) weights them (Eq. 7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from r2kd.soft_rank import hard_rank, soft_rank, standardise_rows

EPS = 1e-8  # the released code's epsilon in every cosine denominator
DEFAULT_SHARPNESS = 100.0  # soft-rank sharpness on standardised log-probabilities


def probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(z / T) in float32 (the distances are computed in float32 under AMP too)."""
    return F.softmax(logits.float() / temperature, dim=1)


def abs_cosine(a: torch.Tensor, b: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """|<a_i, b_i>| / (|a_i| |b_i| + eps) for each row i (Eq. 2 with an absolute value)."""
    return (a * b).sum(dim=1).abs() / (a.norm(dim=1) * b.norm(dim=1) + eps)


def value_distance(p_s: torch.Tensor, p_t: torch.Tensor) -> torch.Tensor:
    """Eisen distance of the rows: 1 - mean_i |cos(p_s[i], p_t[i])| (Eqs. 5, 8)."""
    return 1.0 - abs_cosine(p_s, p_t).mean()


def value_term(p_s: torch.Tensor, p_t: torch.Tensor, columns: bool = True) -> torch.Tensor:
    """The released value loss before its weight: rows' distance + columns' distance."""
    loss = value_distance(p_s, p_t)
    if columns:
        loss = loss + value_distance(p_s.t(), p_t.t())
    return loss


def _rank_scale(num_classes: int) -> float:
    """The released code divides ranks by C (C + 1) / 2 (it only matters beside the eps)."""
    return num_classes * (num_classes + 1) / 2


def ranks(
    p: torch.Tensor, mode: str = "soft", sharpness: float = DEFAULT_SHARPNESS
) -> torch.Tensor:
    """Ranks 1..C of each row of a probability matrix (`hard`: ordinal; `soft`: relaxed)."""
    if mode == "hard":
        return hard_rank(p)
    if mode == "soft":
        tiny = torch.finfo(torch.float32).tiny
        return soft_rank(standardise_rows(p.float().clamp_min(tiny).log()), sharpness)
    raise ValueError(f"rank mode '{mode}' is not one of soft, hard")


def pearson_rows(a: torch.Tensor, b: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Pearson correlation of each row pair: cosine of the centred rows (Eq. 3)."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def spearman_rows(
    p_s: torch.Tensor, p_t: torch.Tensor, mode: str = "soft", sharpness: float = DEFAULT_SHARPNESS
) -> torch.Tensor:
    """Spearman correlation of each row pair (Eq. 4), ranks scaled as in the released code."""
    scale = _rank_scale(p_s.shape[1])
    r_s = ranks(p_s, mode, sharpness) / scale
    r_t = ranks(p_t, mode, sharpness) / scale
    return pearson_rows(r_s, r_t)


def rank_distance(
    p_s: torch.Tensor, p_t: torch.Tensor, mode: str = "soft", sharpness: float = DEFAULT_SHARPNESS
) -> torch.Tensor:
    """1 - mean_i Spearman(p_s[i], p_t[i]) (Eqs. 6, 9).

    `hard`: the released value, no gradient. `soft`: differentiable in `p_s` (and `p_t`);
    it tends to the Spearman value with tied values at their average rank as `sharpness` grows.
    """
    return 1.0 - spearman_rows(p_s, p_t, mode, sharpness).mean()
