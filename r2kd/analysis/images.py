"""Images of the analysis tools: heatmaps (Fig. 6) and bar charts (Figs. 4, 5).

matplotlib is optional (`pip install -e '.[plot]'`). With it, heatmaps and charts are PNG
files. Without it, a heatmap is still written as a binary PPM (P6: RGB, 8 bits; any image
viewer or `convert x.ppm x.png` reads it) coloured with viridis-like anchors, one
`scale` x `scale` block of pixels per matrix entry; charts are skipped (the tables carry the
same numbers).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

# Colours at 0, 1/4, 1/2, 3/4, 1 of matplotlib's viridis; linear in between.
ANCHORS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64
)


def has_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def colourise(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped) -> uint8 RGB of shape values.shape + (3,)."""
    x = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (len(ANCHORS) - 1)
    low = np.minimum(np.floor(x).astype(int), len(ANCHORS) - 2)
    t = (x - low)[..., None]
    rgb = ANCHORS[low] * (1 - t) + ANCHORS[low + 1] * t
    return np.round(rgb).astype(np.uint8)


def heatmap_pixels(matrix: np.ndarray, vmax: float | None = None, scale: int = 1) -> np.ndarray:
    """(H * scale, W * scale, 3) uint8 image of a (H, W) matrix, 0 -> dark, `vmax` -> bright.

    `vmax` defaults to the matrix's maximum (1 when the matrix is all zeros).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"a heatmap needs a 2-D matrix, got shape {matrix.shape}")
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    top = float(matrix.max()) if vmax is None else float(vmax)
    rgb = colourise(matrix / (top if top > 0 else 1.0))
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)


def write_ppm(path: str | Path, rgb: np.ndarray) -> Path:
    """Write a (H, W, 3) uint8 array as a binary PPM (P6)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) pixels, got shape {rgb.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = rgb.shape[:2]
    path.write_bytes(f"P6\n{width} {height}\n255\n".encode() + rgb.tobytes())
    return path


def write_heatmap(
    matrix: np.ndarray | torch.Tensor,
    path: str | Path,
    *,
    vmax: float | None = None,
    scale: int = 4,
    title: str = "",
    use_matplotlib: bool | None = None,
) -> Path:
    """Save `matrix` as `path` with suffix .png (matplotlib, with a colour bar) or .ppm.

    `use_matplotlib=None` uses matplotlib when it is installed. Returns the path written.
    """
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().double().numpy()
    path = Path(path)
    if use_matplotlib is None:
        use_matplotlib = has_matplotlib()
    if not use_matplotlib:
        return write_ppm(path.with_suffix(".ppm"), heatmap_pixels(matrix, vmax, scale))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    top = float(np.max(matrix)) if vmax is None else vmax
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=top or 1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax)
    ax.set_xlabel("class")
    ax.set_ylabel("class")
    ax.set_title(title)
    return _save(fig, path.with_suffix(".png"))


def write_bar_chart(
    path: str | Path,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    title: str = "",
) -> Path | None:
    """Grouped bars (one group per category, one bar per series) as PNG; None without matplotlib."""
    if not has_matplotlib():
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(categories) * len(series)), 3.6))
    width = 0.8 / max(1, len(series))
    positions = np.arange(len(categories))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(positions + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(positions, list(categories), rotation=45, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return _save(fig, Path(path).with_suffix(".png"))


def write_distributions(
    path: str | Path,
    probabilities: Mapping[str, torch.Tensor],
    targets: Sequence[int],
    *,
    title: str = "",
) -> Path | None:
    """Fig. 5: per sample, each model's class probabilities (lines), the true class marked.

    `probabilities` maps a model name to (K, C) probabilities of the same K samples. PNG, or
    None without matplotlib.
    """
    if not has_matplotlib():
        return None
    plt = _pyplot()
    count = len(targets)
    fig, axes = plt.subplots(count, 1, figsize=(6.0, 1.6 * count), squeeze=False)
    for k, ax in enumerate(axes[:, 0]):
        for name, probs in probabilities.items():
            ax.plot(probs[k].detach().cpu().double().numpy(), label=name, linewidth=0.9)
        ax.axvline(int(targets[k]), color="black", linestyle=":", linewidth=0.8)
        ax.set_ylabel("p", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("class (dotted: true class)")
    return _save(fig, Path(path).with_suffix(".png"))


def _pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    _pyplot().close(fig)
    return path
