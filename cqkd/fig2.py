"""Fig. 2 of the paper from a sweep's run folders: accuracy, training time, ECE and entropy
against the student's resolution, as a markdown table and (with matplotlib) one 4-panel PNG.

A sweep folder holds `<method key>/r<resolution>/` run directories (see tools/cqkd_sweep.py).
DML's number is its best cohort member (the paper reports the best), read from `top1` and
`top1_peer*` of summary.json; its ECE/entropy/NLL are the engine's, i.e. the student's (member
1). Training time is the mean of the per-epoch `seconds` in metrics.jsonl
(`epoch_seconds_mean`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# (key, label) of each curve, in the order of the paper's legend.
METHOD_LABELS = {
    "baseline": "Baseline (supervised)",
    "dml": "DML (best of cohort)",
    "cqkd10": "CQKD T=10",
    "cqkd20": "CQKD T=20",
}
PANELS = (
    ("top1", "Top-1 accuracy (%)", "(a) accuracy"),
    ("epoch_seconds_mean", "Training time per epoch (s)", "(b) training time"),
    ("ece", "ECE (15 bins)", "(c) calibration error"),
    ("entropy", "Mean entropy (nats)", "(d) entropy"),
)


@dataclass
class SweepRow:
    """One point of Fig. 2: a method at a student resolution."""

    method: str
    resolution: int
    top1: float
    top5: float
    ece: float
    entropy: float
    nll: float
    epoch_seconds_mean: float
    best_member: str  # "student" or "peerK" (DML)


def epoch_seconds_mean(run_dir: Path) -> float:
    """Mean training seconds per epoch from metrics.jsonl's per-epoch `seconds`."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    seconds = [json.loads(line)["seconds"] for line in lines if line.strip()]
    return sum(seconds) / len(seconds)


def best_member(summary: dict) -> tuple[str, float]:
    """The cohort member with the highest final top-1 (the student alone for other methods)."""
    best = ("student", summary["top1"])
    for key, value in summary.items():
        if key.startswith("top1_peer") and value > best[1]:
            best = (key.removeprefix("top1_"), value)
    return best


def read_row(method: str, resolution: int, run_dir: Path) -> SweepRow:
    """The Fig. 2 numbers of one finished run."""
    summary = json.loads((run_dir / "summary.json").read_text())
    member, top1 = best_member(summary)
    return SweepRow(
        method=method,
        resolution=resolution,
        top1=top1,
        top5=summary["top5"],
        ece=summary["ece"],
        entropy=summary["entropy"],
        nll=summary["nll"],
        epoch_seconds_mean=epoch_seconds_mean(run_dir),
        best_member=member,
    )


def collect(sweep_dir: Path) -> list[SweepRow]:
    """Every finished run under `sweep_dir/<method>/r<res>/`, by method then resolution."""
    rows = []
    for method in METHOD_LABELS:
        for run_dir in sorted((sweep_dir / method).glob("r*")):
            if (run_dir / "summary.json").is_file():
                rows.append(read_row(method, int(run_dir.name[1:]), run_dir))
    return sorted(rows, key=lambda r: (-r.resolution, list(METHOD_LABELS).index(r.method)))


def markdown_table(rows: list[SweepRow]) -> str:
    """The sweep as a markdown table, highest resolution first."""
    lines = [
        "| resolution | method | top-1 | top-5 | ECE | entropy | NLL | s/epoch |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        label = METHOD_LABELS[r.method]
        if r.method == "dml":
            label += f" [{r.best_member}]"
        lines.append(
            f"| {r.resolution} | {label} | {r.top1:.2f} | {r.top5:.2f} | {r.ece:.4f} | "
            f"{r.entropy:.3f} | {r.nll:.3f} | {r.epoch_seconds_mean:.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[SweepRow], path: Path, title: str = "") -> bool:
    """Fig. 2's four panels into one PNG; False (nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    for ax, (field, ylabel, panel) in zip(axes.flat, PANELS):
        for method, label in METHOD_LABELS.items():
            points = sorted((r.resolution, getattr(r, field)) for r in rows if r.method == method)
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o", label=label)
        ax.set_xticks(sorted({r.resolution for r in rows}))
        ax.set_xlabel("student image size h (px)")
        ax.set_ylabel(ylabel)
        ax.set_title(panel, fontsize=10)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True
