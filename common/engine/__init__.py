"""The training engine: `fit()` for plain PyTorch objects, `Trainer` (the one loop), writers."""

from common.engine.fit import fit

__all__ = ["fit"]
