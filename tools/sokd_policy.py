"""Draw a SoKD run's policy and masks: `python tools/sokd_policy.py RUN_DIR [--images 6]`.

Writes `<RUN_DIR>/analysis/sokd_policy.png` (the most likely sub-policies' probabilities per
epoch, and the final sub-policy's operation probabilities and magnitudes) and
`sokd_masks.png` (validation images, the augmented teacher map with DAM's mask over it, and
the student's heatmap, from the run's last.pt). `--set data.root=...` overrides the run's
config (e.g. where the data lives on this machine). Needs matplotlib (the plot extra).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from common.cli import ArgumentParser, report
from common.errors import ConfigError, UserError
from sokd.analysis import mask_examples, plot_masks, plot_policy, policy_history


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="tools/sokd_policy.py", description=__doc__.splitlines()[0])
    parser.add_argument("run", metavar="RUN_DIR")
    parser.add_argument("--images", type=int, default=6, help="validation images to draw")
    parser.add_argument("--out", help="output folder (default: RUN_DIR/analysis)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    try:
        args = parser.parse_args(argv)
        if importlib.util.find_spec("matplotlib") is None:
            raise ConfigError("tools/sokd_policy.py needs matplotlib: pip install -e '.[plot]'")
        if args.images < 1:
            parser.error(f"--images must be >= 1, got {args.images}")
        run = Path(args.run)
        if not (run / "config.yaml").is_file():
            raise ConfigError(f"{run} is not a run folder (no config.yaml)")
        out = Path(args.out) if args.out else run / "analysis"
        out.mkdir(parents=True, exist_ok=True)
        print(plot_policy(policy_history(run), out / "sokd_policy.png"))
        print(plot_masks(mask_examples(run, args.images, args.set), out / "sokd_masks.png"))
    except UserError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
