"""A 2-process torchrun run on the CPU agrees with a 1-process run of the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_runs import tiny_recipe

HERE = Path(__file__).resolve().parent
TORCHRUN = Path(sys.executable).with_name("torchrun")


def launch(args: list[str], processes: int, env_extra: dict[str, str] | None = None) -> None:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(HERE.parent),
        **(env_extra or {}),
    }
    if processes == 1:
        cmd = [sys.executable, str(HERE / "ddp_worker.py"), *args]
    else:
        cmd = [
            str(TORCHRUN),
            "--standalone",
            f"--nproc_per_node={processes}",
            str(HERE / "ddp_worker.py"),
            *args,
        ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def launch_two_nodes(args: list[str]) -> None:
    """Two "nodes" on this machine: two torchrun commands of one process each, meeting through
    a c10d rendezvous on localhost (as two machines would with --rdzv-endpoint=HOST:PORT)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    endpoint = f"localhost:{free_port()}"
    nodes = [
        subprocess.Popen(
            [
                str(TORCHRUN),
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={rank}",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint={endpoint}",
                "--rdzv-id=kdzoo-test",
                str(HERE / "ddp_worker.py"),
                *args,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    for node, output in zip(nodes, outputs):
        assert node.returncode == 0, output[-3000:]


def rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_match_one_exactly_without_batchnorm(tmp_path: Path) -> None:
    """199 images at batch 32: the partial last step (7 images) splits 3 + 4, and each
    process's loss is weighted by its share, so even that step matches one process."""
    extra = (
        "student: {name: test_plain_convnet}\ntrain: {epochs: 2}\n"
        "data: {subset: 199, synthetic: {train_per_class: 25}}\n"
    )
    recipe = tiny_recipe(tmp_path, extra)
    one, two = tmp_path / "one", tmp_path / "two"
    launch(["--recipe", str(recipe), "--out", str(one)], 1)
    launch(["--recipe", str(recipe), "--out", str(two)], 2)
    a = torch.load(one / "last.pt", weights_only=True)["model"]
    b = torch.load(two / "last.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    for ra, rb in zip(rows(one), rows(two)):
        assert ra["ce"] == pytest.approx(rb["ce"], rel=1e-4)
        assert ra["top1"] == rb["top1"]  # evaluation shards cover the val set exactly once


def test_a_process_without_validation_images_still_evaluates(tmp_path: Path) -> None:
    """One validation image for two processes: rank 1's shard is empty."""
    extra = "student: {name: test_plain_convnet}\ntrain: {epochs: 1}\ndata: {val_subset: 1}\n"
    out = tmp_path / "two"
    launch(["--recipe", str(tiny_recipe(tmp_path, extra)), "--out", str(out)], 2)
    assert json.loads((out / "summary.json").read_text())["top1"] in (0.0, 100.0)


def test_two_processes_agree_with_one_on_a_zoo_model(tmp_path: Path) -> None:
    """With BatchNorm the per-process statistics differ, so agreement is approximate."""
    recipe = tiny_recipe(tmp_path, "train: {epochs: 3}\n")
    one, two = tmp_path / "one", tmp_path / "two"
    launch(["--recipe", str(recipe), "--out", str(one)], 1)
    launch(["--recipe", str(recipe), "--out", str(two)], 2)
    s1 = json.loads((one / "summary.json").read_text())
    s2 = json.loads((two / "summary.json").read_text())
    chance = 100 / 8
    assert s1["top1"] > 2 * chance and s2["top1"] > 2 * chance
    assert abs(s1["top1"] - s2["top1"]) <= 15.0
    assert abs(rows(one)[0]["ce"] - rows(two)[0]["ce"]) < 0.1


def test_two_nodes_train_exactly_like_one_process(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, "student: {name: test_plain_convnet}\ntrain: {epochs: 1}\n")
    one, nodes = tmp_path / "one", tmp_path / "nodes"
    launch(["--recipe", str(recipe), "--out", str(one)], 1)
    launch_two_nodes(["--recipe", str(recipe), "--out", str(nodes)])
    a = torch.load(one / "last.pt", weights_only=True)["model"]
    b = torch.load(nodes / "last.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert rows(one)[0]["top1"] == rows(nodes)[0]["top1"]
    assert rows(one)[0]["ce"] == pytest.approx(rows(nodes)[0]["ce"], rel=1e-4)
