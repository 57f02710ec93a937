"""The study's loss terms, read from its committed runs: for each row, the mean over seeds of
every term a method logs (`metrics.jsonl`), at the first and the last epoch, beside top-1.

This is the evidence the README's reading of the study cites (why AT at its paper's weight
sits below vanilla, why SoKD over FitNet loses to FitNet): a term that dwarfs the
cross-entropy, a mask that covers a few pixels, a policy still at uniform. Run from the
repository root:

    python tools/studies/cifar10/loss_terms.py tools/studies/cifar10/runs/cpu \
        tools/studies/cifar10/runs/cpu_variants
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

# logged by every run (accuracy, calibration, time): not loss terms
NOT_TERMS = {
    "epoch", "lr", "top1", "top5", "top1_best", "ece", "nll", "entropy", "seconds",
    "images_per_second", "loss", "sokd_searching", "sokd_subpolicy_prob",
}  # fmt: skip
# per-network accuracy and calibration (SLKD's SL-teachers log their own): not loss terms
NOT_TERM_PREFIXES = ("top1_", "top5_", "ece_", "nll_", "entropy_")


def read_rows(path: Path) -> list[dict]:
    """One dict per evaluated epoch of a run's metrics.jsonl."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if "top1" in row]


def terms_of(row: dict) -> dict[str, float]:
    """The numeric loss terms of one epoch (peers' copies and list-valued policy logs left out)."""
    return {
        key: float(value)
        for key, value in row.items()
        if key not in NOT_TERMS
        and not key.startswith(NOT_TERM_PREFIXES)
        and "_peer" not in key
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    }


def summarise(run_dirs: list[Path]) -> dict:
    """Mean over seeds of top-1 and of each term at the first and the last epoch."""
    runs = [read_rows(d / "metrics.jsonl") for d in run_dirs]
    runs = [r for r in runs if r]
    first = [terms_of(r[0]) for r in runs]
    last = [terms_of(r[-1]) for r in runs]
    keys = sorted(set().union(*(t.keys() for t in last)))
    policy = [r[-1]["sokd_subpolicy"] for r in runs if "sokd_subpolicy" in r[-1]]
    probs = [r[-1]["sokd_subpolicy_prob"] for r in runs if "sokd_subpolicy_prob" in r[-1]]
    return {
        "n": len(runs),
        "top1": statistics.mean(r[-1]["top1"] for r in runs),
        "first": {k: statistics.mean(t[k] for t in first if k in t) for k in keys},
        "last": {k: statistics.mean(t[k] for t in last if k in t) for k in keys},
        "policy": policy,
        "policy_prob": max(probs) if probs else None,
    }


def fmt(value: float) -> str:
    """Three significant figures; a coverage (a fraction) as a percentage."""
    return f"{value:.3g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="+", type=Path, help="sweep output folders (row/seedN)")
    args = parser.parse_args(argv)
    print("| row | n | top-1 | terms at the first epoch -> the last (mean over seeds) | policy |")
    print("|---|---:|---:|---|---|")
    for root in args.roots:
        if not root.is_dir():
            print(f"error: {root} is not a folder of runs; give a sweep's output folder",
                  file=sys.stderr)  # fmt: skip
            return 2
        for row in sorted(p for p in root.iterdir() if p.is_dir()):
            seeds = sorted(d for d in row.glob("seed*") if (d / "metrics.jsonl").is_file())
            if not seeds:
                continue
            s = summarise(seeds)
            terms = ", ".join(f"{k} {fmt(s['first'][k])} -> {fmt(s['last'][k])}" for k in s["last"])
            policy = ""
            if s["policy"]:
                distinct = len(set(s["policy"]))
                policy = (
                    f"{distinct} different over {len(s['policy'])} seeds, e.g. {s['policy'][0]};"
                    f" top probability {s['policy_prob']:.4f} (uniform 1/36 = 0.0278)"
                )
            print(f"| {root.name}/{row.name} | {s['n']} | {s['top1']:.2f} | {terms} | {policy} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
