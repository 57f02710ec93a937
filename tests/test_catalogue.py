"""Teachers by name (`common.models.catalogue`): offline, with `file://` URLs and the torch hub
cache in a temporary `$TORCH_HOME`. A good file loads once downloaded; a wrong hash is one line
and leaves nothing in the cache; without a network, one line names the URL and where to place
the file by hand."""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_runs import tiny_recipe

from common.cli import main
from common.errors import CheckpointError, ConfigError
from common.models import build_model, load_weights
from common.models.catalogue import (
    ENV_VAR,
    catalogue,
    catalogue_names,
    find_entry,
    looks_like_name,
    resolve_checkpoint,
)
from common.models.catalogue_fetch import cache_dir, sha256_of

pytestmark = pytest.mark.usefixtures("one_thread")

RELEASES = "https://github.com/megvii-research/mdistiller/releases/download"
MDISTILLER_TAR = f"{RELEASES}/checkpoints/cifar_teachers.tar"
MEMBER = "cifar_teachers/resnet8_vanilla/ckpt_epoch_240.pth"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache and no user catalogue."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def teacher_bytes(num_classes: int = 8, seed: int = 0) -> tuple[bytes, dict]:
    """A resnet8 saved as the released teachers are (weights under `model`, the options as an
    argparse.Namespace and the accuracy as a NumPy scalar beside them)."""
    torch.manual_seed(seed)
    weights = build_model("resnet8", num_classes).state_dict()
    buffer = io.BytesIO()
    payload = {"model": weights, "epoch": 240, "accuracy": np.float64(71.5)}
    torch.save({**payload, "opt": argparse.Namespace(model="resnet8", lr=0.05)}, buffer)
    return buffer.getvalue(), weights


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def user_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "teachers.yaml"
    path.write_text(text)
    monkeypatch.setenv(ENV_VAR, str(path))
    return path


def leftovers(cache: Path) -> list[str]:
    """Files in the cache other than lock files."""
    if not cache.exists():
        return []
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()
                  if not p.name.endswith(".lock"))  # fmt: skip


def plain_entry(tmp_path: Path, data: bytes, digest: str, name: str = "mine:resnet8") -> str:
    source = tmp_path / "published" / "resnet8-teacher.pth"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(data)
    fields = f"url: '{source.as_uri()}', sha256: '{digest}', file: r8.pth, model: resnet8"
    return f"{name}: {{{fields}}}\n"


def test_the_shipped_catalogue_names_mdistillers_teachers() -> None:
    entries = catalogue()
    for model in ("resnet56", "resnet110", "resnet32x4", "ResNet50", "wrn_40_2", "vgg13"):
        entry = entries[f"mdistiller:{model}"]
        assert entry.url == MDISTILLER_TAR and entry.model == model and entry.classes == 100
        assert entry.member == f"cifar_teachers/{model}_vanilla/ckpt_epoch_240.pth"
        assert entry.sha256 == ""  # mdistiller publishes none
        build_model(entry.model, entry.classes)  # a zoo architecture
    assert entries["mdistiller:resnet32x4"].member_sha256.startswith("22aa12e2")


def test_torchvision_names_carry_torchvisions_url_and_hash_prefix() -> None:
    entry = find_entry("torchvision:resnet50.IMAGENET1K_V2")
    assert entry.url == "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
    assert entry.sha256 == "11ad3fa6" and entry.file == "resnet50-11ad3fa6.pth"
    assert entry.classes == 1000
    assert find_entry("torchvision:resnet50.DEFAULT").sha256 == "11ad3fa6"
    with pytest.raises(CheckpointError, match="IMAGENET1K_V1, IMAGENET1K_V2"):
        find_entry("torchvision:resnet50.IMAGENET1K_V3")
    with pytest.raises(CheckpointError, match="did you mean 'torchvision:resnet50"):
        find_entry("torchvision:resnet05.DEFAULT")


def test_an_unknown_name_suggests_the_nearest() -> None:
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("mdistiller:resnet65")
    assert "did you mean 'mdistiller:resnet56'?" in str(err.value)
    assert "\n" not in str(err.value)


def test_paths_are_not_names(tmp_path: Path) -> None:
    assert looks_like_name("mdistiller:resnet56")
    assert looks_like_name("torchvision:vit_b_16.DEFAULT")
    for path in ("runs/a/final.pt", "/abs/x.pt", "final.pt", "runs/x:y/final.pt"):
        assert not looks_like_name(path)
        assert resolve_checkpoint(path) == Path(path)
    odd = tmp_path / "a:b"  # an existing file of that form is a file
    odd.write_bytes(b"")
    assert resolve_checkpoint(str(odd)) == odd


def test_a_good_file_is_downloaded_once_checked_and_loads(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, weights = teacher_bytes()
    user_catalogue(tmp_path, monkeypatch, plain_entry(tmp_path, data, sha(data)))
    model = build_model("resnet8", 8)
    info = load_weights(model, "mine:resnet8", model_name="resnet8")
    assert torch.equal(model.state_dict()["fc.weight"], weights["fc.weight"])
    assert info["epoch"] == 240 and info["opt"].lr == 0.05  # the release-style extras load
    assert leftovers(hub) == ["r8.pth"] and sha256_of(hub / "r8.pth") == sha(data)
    (tmp_path / "published" / "resnet8-teacher.pth").unlink()  # the cache serves it now
    assert resolve_checkpoint("mine:resnet8") == hub / "r8.pth"


def test_a_hash_prefix_as_torchvision_carries_is_enough(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = teacher_bytes()
    user_catalogue(tmp_path, monkeypatch, plain_entry(tmp_path, data, sha(data)[:8]))
    assert resolve_checkpoint("mine:resnet8") == hub / "r8.pth"


@pytest.mark.parametrize("digest", ["0" * 64, "deadbeef"])
def test_a_wrong_hash_is_refused_and_nothing_stays_in_the_cache(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch, digest: str
) -> None:
    data, _ = teacher_bytes()
    user_catalogue(tmp_path, monkeypatch, plain_entry(tmp_path, data, digest))
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("mine:resnet8")
    message = str(err.value)
    assert f"has SHA-256 {sha(data)}, the catalogue expects {digest}: refused" in message
    assert "\n" not in message
    assert leftovers(hub) == []


def test_a_wrong_hash_through_the_command_line_is_one_error_line(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    data, _ = teacher_bytes()
    user_catalogue(tmp_path, monkeypatch, plain_entry(tmp_path, data, "0" * 64))
    extra = "method: {name: kd}\nteacher: {name: resnet8, checkpoint: 'mine:resnet8'}\n"
    recipe = tiny_recipe(tmp_path, extra)
    assert main(["--recipe", str(recipe), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: teacher 'mine:resnet8'"), err
    assert "the catalogue expects 0000" in err[0]
    assert leftovers(hub) == []


def test_the_good_file_trains_as_a_teacher_through_the_command_line(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = teacher_bytes()
    user_catalogue(tmp_path, monkeypatch, plain_entry(tmp_path, data, sha(data)))
    extra = (
        "method: {name: kd}\nteacher: {name: resnet8, checkpoint: 'mine:resnet8'}\n"
        "train: {epochs: 1}\n"
    )
    out = tmp_path / "run"
    assert main(["--recipe", str(tiny_recipe(tmp_path, extra)), "--out", str(out)]) == 0
    assert (out / "summary.json").is_file()


def test_without_a_network_one_line_names_the_url_and_where_to_place_the_file(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = teacher_bytes()
    text = plain_entry(tmp_path, data, sha(data))
    (tmp_path / "published" / "resnet8-teacher.pth").unlink()  # the server is unreachable
    user_catalogue(tmp_path, monkeypatch, text)
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("mine:resnet8")
    message = str(err.value)
    url = (tmp_path / "published" / "resnet8-teacher.pth").as_uri()
    assert message.startswith(f"cannot download teacher 'mine:resnet8' from {url} (")
    assert f"place it at {hub / 'r8.pth'} (SHA-256 {sha(data)})" in message
    assert "\n" not in message and leftovers(hub) == []
    (hub / "r8.pth").write_bytes(data)  # placed by hand: checked, then used
    assert resolve_checkpoint("mine:resnet8") == hub / "r8.pth"


def test_an_unreachable_host_is_the_same_one_line(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.error import URLError

    def no_network(*args, **kwargs):
        raise URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("mdistiller:resnet56")
    message = str(err.value)
    assert f"from {MDISTILLER_TAR} ([Errno 101] Network is unreachable)" in message
    assert f"place it at {hub / 'cifar_teachers.tar'}, or place its member" in message
    assert str(hub / "cifar_teachers" / "cifar_teachers/resnet56_vanilla") in message
    assert leftovers(hub) == []


def test_a_file_placed_by_hand_with_the_wrong_hash_is_refused(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = teacher_bytes()
    user_catalogue(tmp_path, monkeypatch, plain_entry(tmp_path, data, sha(data)))
    hub.mkdir(parents=True)
    (hub / "r8.pth").write_bytes(b"not the published file")
    with pytest.raises(CheckpointError, match="it is not the published file; delete it"):
        resolve_checkpoint("mine:resnet8")


def archive_catalogue(tmp_path: Path, monkeypatch, member_digest: str) -> tuple[bytes, dict]:
    """A tar holding two teachers as mdistiller's archive does; two entries naming them."""
    first, weights = teacher_bytes(seed=0)
    second, _ = teacher_bytes(seed=1)
    tar_path = tmp_path / "published" / "cifar_teachers.tar"
    tar_path.parent.mkdir(exist_ok=True)
    with tarfile.open(tar_path, "w") as tar:
        for member, data in ((MEMBER, first), (MEMBER.replace("resnet8_", "other_"), second)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    url = tar_path.as_uri()
    user_catalogue(
        tmp_path,
        monkeypatch,
        f"mine:resnet8: {{url: '{url}', member: {MEMBER}, member_sha256: '{member_digest}'}}\n"
        f"mine:other: {{url: '{url}', member: {MEMBER.replace('resnet8_', 'other_')}}}\n",
    )
    return first, weights


def test_an_archive_member_is_extracted_and_the_archive_kept_for_the_others(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    data, weights = archive_catalogue(tmp_path, monkeypatch, sha(teacher_bytes()[0]))
    model = build_model("resnet8", 8)
    load_weights(model, "mine:resnet8")
    assert torch.equal(model.state_dict()["fc.weight"], weights["fc.weight"])
    assert leftovers(hub) == ["cifar_teachers.tar", f"cifar_teachers/{MEMBER}"]
    (tmp_path / "published" / "cifar_teachers.tar").unlink()  # no second download
    with caplog.at_level(logging.WARNING, logger="kdzoo.catalogue"):
        other = resolve_checkpoint("mine:other")
    assert other == hub / "cifar_teachers" / MEMBER.replace("resnet8_", "other_")
    assert "no SHA-256 is published" in caplog.text and sha256_of(other) in caplog.text


def test_an_archive_member_with_the_wrong_hash_is_not_extracted(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive_catalogue(tmp_path, monkeypatch, "f" * 64)
    with pytest.raises(CheckpointError, match=r"the catalogue expects f{64}: refused, nothing"):
        resolve_checkpoint("mine:resnet8")
    assert leftovers(hub) == ["cifar_teachers.tar"]


def test_an_archive_without_the_member_names_the_nearest(
    tmp_path: Path, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive_catalogue(tmp_path, monkeypatch, "")
    text = (tmp_path / "teachers.yaml").read_text().replace("resnet8_vanilla", "resnet8_vanila")
    (tmp_path / "teachers.yaml").write_text(text)
    with pytest.raises(CheckpointError, match=f"did you mean '{MEMBER}'"):
        resolve_checkpoint("mine:resnet8")


def test_a_user_catalogue_adds_and_replaces_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_catalogue(
        tmp_path,
        monkeypatch,
        "mine:a: {url: 'file:///x.pth'}\n"
        f"mdistiller:resnet56: {{url: '{MDISTILLER_TAR}', sha256: {'a' * 64}}}\n",
    )
    names = catalogue_names()
    assert "mine:a" in names and "mdistiller:vgg13" in names
    assert catalogue()["mdistiller:resnet56"].sha256 == "a" * 64


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("mine:a: {url: 'file:///x', sah256: abc}", "did you mean 'mine:a.sha256'?"),
        ("mine:a: {url: 'file:///x', sha256: XYZ}", "a SHA-256 in lower-case hex"),
        ("mine:a: {sha256: ''}", "'mine:a' has no url"),
        ("resnet8: {url: 'file:///x'}", "not a name of the form source:name"),
        ("mine:a: file:///x", "must map url, sha256"),
    ],
)
def test_a_mistake_in_a_user_catalogue_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expect: str
) -> None:
    path = user_catalogue(tmp_path, monkeypatch, text + "\n")
    with pytest.raises(ConfigError) as err:
        catalogue()
    assert expect in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_a_missing_user_catalogue_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "/nowhere/teachers.yaml")
    with pytest.raises(ConfigError, match=f"{ENV_VAR} names /nowhere/teachers.yaml"):
        catalogue()


def test_the_cache_is_torch_hubs(hub: Path) -> None:
    assert cache_dir() == hub
