"""A catalogue teacher's file in the torch hub cache: downloaded once, hash checked, nothing
half-written left behind (`common.models.catalogue` says which names exist).

- A plain entry is downloaded to `<cache>/<file>`; an archive entry's tar to `<cache>/<file>`
  and its `member` extracted to `<cache>/<archive name>/<member>` (the archive is kept: the
  other teachers in it are extracted without a second download).
- `torch.hub.download_url_to_file` downloads to a temporary name with the hash prefix checked;
  the whole SHA-256 is checked again here before the file takes its name (`os.replace`), and a
  file found in the cache (one placed by hand) is checked before it is used.
- A wrong hash, a failed download (no network) or a missing archive member is one
  `CheckpointError` line naming the URL and the path where the file can be placed by hand.
- Processes that fetch the same file at once (torchrun) wait on a lock file beside it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch.hub

from common.config.validate import nearest_key
from common.errors import CheckpointError
from common.models.catalogue import TeacherEntry

__all__ = ["cache_dir", "extracted_path", "fetch", "sha256_of"]

CHUNK = 1 << 20
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
LOGGER = logging.getLogger("kdzoo.catalogue")


def cache_dir() -> Path:
    """Where catalogue files go: torch hub's checkpoint cache (`$TORCH_HOME/hub/checkpoints`)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file at `path`, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def extracted_path(entry: TeacherEntry) -> Path:
    """Where an archive entry's member is kept: `<cache>/<archive name>/<member>`."""
    stem = entry.download_name
    for suffix in ARCHIVE_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return cache_dir() / stem / entry.member


def fetch(name: str, entry: TeacherEntry) -> Path:
    """The local weight file of the catalogue entry `name`, fetched and checked if needed."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    download = cache / entry.download_name
    target = extracted_path(entry) if entry.member else download
    with _locked(download):
        if target.is_file():
            expected = entry.member_sha256 if entry.member else entry.sha256
            _check_placed(name, target, expected)
            return target
        if download.is_file():
            _check_placed(name, download, entry.sha256)
        else:
            _download(name, entry, download, target)
        if entry.member:
            _extract(name, entry, download, target)
    return target


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `.<name>.lock` beside `path` (where fcntl exists)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; a second download replaces the first atomically
        yield
        return
    with open(path.with_name(f".{path.name}.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _matches(digest: str, expected: str) -> bool:
    return not expected or digest.startswith(expected)


def _check_placed(name: str, path: Path, expected: str) -> None:
    """Refuse a file already in the cache whose hash is not the catalogue's."""
    digest = sha256_of(path)
    if not _matches(digest, expected):
        raise CheckpointError(
            f"teacher '{name}': {path} has SHA-256 {digest}, the catalogue expects {expected}: "
            "it is not the published file; delete it and run again"
        )


def _by_hand(entry: TeacherEntry, download: Path, target: Path) -> str:
    """How to place the file without a network (with its hash, where one is published)."""
    whole = len(entry.sha256) == 64
    pinned = f" (SHA-256 {'' if whole else 'starting '}{entry.sha256})" if entry.sha256 else ""
    where = f"download {entry.url} elsewhere and place it at {download}{pinned}"
    if entry.member:
        where += f", or place its member {entry.member} at {target}"
    return where


def _download(name: str, entry: TeacherEntry, download: Path, target: Path) -> None:
    """Download `entry.url` to `download`, hash checked; nothing kept on any failure."""
    tmp = download.with_name(f".{download.name}.{uuid.uuid4().hex}.download")
    try:
        torch.hub.download_url_to_file(
            entry.url, str(tmp), hash_prefix=entry.sha256 or None, progress=sys.stderr.isatty()
        )
        digest = sha256_of(tmp)
        if not _matches(digest, entry.sha256):
            raise _wrong_hash(name, entry, digest)
        os.replace(tmp, download)
    except RuntimeError as err:
        found = re.search(r'got "([0-9a-f]+)"', str(err))
        if "invalid hash value" not in str(err) or found is None:
            raise
        raise _wrong_hash(name, entry, found.group(1)) from None
    except (OSError, ValueError) as err:  # urllib's URLError/HTTPError are OSErrors
        reason = getattr(err, "reason", None) or err
        raise CheckpointError(
            f"cannot download teacher '{name}' from {entry.url} ({reason}); without a network, "
            f"{_by_hand(entry, download, target)}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    if not entry.sha256 and not entry.member:
        LOGGER.warning(
            f"warning: teacher '{name}': {entry.url} has no published SHA-256, so it was not "
            f"verified; what was downloaded has SHA-256 {digest} ({download})"
        )


def _wrong_hash(name: str, entry: TeacherEntry, digest: str) -> CheckpointError:
    return CheckpointError(
        f"teacher '{name}': the file from {entry.url} has SHA-256 {digest}, the catalogue "
        f"expects {entry.sha256}: refused, nothing kept in {cache_dir()}"
    )


def _member(tar: tarfile.TarFile, name: str, member: str, archive: Path) -> tarfile.TarInfo:
    """The archive's entry for `member` (also found under a leading `./`)."""
    for candidate in (member, f"./{member}"):
        try:
            info = tar.getmember(candidate)
        except KeyError:
            continue
        if info.isfile():
            return info
    files = [m.name for m in tar.getmembers() if m.isfile()]
    guess = nearest_key(member, files)
    hint = f"; did you mean '{guess}'?" if guess else ""
    raise CheckpointError(f"teacher '{name}': {archive} has no file {member}{hint}")


def _extract(name: str, entry: TeacherEntry, archive: Path, target: Path) -> None:
    """Extract `entry.member` of `archive` to `target`, its hash checked; nothing half-written
    is kept."""
    try:
        tar = tarfile.open(archive)  # noqa: SIM115 (closed by the `with tar` below)
    except (tarfile.TarError, OSError) as err:
        raise CheckpointError(
            f"teacher '{name}': {archive} is not a readable tar archive ({err}); delete it and "
            "run again"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.extract")
    digest = hashlib.sha256()
    try:
        with tar:
            source = tar.extractfile(_member(tar, name, entry.member, archive))
            assert source is not None  # a regular file, checked by _member
            with source, open(tmp, "wb") as out:
                for block in iter(lambda: source.read(CHUNK), b""):
                    digest.update(block)
                    out.write(block)
        if not _matches(digest.hexdigest(), entry.member_sha256):
            raise CheckpointError(
                f"teacher '{name}': {entry.member} in {archive} has SHA-256 {digest.hexdigest()},"
                f" the catalogue expects {entry.member_sha256}: refused, nothing extracted "
                "(delete the archive to download it again)"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    if not entry.member_sha256 and not entry.sha256:
        LOGGER.warning(
            f"warning: teacher '{name}': no SHA-256 is published for {entry.url} or its member "
            f"{entry.member}, so it was not verified; the member has SHA-256 "
            f"{digest.hexdigest()} ({target})"
        )
