"""Unpacking a data archive (.tar.gz) once into a cache folder and reusing it afterwards.

The archive is extracted into a temporary sibling folder which, with a completion marker, is
renamed into place; an existing folder with a marker for the same archive is reused as is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

MARKER = ".kdzoo-unpacked.json"


def archive_identity(archive: Path) -> dict[str, object]:
    """What the marker records: name, size and modification time of the archive."""
    stat = archive.stat()
    return {"archive": archive.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_unpacked(archive: Path, dest: Path) -> bool:
    """Whether `dest` holds a complete unpack of this very archive."""
    marker = dest / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == archive_identity(archive)
    except (OSError, ValueError):
        return False


def extract(archive: Path, into: Path) -> None:
    """Extract with the system `tar` when available (fast), else Python's tarfile."""
    if shutil.which("tar"):
        subprocess.run(["tar", "xzf", str(archive), "-C", str(into)], check=True)
        return
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def unpack_once(archive: Path, dest: Path) -> Path:
    """`dest`, holding the archive's contents; extracted only when not done before."""
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"data archive not found: {archive}")
    if is_unpacked(archive, dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        extract(archive, staging)
        (staging / MARKER).write_text(json.dumps(archive_identity(archive)))
        if dest.exists() and not is_unpacked(archive, dest):
            shutil.rmtree(dest)  # an unpack of another archive version, or an interrupted one
        try:
            os.rename(staging, dest)
        except OSError:
            if not is_unpacked(archive, dest):  # not a concurrent unpack that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
