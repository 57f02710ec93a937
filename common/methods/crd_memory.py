"""CRD's memory banks (Tian et al. 2020, Sec. 3.4 and Eq. 10), as RepDistiller's / mdistiller's
`ContrastMemory`: one bank of embeddings per network over all N training samples, from which the
K negatives of every anchor are read, so K can far exceed the batch.

- Banks `memory_s`, `memory_t` (N, D) are buffers, initialised U(-stdv, stdv) with
  stdv = 1 / sqrt(D / 3) (so a row's expected squared norm is 1).
- Scores. Student anchor v_s against the teacher bank at the contrast indices (positive
  first), and the teacher anchor v_t against the student bank:
  out = exp(<bank[j], v> / tau) / Z, shape (B, K + 1, 1).
- Z (one per side) is a Monte-Carlo estimate of the partition function, fixed on the first
  batch as mean(exp(<., .> / tau)) * N and kept (buffers `z_s`, `z_t`, -1 until set, set with
  `torch.where` so the step never branches on a tensor value or waits on the host).
- After scoring, the anchors' own rows move towards the new embeddings with momentum m and are
  renormalised: bank[i] <- normalise(m bank[i] + (1 - m) v_i).

With `torch.distributed` initialised, the update uses the whole global batch (`gather_for_memory`)
and the first-batch Z is averaged over the processes, so every process keeps the same banks
(call `sync_memory_` once after construction so they also start equal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn

from common.world import is_distributed


def gather_rows(
    *tensors: torch.Tensor, sizes: Sequence[int] | None = None
) -> tuple[torch.Tensor, ...]:
    """Each tensor's rows from every process, in rank order, when `torch.distributed` is
    initialised with more than one process; the inputs unchanged otherwise.

    `sizes` is every rank's local batch size (host integers the loader knows, e.g. for an
    uneven last batch: `Batch.rank_sizes`); by default all ranks are assumed to hold as many
    rows as this one. Rows are padded to the largest size for the collective and the padding
    dropped again by slicing with those host integers, so nothing waits on the device. Not
    differentiable (detach first).
    """
    if not is_distributed():
        return tensors
    world, rank = dist.get_world_size(), dist.get_rank()
    local = tensors[0].shape[0]
    sizes = [local] * world if sizes is None else [int(s) for s in sizes]
    if len(sizes) != world or sizes[rank] != local:
        raise ValueError(
            f"gather_rows: sizes {sizes} do not fit rank {rank} of {world} with {local} rows"
        )
    longest = max(sizes)

    def gather(t: torch.Tensor) -> torch.Tensor:
        padded = t.new_zeros((longest, *t.shape[1:]))
        padded[:local] = t
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([part[:n] for part, n in zip(parts, sizes)])

    return tuple(gather(t) for t in tensors)


def gather_for_memory(
    v_s: torch.Tensor,
    v_t: torch.Tensor,
    indices: torch.Tensor,
    sizes: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The embeddings and sample indices of the whole global batch (see `gather_rows`)."""
    v_s, v_t, indices = gather_rows(v_s, v_t, indices, sizes=sizes)
    return v_s, v_t, indices


class ContrastMemory(nn.Module):
    """Banks of `n_data` embeddings of size `feat_dim` per side; see the module docstring."""

    def __init__(
        self,
        feat_dim: int,
        n_data: int,
        n_negatives: int = 16384,
        temperature: float = 0.07,
        momentum: float = 0.5,
    ) -> None:
        super().__init__()
        self.feat_dim = feat_dim
        self.n_data = n_data
        self.n_negatives = n_negatives
        self.temperature = temperature
        self.momentum = momentum
        stdv = 1.0 / math.sqrt(feat_dim / 3)
        self.register_buffer("memory_s", torch.rand(n_data, feat_dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_t", torch.rand(n_data, feat_dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("z_s", torch.tensor(-1.0))
        self.register_buffer("z_t", torch.tensor(-1.0))
        self._z_averaged = False  # the first call averages the new Z over the processes

    def sync_memory_(self, src: int = 0) -> None:
        """Broadcast both banks and Z from process `src` (a no-op for one process)."""
        if is_distributed():
            for buf in (self.memory_s, self.memory_t, self.z_s, self.z_t):
                dist.broadcast(buf, src)

    def _scores(self, bank: torch.Tensor, v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """exp(<bank[idx[b, k]], v[b]> / T), (B, K + 1, 1): Eq. 19 of CRD's scores.

        When the bank has at most K x D rows, every row is scored with one matrix product and
        the K + 1 wanted scores are gathered: the same numbers (summation order aside, ~1e-6)
        without a (B, K + 1, D) copy of the bank's rows (an (N, D) copy instead), which was
        most of CRD's step on the CPU (24x faster at N = 10,000, K = 16,384: 14 -> 337 img/s)
        and of its memory traffic on a GPU.
        """
        if bank.shape[0] <= idx.shape[1] * bank.shape[1]:
            # a copy: the backward needs the rows as scored, and `update` changes the bank
            dots = (v @ bank.clone().t()).gather(1, idx).unsqueeze(2)
        else:
            rows = bank.index_select(0, idx.reshape(-1)).view(idx.shape[0], idx.shape[1], -1)
            dots = torch.bmm(rows, v.unsqueeze(2))
        return torch.exp(dots / self.temperature)

    def _normaliser(self, z: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Z fixed on the first batch: the stored value once set, else mean * N (and store it)."""
        with torch.no_grad():
            fresh = scores.mean() * self.n_data
            if not self._z_averaged and is_distributed():
                dist.all_reduce(fresh)
                fresh = fresh / dist.get_world_size()
            value = torch.where(z < 0, fresh.to(z.dtype), z)
            z.copy_(value)
        return value

    def forward(
        self,
        v_s: torch.Tensor,
        v_t: torch.Tensor,
        indices: torch.Tensor,
        contrast_indices: torch.Tensor,
        sizes: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(student scores, teacher scores), each (B, K + 1, 1) with the positive first.

        `v_s`, `v_t`: (B, D) unit embeddings; `indices`: (B,) the samples' dataset indices (rows
        to update); `contrast_indices`: (B, K + 1) rows to score against, positive first
        (`sample_contrast_indices`); `sizes`: every process's local batch, for the update.
        Scores are computed in float32 (exp(1 / 0.07) overflows float16) outside autocast.
        """
        if contrast_indices.dim() != 2 or contrast_indices.shape[1] != self.n_negatives + 1:
            raise ValueError(
                f"contrast_indices must be (B, {self.n_negatives + 1}) (positive first, then "
                f"{self.n_negatives} negatives), got {tuple(contrast_indices.shape)}"
            )
        with torch.autocast(device_type=v_s.device.type, enabled=False):
            vs, vt = v_s.float(), v_t.float()
            out_s = self._scores(self.memory_t, vs, contrast_indices)
            out_t = self._scores(self.memory_s, vt, contrast_indices)
            out_s = out_s / self._normaliser(self.z_s, out_s)
            out_t = out_t / self._normaliser(self.z_t, out_t)
        self._z_averaged = True
        self.update(*gather_for_memory(vs.detach(), vt.detach(), indices, sizes))
        return out_s, out_t

    @torch.no_grad()
    def update(self, v_s: torch.Tensor, v_t: torch.Tensor, indices: torch.Tensor) -> None:
        """bank[i] <- normalise(m bank[i] + (1 - m) v_i) for both banks (after scoring)."""
        for bank, v in ((self.memory_s, v_s), (self.memory_t, v_t)):
            rows = bank.index_select(0, indices) * self.momentum + v.float() * (1 - self.momentum)
            rows = rows / rows.pow(2).sum(1, keepdim=True).sqrt()
            bank.index_copy_(0, indices, rows.to(bank.dtype))
