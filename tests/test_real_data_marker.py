"""The real-data tests skip, with the reason, for a contributor without the archives, and
fail in CI (KD_REQUIRE_REAL_DATA=1, set by .ci/run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

PROBE = """
def test_needs_cifar(cifar10_jpg_root):
    assert cifar10_jpg_root.is_dir()
"""


def run_probe(tmp_path: Path, required: bool) -> subprocess.CompletedProcess:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    (tmp_path / "conftest.py").write_text((HERE / "conftest.py").read_text())
    env = {**os.environ, "KD_SHARED_DATA": str(tmp_path / "no_archives")}
    env.pop("KD_REQUIRE_REAL_DATA", None)
    if required:
        env["KD_REQUIRE_REAL_DATA"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(probe)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": f"{HERE}{os.pathsep}{HERE.parent}"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_archive_skips_with_its_name_for_a_contributor(tmp_path: Path) -> None:
    done = run_probe(tmp_path, required=False)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout and "cifar10-jpg.tar.gz" in done.stdout


def test_a_missing_archive_fails_when_ci_requires_the_data(tmp_path: Path) -> None:
    done = run_probe(tmp_path, required=True)
    assert done.returncode == 1 and "1 error" in done.stdout, done.stdout  # fails in set-up
    assert "KD_REQUIRE_REAL_DATA" in done.stdout
