"""R2KD Fig. 6: how far a student's logit correlation matrix is from its teacher's.

Usage::

    python tools/r2kd_corr_disparity.py RUN [RUN ...] [--labels r2kd kd] [--scale 4]
        [--checkpoint best|last] [--device auto] [--out DIR] [--set data.root=/data ...]
        [--teacher-name NAME --teacher-checkpoint FILE]

For each run (R2KD, KD, ...: any method), the student and the run's teacher are evaluated on
the validation set; `common.metrics.correlation_matrix` of each one's logits (C x C, over the
validation samples) gives |corr_S - corr_T|, whose mean (`correlation_disparity`) is printed
and written to `corr_disparity.json`. Each run's |difference| matrix is saved as
`corr_disparity_<label>.npy` and as an image on one colour scale shared by all runs (0 = dark,
the largest entry over all runs = bright): `corr_disparity_<label>.png` with matplotlib, else
`corr_disparity_<label>.ppm` (binary PPM written with numpy, `--scale` pixels per entry), so
an image always results.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from torch import Tensor

from common.cli import ArgumentParser
from common.engine.distributed import check_device
from r2kd.analysis.cli import (
    add_common_arguments,
    file_safe,
    guarded,
    output_folder,
    run_labels,
)
from r2kd.analysis.correlation import Disparity, disparity
from r2kd.analysis.images import has_matplotlib, write_heatmap
from r2kd.analysis.runs import (
    check_same_data,
    collect_logits,
    load_student,
    load_teacher,
    read_config,
    validation_data,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python tools/r2kd_corr_disparity.py",
        description="R2KD Fig. 6: student-teacher disparity of logit correlation matrices.",
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--scale", type=int, default=4, help="PPM pixels per matrix entry")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be >= 1")
    return args


def analyse(args: argparse.Namespace) -> dict:
    """Evaluate every run, write the JSON, matrices and images; return the JSON summary."""
    configs = [read_config(run, args.set) for run in args.runs]
    out = output_folder(args.out, args.runs[0] / "analysis")  # refused before any evaluation
    labels = run_labels(configs, args.runs, args.labels)
    check_same_data(dict(zip(labels, configs)))
    device = check_device(args.device)
    data = validation_data(configs[0], device)
    classes = data.spec.num_classes
    results: dict[str, Disparity] = {}
    teacher_logits: dict[tuple[str, str], Tensor] = {}  # a teacher shared by runs runs once
    for label, run, cfg in zip(labels, args.runs, configs):
        key = (
            args.teacher_name or cfg.teacher.name,
            args.teacher_checkpoint or cfg.teacher.checkpoint,
        )
        networks = {"student": load_student(run, cfg, args.checkpoint, classes, device)}
        if key not in teacher_logits:
            networks["teacher"] = load_teacher(
                cfg, classes, device, args.teacher_name, args.teacher_checkpoint
            )
        logits, _ = collect_logits(networks, data.val)
        if "teacher" in logits:
            teacher_logits[key] = logits["teacher"]
        results[label] = disparity(logits["student"], teacher_logits[key])

    vmax = max(r.max for r in results.values())
    summary = {"vmax": vmax, "runs": {}}
    for label, run in zip(labels, args.runs):
        result = results[label]
        stem = out / f"corr_disparity_{file_safe(label)}"
        np.save(stem.with_suffix(".npy"), result.matrix.numpy())
        image = write_heatmap(
            result.matrix, stem, vmax=vmax, scale=args.scale, title=f"|corr_S - corr_T|: {label}"
        )
        summary["runs"][label] = {
            "run": str(run),
            "disparity": result.mean,
            "max": result.max,
            "num_classes": classes,
            "val_samples": data.spec.val_size,
            "image": str(image),
        }
        print(f"{label}: correlation disparity {result.mean:.6f} (max {result.max:.4f}) -> {image}")
    (out / "corr_disparity.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out / 'corr_disparity.json'}")
    if not has_matplotlib():
        print("(matplotlib is not installed: images are binary PPM files)")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Parse, analyse; a user's mistake ends in one `error:` line (exit code 2)."""
    return guarded(analyse, lambda: parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
