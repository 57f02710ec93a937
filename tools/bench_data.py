"""Images/s of the device-resident CIFAR pipeline vs torchvision's PIL DataLoader.

Both produce the same training batches: RandomCrop(32, padding=4) + RandomHorizontalFlip +
ToTensor + Normalize, batch 128. Ours gathers, crops, flips and normalises whole batches of a
uint8 tensor held on the device (`common.data.device_loader`); the references are the usual
torchvision DataLoader (2 workers) over (a) the JPEG files (ImageFolder) and (b) PIL images
already decoded in memory.

    python tools/bench_data.py [--root DIR] [--steps 50] [--batch-size 128] [--device cpu]

Without --root the shared `cifar10-jpg.tar.gz` is unpacked once into the test cache
($KD_DATA_CACHE, default ~/.cache/kdzoo/shared), as `tests/conftest.py` does.
"""

from __future__ import annotations

import argparse
import json
import sys

from common.bench.data_pipeline import bench_data_pipeline, default_root
from common.cli import ArgumentParser, report
from common.engine.distributed import check_device
from common.errors import UserError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; a malformed one raises ConfigError (one `error:` line)."""
    parser = ArgumentParser(prog="tools/bench_data.py", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="", help="folder holding the CIFAR-10 JPEG tree")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    for flag, value, low in (
        ("--steps", args.steps, 1),
        ("--batch-size", args.batch_size, 1),
        ("--workers", args.workers, 0),
    ):
        if value < low:
            parser.error(f"{flag} must be >= {low}, got {value}")
    return args


def bench(args: argparse.Namespace) -> None:
    """Measure and print the table and the JSON line."""
    check_device(args.device)
    root = args.root or str(default_root())
    result = bench_data_pipeline(
        root, args.steps, args.batch_size, device=args.device, workers=args.workers
    )
    rows = [
        (f"ours, device-resident on {result['device']}", result["ours_images_per_s"]),
        ("torchvision DataLoader, JPEG files", result["torchvision_jpeg_images_per_s"]),
        ("torchvision DataLoader, PIL in memory", result["torchvision_pil_memory_images_per_s"]),
    ]
    for label, rate in rows:
        print(f"{label:<40} {rate:>10,} images/s")
    print(
        f"speed-up: {result['speedup_vs_jpeg']}x vs JPEG files, "
        f"{result['speedup_vs_pil_memory']}x vs PIL images in memory"
    )
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    """Parse and measure; a user's mistake ends in one `error:` line (exit code 2)."""
    try:
        bench(parse_args(argv))
    except UserError as err:
        return report(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
