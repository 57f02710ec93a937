"""What `tools/sokd_policy.py` draws: how the DAFA policy evolved (from a run's metrics.jsonl)
and, for a few validation images, DAM's mask over the teacher's feature map (from last.pt).

matplotlib is the `plot` extra (`pip install -e '.[plot]'`); without it the tool says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from common.config import load_saved_config
from common.data import build_data
from common.engine.build import build_distiller
from common.engine.checkpoint import load_run_checkpoint
from common.errors import ConfigError
from sokd.dam import box_mask, decode_boxes
from sokd.policy import SUB_POLICIES


def policy_history(run_dir: Path) -> list[dict[str, Any]]:
    """Every epoch's policy record (`sokd_*` keys of metrics.jsonl)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no metrics.jsonl: give the folder of a SoKD run")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "sokd_alpha" in r]
    if not rows:
        raise ConfigError(f"{run_dir}'s metrics.jsonl has no policy records: is it a SoKD run "
                          "with DAFA (method.dafa: true, no manual_augment)?")  # fmt: skip
    return rows


def plot_policy(rows: list[dict[str, Any]], out: Path, top: int = 6) -> Path:
    """Two panels: the `top` most likely sub-policies' probability per epoch, and the final
    sub-policy's operation probabilities and magnitudes per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    alpha = torch.tensor([r["sokd_alpha"] for r in rows])
    best = alpha[-1].argsort(descending=True)[:top].tolist()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for index in best:
        left.plot(
            epochs, alpha[:, index].tolist(), marker="o", label=" + ".join(SUB_POLICIES[index])
        )
    left.axhline(1 / len(SUB_POLICIES), color="grey", linestyle=":", label="uniform (1/36)")
    left.set(xlabel="epoch", ylabel="softmax(alpha)", title="sub-policy probability")
    left.legend(fontsize=8)
    final = rows[-1]["sokd_subpolicy"]
    ops = final.split("+")
    for slot, name in enumerate(ops):
        right.plot(
            epochs, [r["sokd_op_prob"][slot] for r in rows], marker="o", label=f"{name}: beta"
        )
        right.plot(epochs, [r["sokd_magnitude"][slot] for r in rows], marker="s", linestyle="--",
                   label=f"{name}: m")  # fmt: skip
    searched = [r["epoch"] for r in rows if r.get("sokd_searching")]
    if searched:
        right.axvline(max(searched) + 0.5, color="grey", linestyle=":", label="search ends")
    right.set(xlabel="epoch", ylim=(0, 1), title=f"the most likely sub-policy: {final}")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


@torch.no_grad()
def mask_examples(run_dir: Path, count: int, overrides: list[str]) -> dict[str, torch.Tensor]:
    """For `count` validation images: the images, the teacher's (augmented) first distilled
    map averaged over channels, and DAM's mask from the student's head (the run's last.pt)."""
    run_dir = Path(run_dir)
    cfg = load_saved_config(run_dir / "config.yaml", ["device=cpu", *overrides])
    if cfg.method.name != "sokd":
        raise ConfigError(f"{run_dir} is a {cfg.method.name} run, not a SoKD run")
    data = build_data(cfg.data, batch_size=cfg.train.batch_size, device="cpu", seed=0)
    method = build_distiller(cfg, data.spec)
    ckpt = load_run_checkpoint(run_dir / "last.pt")
    method.load_trainable_state_dict(ckpt["method"])
    method.eval()
    method.start_epoch(int(ckpt["state"]["epoch"]))
    images = torch.cat([x for x, _ in data.val])[:count]
    _, features, teacher_features = method.student_and_teacher(images)
    pair = method.maps.pairs(method.feature_pairs(features, teacher_features))[0]
    draw = method.policy.draw(*method.generators(images.device)) if method.policy else None
    teacher_map = method.augment([pair.teacher], draw, None)[0]
    heat, size, offset = method.heads[pair.head](pair.student)
    boxes = decode_boxes(heat, size, offset, method.sokd.top_n, method.sokd.min_box)
    mask = box_mask(boxes, *pair.student.shape[-2:])
    mean, std = (
        torch.tensor(data.spec.mean).view(3, 1, 1),
        torch.tensor(data.spec.std).view(3, 1, 1),
    )
    return {
        "images": (images * std + mean).clamp(0, 1),
        "teacher_map": teacher_map.mean(1),
        "mask": mask[:, 0],
        "heat": heat[:, 0],
    }


def plot_masks(examples: dict[str, torch.Tensor], out: Path) -> Path:
    """One column an image: the image, the teacher map with DAM's mask over it, the heatmap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = examples["images"].shape[0]
    fig, axes = plt.subplots(3, n, figsize=(2.2 * n, 6.6), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(examples["images"][i].permute(1, 2, 0).numpy())
        axes[1, i].imshow(examples["teacher_map"][i].numpy(), cmap="viridis")
        axes[1, i].imshow(examples["mask"][i].numpy(), cmap="Reds", alpha=0.45, vmin=0, vmax=1)
        axes[2, i].imshow(examples["heat"][i].numpy(), cmap="magma")
        for row in range(3):
            axes[row, i].set_xticks([])
            axes[row, i].set_yticks([])
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("s(F_t) + DAM mask")
    axes[2, 0].set_ylabel("student heatmap")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
