"""`train.graph: cudagraph` proven on the CPU, with a stand-in for CUDA-graph capture and
replay (tests/graph_standin.py: the step recorded operator by operator, Python values frozen at
capture, tensors from before capture read and updated in place by every replay, static
outputs, host reads refused). Every method that says it can be captured trains bit-identically
to eager under it, over epochs (the schedule moving the lr every step, DKD's and ReviewKD's
warm-ups moving at each epoch) and across a mid-epoch `--resume`; the others are refused. The
stand-in is shown to catch what it exists for: a Python-number learning rate, frozen at
capture, trains differently from eager, and a host read inside the step raises.

What it cannot prove: host-to-device copies, stream ordering and memory reuse inside a graph's
pool (everything here is on the CPU), nor bf16/NHWC numerics of a GPU run."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from ddp_worker import PlainConvNet  # noqa: F401  (registers test_plain_convnet)
from graph_standin import CaptureError, StandInGraph, install
from test_sync_free_step import CASES, SOKD_FIXED
from tiny_runs import assert_same_weights, same_metrics, tiny_recipe

from common.cli import main
from common.config import load_recipe
from common.data import build_data
from common.engine.build import build_distiller
from common.engine.graphs import WARMUP_STEPS, CapturedStep
from common.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")

ALL_CASES = {**CASES, **SOKD_FIXED}
EPOCHS, STEPS_PER_EPOCH = 3, 6  # the tiny recipe: 192 synthetic images, batches of 32
GRAPH = ["train.graph=cudagraph"]


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised resnet8 teacher (its accuracy does not matter here)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("standin_teacher") / "teacher.pt"
    torch.save({"model": build_model("resnet8", 8).state_dict()}, path)
    return path


def case_recipe(tmp_path: Path, case: str, teacher: Path) -> Path:
    extra = f"{ALL_CASES[case]}\nteacher: {{name: resnet8, checkpoint: {teacher}}}\n"
    return tiny_recipe(tmp_path, extra + "log: {writers: [jsonl]}\n")


def why_not_capturable(recipe: Path) -> str:
    """The method's own answer (`Distiller.capturable()`) on the recipe's setup."""
    cfg = load_recipe(recipe)
    data = build_data(cfg.data, batch_size=cfg.train.batch_size, device=torch.device("cpu"), seed=0)
    return build_distiller(cfg, data.spec).capturable()


def run(recipe: Path, out: Path, *overrides: str) -> int:
    return main(["--recipe", str(recipe), "--out", str(out), *overrides])


@pytest.mark.parametrize("case", ALL_CASES)
def test_a_captured_step_trains_like_eager(
    tmp_path: Path, case: str, teacher_file: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    recipe = case_recipe(tmp_path, case, teacher_file)
    reason = why_not_capturable(recipe)
    stand_in = install(monkeypatch)
    if reason:  # CRD, SoKD: refused in one line naming the reason, nothing trained
        assert run(recipe, tmp_path / "graph", *GRAPH) == 2
        assert reason in capsys.readouterr().err and not stand_in.graphs
        return
    assert run(recipe, tmp_path / "graph", *GRAPH) == 0
    monkeypatch.undo()  # the eager run without the stand-in
    assert run(recipe, tmp_path / "eager") == 0
    (graph,) = stand_in.graphs
    assert graph.replays == EPOCHS * STEPS_PER_EPOCH - WARMUP_STEPS  # 15, 10 after an epoch end
    assert_same_weights(tmp_path / "eager", tmp_path / "graph")  # bit for bit
    assert same_metrics(tmp_path / "eager", tmp_path / "graph")
    rows = (tmp_path / "eager" / "metrics.jsonl").read_text().splitlines()
    assert len({json.loads(row)["lr"] for row in rows}) == EPOCHS  # the schedule moved


def stop_after(calls: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM after the `calls`-th step of the captured path (warm-ups and replays count)."""
    original: Callable = CapturedStep.__call__
    count = {"n": 0}

    def step_then_signal(self, *args, **kwargs):  # noqa: ANN001, ANN202
        out = original(self, *args, **kwargs)
        count["n"] += 1
        if count["n"] == calls:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(CapturedStep, "__call__", step_then_signal)


def test_a_captured_run_resumes_mid_epoch_like_an_uninterrupted_eager_run(
    tmp_path: Path, teacher_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DKD (its warm-up buffer moves each epoch): stopped at epoch 2 step 2, after four
    replays; the resumed run warms up again, captures at the start of epoch 3, replays."""
    recipe = case_recipe(tmp_path, "dkd", teacher_file)
    assert run(recipe, tmp_path / "eager") == 0
    stand_in = install(monkeypatch)
    with monkeypatch.context() as stopping:
        stop_after(STEPS_PER_EPOCH + 2, stopping)
        assert run(recipe, tmp_path / "cut", *GRAPH) == 130
    assert main(["--resume", str(tmp_path / "cut")]) == 0
    first, resumed = stand_in.graphs
    assert first.replays == STEPS_PER_EPOCH + 2 - WARMUP_STEPS
    assert resumed.replays == STEPS_PER_EPOCH + 4 - WARMUP_STEPS
    assert_same_weights(tmp_path / "eager", tmp_path / "cut")
    assert same_metrics(tmp_path / "eager", tmp_path / "cut")


# ------------------------------------------------- what the stand-in exists to catch


def train_steps(lr: float | torch.Tensor, captured: bool) -> tuple[list[torch.Tensor], dict]:
    """Six SGD steps of a small network (BatchNorm, dropout) under a decaying schedule, eager
    or as two eager steps then a captured step replayed four times; (losses, weights)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Dropout(0.2), torch.nn.Linear(4 * 6 * 6, 5),
    )  # fmt: skip
    fused = torch.is_tensor(lr)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, fused=fused or None)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + step))
    images, targets = torch.randn(6, 8, 3, 8, 8), torch.randint(0, 5, (6, 8))

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = torch.nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    losses, static_x, static_y = [], images[2].clone(), targets[2].clone()
    for i in range(6):
        if not captured or i < 2:
            losses.append(step(images[i], targets[i]))
        else:
            if i == 2:
                graph, before = StandInGraph(), {k: v.clone() for k, v in net.state_dict().items()}
                with graph.capture():
                    out = step(static_x, static_y)
                for key, value in net.state_dict().items():  # capture trained nothing
                    assert torch.equal(value, before[key]), key
            static_x.copy_(images[i])
            static_y.copy_(targets[i])
            graph.replay()
            losses.append(out.clone())  # the same tensor, rewritten by each replay
        schedule.step()
    return losses, net.state_dict()


def test_a_tensor_learning_rate_follows_the_schedule_and_a_python_one_is_frozen() -> None:
    """With the lr a tensor (the fused optimiser), replays read each new rate and match eager
    bit for bit; as a Python number (the unfused optimiser), the captured rate is kept and the
    replays train wrong, which is why the engine refuses optim.fused=false under cudagraph."""
    eager, captured = train_steps(torch.tensor(0.1), False), train_steps(torch.tensor(0.1), True)
    assert all(torch.equal(a, b) for a, b in zip(eager[0], captured[0]))
    assert all(torch.equal(eager[1][k], captured[1][k]) for k in eager[1])
    eager, captured = train_steps(0.1, False), train_steps(0.1, True)
    assert all(torch.equal(a, b) for a, b in zip(eager[0][:4], captured[0][:4]))
    assert not torch.equal(eager[0][4], captured[0][4])  # replay 2 ran at replay 1's lr
    assert not torch.equal(eager[1]["0.weight"], captured[1]["0.weight"])


def test_the_engine_refuses_a_python_number_learning_rate_under_cudagraph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    install(monkeypatch)
    recipe = tiny_recipe(tmp_path, "student: {name: test_plain_convnet}\n")
    assert run(recipe, tmp_path / "r", *GRAPH, "optim.fused=false") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "optim.fused" in err[0] and not (tmp_path / "r").exists()


HOST_READS: dict[str, Callable[[torch.Tensor], object]] = {
    "item": lambda t: t.sum().item(),
    "float": lambda t: float(t.sum()),
    "bool": lambda t: bool(t.sum() > 0),
    "index with a 0-d tensor": lambda t: t[t.argmax().reshape(())],
    "mask indexing": lambda t: t[t > 0],
    "nonzero": lambda t: t.nonzero(),
    "tolist": lambda t: t.tolist(),
    "equal": lambda t: torch.equal(t, t),
}


@pytest.mark.parametrize("read", HOST_READS)
def test_a_host_read_inside_capture_raises(read: str) -> None:
    weight = torch.randn(5)
    with pytest.raises(CaptureError), StandInGraph().capture():
        HOST_READS[read](weight * 2)
    assert isinstance(weight.tolist(), list)  # the Python-level reads are back after capture
    with StandInGraph().capture():  # indexing with integers is a gather: capturable
        weight[torch.arange(5).flip(0)]


def test_a_host_read_in_the_engine_step_raises_under_the_stand_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.engine.trainer import Trainer

    install(monkeypatch)
    original = Trainer.train_step

    def step_that_reads(self, *args, **kwargs):  # noqa: ANN001, ANN202
        names, total, stacked = original(self, *args, **kwargs)
        float(total)  # e.g. a loss logged each step
        return names, total, stacked

    monkeypatch.setattr(Trainer, "train_step", step_that_reads)
    recipe = tiny_recipe(tmp_path, "student: {name: test_plain_convnet}\ntrain: {epochs: 1}\n")
    with pytest.raises(CaptureError, match="_local_scalar_dense"):
        run(recipe, tmp_path / "r", *GRAPH)
