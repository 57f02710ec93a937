"""Fig. 2 of the paper from a sweep's run folders: accuracy, training time, ECE and entropy
against the student's resolution, as a markdown table and (with matplotlib) one 4-panel PNG.

A sweep folder holds `<method key>/r<resolution>/` run directories (see tools/cqkd_sweep.py).

Top-1 is the run's BEST validation top-1 (`top1_best` of summary.json), as the released code
reports it (distillistic returns and logs the best validation accuracy of a run); the last
epoch's top-1 is shown beside it. Top-5, ECE, entropy and NLL are those of the same evaluation
as the reported top-1 (the `metrics.jsonl` line of the best epoch), so each point describes one
model. DML: every cohort member's best top-1 is compared (`top1_best` / `top1_best_peerK` of
summary.json, or the maximum of its `top1` / `top1_peerK` over metrics.jsonl for runs written
before the engine kept it) and the member with the highest one is reported, with ITS OWN ECE
and entropy (`ece_peerK`, `entropy_peerK` of that epoch's metrics.jsonl line, else of
summary.json). The engine evaluates only top-1, ECE and entropy for a peer, so a peer's top-5
and NLL are not available ("n/a"), nor are its ECE/entropy in runs that predate those keys.
Training time is the mean of the per-epoch `seconds` in metrics.jsonl (`epoch_seconds_mean`).
"""

from __future__ import annotations

import json
import math
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
    ("top1", "Top-1 accuracy, best epoch (%)", "(a) accuracy"),
    ("epoch_seconds_mean", "Training time per epoch (s)", "(b) training time"),
    ("ece", "ECE (15 bins)", "(c) calibration error"),
    ("entropy", "Mean entropy (nats)", "(d) entropy"),
)
NOTE = (
    "top-1: the best validation top-1 of the run (as the released code reports Fig. 2), at "
    "`epoch`; top-5, ECE, entropy and NLL are from that same evaluation; `last`: the final "
    "epoch's top-1. DML: the cohort member with the highest best top-1, with its own metrics "
    "(the engine evaluates top-1, ECE and entropy only for a peer; n/a = not recorded)."
)
NAN = float("nan")


@dataclass
class SweepRow:
    """One point of Fig. 2: a method at a student resolution (NaN = not recorded)."""

    method: str
    resolution: int
    top1: float  # the best validation top-1 (Fig. 2's number)
    top5: float
    ece: float
    entropy: float
    nll: float
    epoch_seconds_mean: float
    best_member: str  # "student" or "peerK" (DML)
    top1_last: float = NAN  # the last epoch's top-1 of the same member
    best_epoch: int = 0  # the epoch whose evaluation gave `top1` (0 = unknown)


def epoch_records(run_dir: Path) -> list[dict]:
    """The per-epoch lines of metrics.jsonl."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def epoch_seconds_mean(run_dir: Path) -> float:
    """Mean training seconds per epoch from metrics.jsonl's per-epoch `seconds`."""
    seconds = [record["seconds"] for record in epoch_records(run_dir)]
    return sum(seconds) / len(seconds)


def members(summary: dict) -> list[str]:
    """The evaluated networks of a run: "student", then "peer1", "peer2", ... (DML)."""
    peers = sorted(
        (k.removeprefix("top1_") for k in summary if k.startswith("top1_peer")),
        key=lambda name: int(name.removeprefix("peer") or 0),
    )
    return ["student", *peers]


def _suffix(member: str) -> str:
    return "" if member == "student" else f"_{member}"


def member_best(summary: dict, records: list[dict], member: str) -> tuple[float, int]:
    """(best validation top-1, its epoch; 0 when unknown) of one member of a run."""
    key = f"top1{_suffix(member)}"
    evaluated = [(r[key], r["epoch"]) for r in records if r.get(key) is not None]
    best_key = "top1_best" if member == "student" else f"top1_best_{member}"
    best = summary.get(best_key)
    if best is None:  # older runs: the maximum of the per-epoch evaluations, else the final
        best = max((v for v, _ in evaluated), default=summary.get(key))
    if best is None:
        return NAN, 0
    if member == "student" and summary.get("best_epoch"):
        return best, int(summary["best_epoch"])
    epoch = next((e for v, e in evaluated if v == best), 0)
    return best, epoch


def best_member(summary: dict, records: list[dict] | None = None) -> tuple[str, float]:
    """The cohort member with the highest best top-1 (the student alone for other methods).

    Ties go to the earlier member (the student first)."""
    records = records or []
    best = ("student", member_best(summary, records, "student")[0])
    for member in members(summary)[1:]:
        value = member_best(summary, records, member)[0]
        if value > best[1]:
            best = (member, value)
    return best


def _value(*sources: dict | None, key: str) -> float:
    for source in sources:
        if source and source.get(key) is not None:
            return float(source[key])
    return NAN


def read_row(method: str, resolution: int, run_dir: Path) -> SweepRow:
    """The Fig. 2 numbers of one finished run."""
    summary = json.loads((run_dir / "summary.json").read_text())
    records = epoch_records(run_dir)
    member, top1 = best_member(summary, records)
    _, epoch = member_best(summary, records, member)
    at_best = next((r for r in records if r["epoch"] == epoch), None)
    suffix = _suffix(member)
    # summary.json holds the final epoch's values: a fallback only when that is the best epoch.
    final = summary if epoch and epoch == summary.get("epochs") else None
    return SweepRow(
        method=method,
        resolution=resolution,
        top1=top1,
        top5=_value(at_best, final, key=f"top5{suffix}"),
        ece=_value(at_best, final, key=f"ece{suffix}"),
        entropy=_value(at_best, final, key=f"entropy{suffix}"),
        nll=_value(at_best, final, key=f"nll{suffix}"),
        epoch_seconds_mean=epoch_seconds_mean(run_dir),
        best_member=member,
        top1_last=_value(summary, key=f"top1{suffix}"),
        best_epoch=epoch,
    )


def collect(sweep_dir: Path) -> list[SweepRow]:
    """Every finished run under `sweep_dir/<method>/r<res>/`, by method then resolution."""
    rows = []
    for method in METHOD_LABELS:
        for run_dir in sorted((sweep_dir / method).glob("r*")):
            if (run_dir / "summary.json").is_file():
                rows.append(read_row(method, int(run_dir.name[1:]), run_dir))
    return sorted(rows, key=lambda r: (-r.resolution, list(METHOD_LABELS).index(r.method)))


def _fmt(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def markdown_table(rows: list[SweepRow]) -> str:
    """The sweep as a markdown table, highest resolution first, and what its columns are."""
    lines = [
        "| resolution | method | top-1 (best) | epoch | top-1 (last) | top-5 | ECE | entropy | "
        "NLL | s/epoch |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        label = METHOD_LABELS[r.method]
        if r.method == "dml":
            label += f" [{r.best_member}]"
        lines.append(
            f"| {r.resolution} | {label} | {r.top1:.2f} | {r.best_epoch or '?'} | "
            f"{_fmt(r.top1_last, 2)} | {_fmt(r.top5, 2)} | {_fmt(r.ece, 4)} | "
            f"{_fmt(r.entropy, 3)} | {_fmt(r.nll, 3)} | {r.epoch_seconds_mean:.1f} |"
        )
    return "\n".join(lines) + "\n\n" + NOTE + "\n"


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
            points = sorted(
                (r.resolution, getattr(r, field))
                for r in rows
                if r.method == method and not math.isnan(getattr(r, field))
            )
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
