"""Ranks of the rows of a matrix: the released code's hard ranks and a differentiable soft rank.

R2KD's rank term (Eqs. 4, 6, 9) is the Spearman correlation of the student's and teacher's
predictions, i.e. the Pearson correlation of their ranks. The released code ranks with a double
`argsort`, which has no gradient. `soft_rank` replaces the indicator in

    rank(x)_i = 1 + sum_{j != i} [x_i > x_j]

by a logistic sigmoid of sharpness k (the pairwise-sigmoid relaxation, e.g. Qin et al. 2010,
"A general approximation framework for direct optimization of information retrieval measures"):

    soft_rank(x)_i = 1/2 + sum_j sigmoid(k (x_i - x_j))      (the j = i term adds 1/2)

so well-separated values get exactly 1..C as k grows, and tied values get their average rank
(each pair contributes sigmoid(0) = 1/2 both ways), the tie convention of Spearman's statistic.

The pairwise form costs O(C^2) per row. `soft_rank` never holds a (B, C, C) tensor: a custom
autograd function works through the batch in chunks of rows, keeps only its input for the
backward, and recomputes each chunk's sigmoids there. Peak extra memory is two chunk tensors
(the sigmoids and 1 - sigmoid in the backward): 2 x `CHUNK_ELEMENTS` float32 = 128 MiB at most,
whatever the batch. For C = 1000 and B = 256 the whole pairwise tensor would be 1 GiB (and
autograd would keep two or three of them); chunked, each holds 16 rows (64 MiB).
"""

from __future__ import annotations

import torch

# Pairwise elements processed at once: rows per chunk = max(1, CHUNK_ELEMENTS // C^2).
CHUNK_ELEMENTS = 2**24


def hard_rank(x: torch.Tensor) -> torch.Tensor:
    """Ordinal ranks 1..C along the last dimension (double argsort, as in the released code).

    Ties are broken by position (a stable sort), so the value is deterministic; the released
    code's unstable argsort breaks ties arbitrarily. No gradient.
    """
    order = torch.argsort(x.detach(), dim=-1, stable=True)
    return (torch.argsort(order, dim=-1, stable=True) + 1).to(torch.float32)


def _rows_per_chunk(num_classes: int, chunk_elements: int) -> int:
    return max(1, chunk_elements // max(num_classes * num_classes, 1))


class _PairwiseSigmoidRank(torch.autograd.Function):
    """soft_rank(x)_i = 1/2 + sum_j sigmoid(k (x_i - x_j)) over the last dim of a 2-D `x`.

    Backward, with s'_ij = k sigmoid'(k (x_i - x_j)) (symmetric in i, j) and upstream grad g:
    dL/dx_m = g_m sum_j s'_mj - sum_i g_i s'_im.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, sharpness: float, chunk: int) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.sharpness, ctx.chunk = sharpness, chunk
        out = torch.empty_like(x)
        for start in range(0, x.shape[0], chunk):
            rows = x[start : start + chunk]
            diff = (rows.unsqueeze(2) - rows.unsqueeze(1)).mul_(sharpness)
            out[start : start + chunk] = diff.sigmoid_().sum(dim=2).add_(0.5)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        k, chunk = ctx.sharpness, ctx.chunk
        grad_x = torch.empty_like(x)
        for start in range(0, x.shape[0], chunk):
            rows, g = x[start : start + chunk], grad[start : start + chunk]
            s = (rows.unsqueeze(2) - rows.unsqueeze(1)).mul_(k).sigmoid_()
            deriv = s.mul_(1.0 - s).mul_(k)  # s' = k s (1 - s), symmetric (chunk, C, C)
            own = deriv.sum(dim=2) * g
            cross = torch.bmm(deriv, g.unsqueeze(2)).squeeze(2)
            grad_x[start : start + chunk] = own - cross
        return grad_x, None, None


def standardise_rows(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """(x - row mean) / row std: makes the sharpness independent of each row's scale."""
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred / centred.pow(2).mean(dim=-1, keepdim=True).add(eps).sqrt()


def soft_rank(
    x: torch.Tensor, sharpness: float = 100.0, chunk_elements: int = CHUNK_ELEMENTS
) -> torch.Tensor:
    """Differentiable ranks of each row of a 2-D tensor (float32), ties -> average rank.

    `sharpness` k multiplies the pairwise differences; apply it to rows on a common scale
    (`standardise_rows`). Larger k -> closer to the hard ranks, sparser gradient.
    """
    if x.dim() != 2:
        raise ValueError(f"soft_rank expects a (batch, classes) matrix, got shape {tuple(x.shape)}")
    x = x.float()
    chunk = _rows_per_chunk(x.shape[1], chunk_elements)
    return _PairwiseSigmoidRank.apply(x, float(sharpness), chunk)
