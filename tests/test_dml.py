"""DML (common.methods.dml, CQKD Eq. 3): the loss by hand, detached peers, the single-optimiser
equivalence, peers evaluated at the student's resolution, and a CLI run logging every member."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.batch import Batch
from common.cli import main
from common.methods.dml import DML, DMLOptions, mutual_losses
from common.models import build_model
from tests.tiny_runs import tiny_recipe


def cohort(m: int = 3, resolution: int = 0) -> DML:
    torch.manual_seed(0)
    nets = [build_model("resnet8", 5) for _ in range(m)]
    return DML(nets[0], nets[1:], DMLOptions(cohort=m), resolution=resolution)


def test_eq3_matches_a_hand_computation() -> None:
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(4, 5, generator=g) * 2 for _ in range(3)]
    y = torch.tensor([0, 4, 2, 2])
    losses = mutual_losses(logits, y, DMLOptions())
    p = [F.softmax(z.double(), dim=1).numpy() for z in logits]
    for i, suffix in enumerate(["", "_peer1", "_peer2"]):
        ce = -np.log(p[i][np.arange(4), y.numpy()]).mean()
        kl = [(p[j] * (np.log(p[j]) - np.log(p[i]))).sum(1).mean() for j in range(3) if j != i]
        assert losses[f"ce{suffix}"].item() == pytest.approx(ce, rel=1e-5)
        assert losses[f"dml{suffix}"].item() == pytest.approx(sum(kl) / 2, rel=1e-4)


@pytest.mark.parametrize("member", [0, 1, 2])
def test_each_members_loss_reaches_only_that_member(member: int) -> None:
    """L_i's KL terms use the peers' outputs detached: no gradient flows into the peers."""
    method = cohort()
    nets = [method.student, *(p.net for p in method.peers)]
    x, y = torch.randn(6, 3, 16, 16), torch.randint(0, 5, (6,))
    logits = [net(x)[0] for net in nets]
    losses = mutual_losses(logits, y, method.options)
    suffix = "" if member == 0 else f"_peer{member}"
    (losses[f"ce{suffix}"] + losses[f"dml{suffix}"]).backward()
    for k, net in enumerate(nets):
        grads = [p.grad for p in net.parameters()]
        if k == member:
            assert all(g is not None and g.abs().sum() > 0 for g in grads[:1])
        else:
            assert all(g is None for g in grads), f"member {k} got gradient from L_{member}"


def test_one_optimiser_on_the_sum_equals_one_adamw_per_member() -> None:
    """The engine's single AdamW over the cohort on sum_i L_i takes the same step as m AdamWs,
    each on its own L_i, after all forwards (Eq. 3, released order)."""
    joint, separate = cohort(), cohort()
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 5, (8,))
    opt = torch.optim.AdamW(joint.trainable_parameters(), lr=1e-2, weight_decay=0.01)
    _, losses = joint(Batch(x, y))
    sum(losses.values()).backward()
    opt.step()

    nets = [separate.student, *(p.net for p in separate.peers)]
    opts = [torch.optim.AdamW(n.parameters(), lr=1e-2, weight_decay=0.01) for n in nets]
    logits = [n(x)[0] for n in nets]  # every forward first
    losses = mutual_losses(logits, y, separate.options)
    for i, o in enumerate(opts):
        suffix = "" if i == 0 else f"_peer{i}"
        (losses[f"ce{suffix}"] + losses[f"dml{suffix}"]).backward(retain_graph=True)
        o.step()
    for a, b in zip(joint.state_dict().values(), separate.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_every_member_sees_the_students_resolution_in_training_and_eval() -> None:
    method = cohort(resolution=8)
    sizes: list[tuple[int, ...]] = []
    nets = [method.student, *(p.net for p in method.peers)]
    for net in nets:
        net.register_forward_pre_hook(lambda m, a: sizes.append(tuple(a[0].shape[-2:])))
    x = torch.randn(2, 3, 16, 16)
    method(Batch(x, torch.tensor([0, 1])))
    assert sizes == [(8, 8)] * 3
    sizes.clear()
    method.eval()
    method.forward_eval(x)
    for peer in method.extra_eval_models().values():  # what the engine evaluates
        peer(x)
    assert sizes == [(8, 8)] * 3
    assert list(method.extra_eval_models()) == ["peer1", "peer2"]


def test_peers_start_from_different_weights_and_cohort_size_is_checked() -> None:
    method = cohort()
    a, b = method.student.state_dict(), method.peers[0].net.state_dict()
    assert not torch.equal(a["conv1.weight"], b["conv1.weight"])
    nets = [build_model("resnet8", 5) for _ in range(2)]
    with pytest.raises(ValueError, match="cohort"):
        DML(nets[0], nets[1:], DMLOptions(cohort=1))
    with pytest.raises(ValueError, match="needs 2 peers"):
        DML(nets[0], nets[1:], DMLOptions(cohort=3))


def test_cli_run_logs_every_member_and_checkpoints_the_cohort(tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path, "method: {name: dml}\nstudent: {name: resnet8, resolution: 8}\n")
    out = tmp_path / "run"
    assert main(["--recipe", str(recipe), "--out", str(out), "train.epochs=1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"top1", "top1_peer1", "top1_peer2"} <= set(summary)
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"ce", "dml", "ce_peer1", "dml_peer2", "top1_peer2"} <= set(row)
    state = torch.load(out / "last.pt", weights_only=False)["method"]
    assert any(k.startswith("peers.1.net.") for k in state)
