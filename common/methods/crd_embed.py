"""CRD's embedding heads (Tian et al. 2020, Sec. 3.1, the g^S and g^T of Eq. 10): a linear map of
the pooled feature to the contrastive space, then L2 normalisation, one head per network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Embed(nn.Module):
    """(B, ...) -> (B, dim_out) unit vectors: flatten, Linear(dim_in, dim_out), L2-normalise."""

    def __init__(self, dim_in: int, dim_out: int = 128) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(x.reshape(x.shape[0], -1)), dim=1)
