"""R2KD Figs. 4 and 5: two students' prediction entropy where the teacher is most uncertain.

Usage::

    python tools/r2kd_entropy.py RUN_R2KD RUN_KD [--fraction 0.1] [--classes 10] [--samples 4]
        [--labels r2kd kd] [--checkpoint best|last] [--device auto] [--out DIR]
        [--set data.root=/data ...] [--teacher-name NAME --teacher-checkpoint FILE]

Both runs are evaluated on the validation set of the first run's data config (they must share
it). The teacher is the first run's `teacher.checkpoint`. Per class, the top `--fraction` of the
class's samples by teacher entropy are selected (at least one); the table gives, per class and
over all selected samples, the teacher's and each student's mean entropy (nats) and each
student's mean probability of the true class (Fig. 5's point). The printed table and
`entropy_fig4.md` show the `--classes` classes of highest teacher entropy (0: all), as Fig. 4
does; `entropy_per_class.csv` has every class; `entropy.json` the pooled numbers.
`fig5_predictions.csv` holds the full prediction distributions of teacher and students on the
`--samples` samples of highest teacher entropy. With matplotlib: `entropy_fig4.png` (bars)
and `fig5_predictions.png`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from common.cli import ArgumentParser
from common.engine.distributed import check_device
from r2kd.analysis.cli import add_common_arguments, guarded, output_folder, run_labels
from r2kd.analysis.entropy import (
    entropy_comparison,
    most_uncertain_classes,
    most_uncertain_samples,
    sample_entropy,
)
from r2kd.analysis.images import has_matplotlib, write_bar_chart, write_distributions
from r2kd.analysis.runs import (
    check_same_data,
    collect_logits,
    load_student,
    load_teacher,
    read_config,
    validation_data,
)
from r2kd.analysis.tables import class_name, entropy_markdown, write_entropy_csv


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python tools/r2kd_entropy.py",
        description="R2KD Figs. 4/5: student entropy on the teacher's most uncertain samples.",
    )
    parser.add_argument("runs", nargs=2, type=Path, help="two run directories (e.g. R2KD, KD)")
    parser.add_argument("--fraction", type=float, default=0.1, help="top share per class")
    parser.add_argument("--classes", type=int, default=10, help="classes shown (0 = all)")
    parser.add_argument("--samples", type=int, default=4, help="samples for fig5 (0 = none)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if not 0.0 < args.fraction <= 1.0:
        parser.error("--fraction must be in (0, 1]")
    return args


def analyse(args: argparse.Namespace) -> dict:
    """Evaluate, write every output, print the table; return the JSON summary."""
    configs = [read_config(run, args.set) for run in args.runs]
    out = output_folder(args.out, args.runs[0] / "analysis")  # refused before any evaluation
    labels = run_labels(configs, args.runs, args.labels)
    check_same_data(dict(zip(labels, configs)))
    first = configs[0]
    if configs[1].teacher.checkpoint != first.teacher.checkpoint and not args.teacher_checkpoint:
        print(
            f"note: the runs name different teachers; using {first.teacher.checkpoint!r}",
            file=sys.stderr,
        )
    device = check_device(args.device)
    data = validation_data(first, device)
    classes = data.spec.num_classes
    teacher = load_teacher(first, classes, device, args.teacher_name, args.teacher_checkpoint)
    networks = {"teacher": teacher}
    for label, run, cfg in zip(labels, args.runs, configs):
        networks[label] = load_student(run, cfg, args.checkpoint, classes, device)
    logits, targets = collect_logits(networks, data.val)
    students = {label: logits[label] for label in labels}
    rows, overall = entropy_comparison(logits["teacher"], students, targets, args.fraction)
    shown = most_uncertain_classes(rows, args.classes or len(rows))
    names = data.spec.class_names

    table = entropy_markdown(shown, overall, names)
    title = (
        f"Mean prediction entropy (nats) on the top {args.fraction:.0%} teacher-entropy "
        f"samples per class; {len(shown)} of {len(rows)} classes shown (highest teacher "
        f"entropy first), last row pools every selected sample."
    )
    print(title)
    print(table)
    written = [
        write_markdown(out / "entropy_fig4.md", title, table),
        write_entropy_csv(out / "entropy_per_class.csv", rows, overall, names),
        write_fig5_csv(out / "fig5_predictions.csv", logits, targets, args.samples, labels),
        write_bar_chart(
            out / "entropy_fig4.png",
            [class_name(row, names) for row in shown],
            {label: [row.students[label] for row in shown] for label in labels},
            ylabel="mean entropy (nats)",
            title="Student entropy on high teacher-entropy samples (R2KD Fig. 4)",
        ),
    ]
    if args.samples:
        picked = most_uncertain_samples(logits["teacher"], args.samples)
        written.append(
            write_distributions(
                out / "fig5_predictions.png",
                {k: torch.softmax(v[picked].double(), dim=1) for k, v in logits.items()},
                targets[picked].tolist(),
                title="Predictions on the highest teacher-entropy samples (R2KD Fig. 5)",
            )
        )
    summary = {
        "runs": {label: str(run) for label, run in zip(labels, args.runs)},
        "teacher": {
            "name": teacher.name,
            "checkpoint": args.teacher_checkpoint or first.teacher.checkpoint,
        },
        "checkpoint": args.checkpoint,
        "fraction": args.fraction,
        "val_samples": len(targets),
        "overall": asdict(overall),
        "classes_shown": [asdict(row) | {"name": class_name(row, names)} for row in shown],
    }
    (out / "entropy.json").write_text(json.dumps(summary, indent=2) + "\n")
    written.append(out / "entropy.json")
    print("wrote " + ", ".join(str(p) for p in written if p is not None))
    if not has_matplotlib():
        print("(matplotlib is not installed: no PNG charts; the tables hold the numbers)")
    return summary


def write_markdown(path: Path, title: str, table: str) -> Path:
    """The title line and the table."""
    path.write_text(f"{title}\n\n{table}\n")
    return path


def write_fig5_csv(
    path: Path,
    logits: dict[str, torch.Tensor],
    targets: torch.Tensor,
    count: int,
    labels: list[str],
) -> Path:
    """Full prediction distributions of teacher and students on the `count` most uncertain
    samples (by teacher entropy): one row per (sample, model)."""
    picked = most_uncertain_samples(logits["teacher"], count).tolist() if count else []
    num_classes = logits["teacher"].shape[1]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["sample", "target", "model", "entropy", *(f"p_{c}" for c in range(num_classes))]
        )
        for index in picked:
            for model in ["teacher", *labels]:
                row = logits[model][index : index + 1]
                probs = torch.softmax(row.double(), dim=1)[0].tolist()
                entropy = float(sample_entropy(row)[0])
                writer.writerow(
                    [index, int(targets[index]), model, f"{entropy:.6f}"]
                    + [f"{p:.6f}" for p in probs]
                )
    return path


def main(argv: list[str] | None = None) -> int:
    """Parse, analyse; a user's mistake ends in one `error:` line (exit code 2)."""
    return guarded(analyse, lambda: parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
