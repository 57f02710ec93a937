"""Deterministic CPU random generators keyed by tuples such as (seed, epoch, step).

Every random draw of the data pipeline (shuffle order, crop offsets, flips) comes from a CPU
`torch.Generator` seeded through `derive_seed`, so it depends only on its key: the same on every
rank, on CPU and GPU, and independent of how many batches were drawn before.
"""

from __future__ import annotations

import numpy as np
import torch

# Stream tags keep the different uses of one (seed, epoch, ...) key statistically independent.
STREAM_SHUFFLE = 1
STREAM_AUGMENT = 2
STREAM_SUBSET = 3
STREAM_SYNTHETIC = 4
STREAM_WORKERS = 5


def derive_seed(*keys: int) -> int:
    """A 63-bit seed mixed from non-negative integer keys (NumPy's SeedSequence hash)."""
    if any(k < 0 for k in keys):
        raise ValueError(f"seed keys must be non-negative, got {keys}")
    state = np.random.SeedSequence(list(keys)).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def make_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from `keys` (see `derive_seed`)."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(derive_seed(*keys))
    return generator
