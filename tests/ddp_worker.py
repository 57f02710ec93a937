"""Entry point for the distributed tests: the normal CLI plus a BatchNorm-free test model.

BatchNorm normalises with per-process batch statistics (SyncBatchNorm needs a GPU), so only a
network without it can be compared exactly between one process and two.
"""

import os
import sys

import torch
from torch import nn

from common.cli import main
from common.models import register_model


class PlainConvNet(nn.Module):
    """conv-relu-conv-relu-pool-linear, returning (logits, features) like the zoo."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor):
        f1 = torch.relu(self.conv1(x))
        f2 = torch.relu(self.conv2(f1))
        pooled = f2.mean(dim=(2, 3))
        feats = {"feats": [f1, f2], "preact_feats": [f1, f2], "pooled_feat": pooled}
        return self.fc(pooled), feats

    def get_stage_channels(self) -> list[int]:
        return [8, 16]


register_model("test_plain_convnet", PlainConvNet)


def dump_every_rank(prefix: str) -> None:
    """Make each process save its method's state at the end as `<prefix>.rank<R>.pt` (tests
    compare what the ranks hold, e.g. SoKD's policy, not only what rank 0 wrote)."""
    import torch

    from common.engine.trainer import Trainer

    finish = Trainer.finish

    def finish_and_dump(self):
        torch.save(self.method.state_dict(), f"{prefix}.rank{self.info.rank}.pt")
        return finish(self)

    Trainer.finish = finish_and_dump


if __name__ == "__main__":
    if os.environ.get("KDZOO_DUMP_RANKS"):
        dump_every_rank(os.environ["KDZOO_DUMP_RANKS"])
    sys.exit(main(sys.argv[1:], prog="ddp_worker"))
