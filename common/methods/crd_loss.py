"""CRD's NCE objective (Tian et al. 2020, Eqs. 18-19), as the authors' `ContrastLoss`.

Each row of scores holds the positive's critic value P_pos = h(s, t) first, then the K negatives'
P_neg, all from `ContrastMemory` (exp(<., .> / tau) / Z, an estimate of the density ratio).
With noise probability P_n = 1 / N (N = number of training samples, uniform noise), the
probability that a pair came from the data rather than the noise is P / (P + K P_n), so

    L = -1/B sum_b [ log(P_pos / (P_pos + K P_n)) + sum_k log(K P_n / (P_neg,k + K P_n)) ]

(a small epsilon in the denominators, as the reference).
"""

from __future__ import annotations

import torch
from torch import nn

EPS = 1e-7


class NCECriterion(nn.Module):
    """Scores (B, K + 1) or (B, K + 1, 1), positive first -> the scalar NCE loss above."""

    def __init__(self, n_data: int) -> None:
        super().__init__()
        if n_data < 1:
            raise ValueError(f"NCECriterion needs the number of training samples, got {n_data}")
        self.n_data = n_data

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.reshape(scores.shape[0], -1).float()
        batch, k = scores.shape[0], scores.shape[1] - 1
        noise = k / float(self.n_data)  # K * P_n
        p_pos, p_neg = scores[:, 0], scores[:, 1:]
        log_d1 = torch.log(p_pos / (p_pos + noise + EPS))
        log_d0 = torch.log(noise / (p_neg + noise + EPS))
        return -(log_d1.sum() + log_d0.sum()) / batch
