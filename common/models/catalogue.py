"""Teachers by name: `teacher.checkpoint: mdistiller:resnet56` instead of a file path.

A catalogue maps a name to where its weights are published and their SHA-256; the file is
downloaded once into the torch hub cache (`torch.hub.get_dir()/checkpoints`, under
`$TORCH_HOME`), its hash checked, and loaded as any checkpoint file (`load_weights`). Names come
from, later ones adding to and replacing earlier ones:

- `common/models/teachers.yaml` (shipped): mdistiller's released CIFAR-100 teachers
  (`mdistiller:resnet56`, `mdistiller:resnet32x4`, ...), extracted from their one archive;
- torchvision's weights enums: `torchvision:<arch>.<WEIGHTS>` (`torchvision:resnet50.IMAGENET1K_V2`,
  `torchvision:resnet34.DEFAULT`), with the URL and the hash prefix torchvision itself carries
  (its file names end in the first hex digits of the file's SHA-256); they load into the zoo's
  ImageNet `resnet18/34/50`, which are torchvision's, or into `torchvision:<arch>` models;
- the YAML files named by the environment variable `KDZOO_TEACHERS` (several separated by
  `os.pathsep`), each `name: {url, sha256, file, member, member_sha256, model, classes, note}`.

The download, the checks and the cache are `common.models.catalogue_fetch`'s.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from common.config.validate import at_least, build_dataclass, matching, nearest_key
from common.errors import CheckpointError, ConfigError

__all__ = [
    "ENV_VAR",
    "TeacherEntry",
    "catalogue",
    "catalogue_names",
    "find_entry",
    "looks_like_name",
    "read_catalogue",
    "resolve_checkpoint",
    "torchvision_entry",
]

ENV_VAR = "KDZOO_TEACHERS"
SHIPPED = Path(__file__).with_name("teachers.yaml")
TORCHVISION = "torchvision:"
NAME_FORM = re.compile(r"[A-Za-z][\w-]*:[\w.\-]+")
HEX = r"([0-9a-f]{8,64})?"
HEX_WORDS = "a SHA-256 in lower-case hex: 64 digits, or a prefix of at least 8"


@dataclass(frozen=True)
class TeacherEntry:
    """Where one named teacher's weights are published and how to check them."""

    url: str = ""  # http(s):// or file://: the weight file, or a tar archive holding it
    sha256: str = matching(HEX, "", HEX_WORDS)  # of what `url` serves; "": none published
    file: str = ""  # its name in the cache; "": the URL's last part
    member: str = ""  # the weight file's path inside the tar archive at `url`, if one
    member_sha256: str = matching(HEX, "", HEX_WORDS)  # that file's; "": none published
    model: str = ""  # the zoo architecture the weights fit (load_weights checks it)
    classes: int = at_least(0, 0)  # its number of classes (0: not stated)
    note: str = ""  # where the entry comes from

    @property
    def download_name(self) -> str:
        """The name of the downloaded file in the cache."""
        return self.file or self.url.rstrip("/").rsplit("/", 1)[-1]


def looks_like_name(text: str) -> bool:
    """Whether `text` has the form of a catalogue name (`source:name`, no path separator)."""
    return bool(NAME_FORM.fullmatch(text))


def read_catalogue(path: Path) -> dict[str, TeacherEntry]:
    """The entries of the catalogue file `path` (YAML: name -> entry), each checked: a
    misspelt key is one line naming it and the nearest valid key."""
    from common.config.loader import read_yaml_mapping

    raw = read_yaml_mapping(path, "teacher catalogue")
    entries = {}
    for name, values in raw.items():
        where = f"teacher catalogue {path}: '{name}'"
        if not looks_like_name(str(name)):
            raise ConfigError(f"{where} is not a name of the form source:name (e.g. mine:resnet56)")
        if not isinstance(values, dict):
            raise ConfigError(f"{where} must map url, sha256, file, ... got {values!r}")
        try:
            entry = build_dataclass(TeacherEntry, values, str(name))
        except ConfigError as err:
            raise ConfigError(f"teacher catalogue {path}: {err}") from None
        if not entry.url:
            raise ConfigError(f"{where} has no url")
        entries[str(name)] = entry
    return entries


def user_catalogue_paths() -> list[Path]:
    """The catalogue files named by `$KDZOO_TEACHERS`, in order."""
    value = os.environ.get(ENV_VAR, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


@cache
def _shipped() -> dict[str, TeacherEntry]:
    return read_catalogue(SHIPPED)


def catalogue() -> dict[str, TeacherEntry]:
    """The shipped entries with those of `$KDZOO_TEACHERS`'s files over them (read on every
    call, so a change of the variable takes effect); torchvision's are found by name."""
    entries = dict(_shipped())
    for path in user_catalogue_paths():
        if not path.is_file():
            raise ConfigError(f"{ENV_VAR} names {path}, which is not a file")
        entries.update(read_catalogue(path))
    return entries


def catalogue_names() -> list[str]:
    """Every listed name (torchvision's `torchvision:<arch>.<WEIGHTS>` are not listed)."""
    return sorted(catalogue())


def torchvision_entry(name: str) -> TeacherEntry:
    """The entry of `torchvision:<arch>.<WEIGHTS>`, from torchvision's weights enum."""
    import torchvision
    from torch.hub import HASH_REGEX

    arch, _, weights = name.removeprefix(TORCHVISION).partition(".")
    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        known = sorted(torchvision.models.list_models(module=torchvision.models))
        guess = nearest_key(arch, known)
        hint = f"; did you mean '{TORCHVISION}{guess}.<WEIGHTS>'?" if guess else ""
        raise CheckpointError(
            f"checkpoint '{name}': torchvision has no model '{arch}'{hint}"
        ) from None
    choices = ["DEFAULT", *(member.name for member in enum)]
    if weights not in choices:
        raise CheckpointError(
            f"checkpoint '{name}' names no weights of torchvision's {arch}: write "
            f"{TORCHVISION}{arch}.<WEIGHTS> with one of {', '.join(choices)}"
        )
    member = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    file = member.url.rsplit("/", 1)[-1]
    found = HASH_REGEX.search(file)
    return TeacherEntry(
        url=member.url,
        sha256=found.group(1) if found else "",
        file=file,
        model=arch,
        classes=len(member.meta.get("categories", [])),
        note=f"torchvision's {type(member).__name__}.{member.name} (hash prefix: its file name)",
    )


def find_entry(name: str) -> TeacherEntry:
    """The entry called `name` (CheckpointError naming the nearest names otherwise)."""
    if name.startswith(TORCHVISION):
        return torchvision_entry(name)
    entries = catalogue()
    if name in entries:
        return entries[name]
    guess = nearest_key(name, list(entries))
    hint = f"; did you mean '{guess}'?" if guess else ""
    raise CheckpointError(
        f"checkpoint '{name}' is neither a file nor a catalogue name{hint} (names: "
        f"{', '.join(sorted(entries))}, torchvision:<arch>.<WEIGHTS>; more from ${ENV_VAR})"
    )


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """The local file `checkpoint` stands for: a path as given, or a catalogue name's file,
    downloaded and checked first where the cache does not hold it yet."""
    text = str(checkpoint)
    if isinstance(checkpoint, Path) or not looks_like_name(text) or Path(text).exists():
        return Path(checkpoint)
    from common.models.catalogue_fetch import fetch

    return fetch(text, find_entry(text))
