"""R2KD analysis tools: entropy where the teacher is uncertain (Figs. 4, 5) and the
correlation-matrix disparity (Fig. 6).

The selection and mean-entropy functions are checked against hand-worked tensors; the image
writer against the PPM size; both command-line tools end to end on tiny synthetic runs made
with `common.cli.main` (a teacher, then KD and DKD students: the tools do not care which
method produced a run).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_runs import tiny_recipe

from common.cli import main as train
from common.config import load_recipe, save_config
from common.methods.resize import resize_to
from common.metrics import correlation_disparity
from common.models import build_model
from r2kd.analysis import (
    disparity,
    entropy_comparison,
    heatmap_pixels,
    high_entropy_indices,
    most_uncertain_classes,
    per_class_count,
    sample_entropy,
    write_heatmap,
)
from r2kd.analysis.images import ANCHORS
from r2kd.analysis.runs import collect_logits, load_student, read_config
from tools.r2kd_corr_disparity import main as corr_main
from tools.r2kd_entropy import main as entropy_main

LN3 = math.log(3.0)


def h(*probs: float) -> float:
    """Entropy (nats) of a probability vector, by the formula."""
    return -sum(p * math.log(p) for p in probs if p > 0)


# --------------------------------------------------------------------------------------------
# Figs. 4 and 5: hand-worked tensors
# --------------------------------------------------------------------------------------------


def test_sample_entropy_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0], [LN3, 0.0, 0.0], [0.0, 200.0, 0.0]])
    got = sample_entropy(logits)
    assert got.dtype == torch.float64
    assert got[0].item() == pytest.approx(LN3)
    assert got[1].item() == pytest.approx(h(0.6, 0.2, 0.2))  # softmax = (3/5, 1/5, 1/5)
    assert got[2].item() == pytest.approx(0.0, abs=1e-12)  # saturated: 0 log 0 = 0, no NaN


def test_per_class_count_rounds_up_and_keeps_one() -> None:
    assert per_class_count(10, 0.1) == 1
    assert per_class_count(30, 0.1) == 3  # 0.1 * 30 is 3.0000000000000004 in floating point
    assert per_class_count(31, 0.1) == 4
    assert per_class_count(5, 0.1) == 1
    assert per_class_count(4, 1.0) == 4
    with pytest.raises(ValueError, match="fraction"):
        per_class_count(10, 0.0)


def test_high_entropy_indices_per_class_by_hand() -> None:
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2])
    entropy = torch.tensor([0.1, 0.9, 0.5, 0.9, 0.2, 0.8, 0.3, 0.7, 0.6, 0.1, 0.0])
    got = high_entropy_indices(entropy, targets, fraction=0.5)
    assert set(got) == {0, 1, 2}
    assert got[0].tolist() == [1, 3]  # the two 0.9s, equal entropy: lower index first
    assert got[1].tolist() == [5, 7, 8]  # 0.8, 0.7, 0.6 of the six class-1 samples
    assert got[2].tolist() == [10]  # a class of one sample keeps it


def test_entropy_comparison_by_hand() -> None:
    """Per class the single most uncertain teacher sample (fraction 1/3 of 3): index 1 (class
    0) and index 5 (class 1); only those rows of the students count."""
    targets = torch.tensor([0, 0, 0, 1, 1, 1])
    confident = [9.0, 0.0, 0.0]
    teacher = torch.tensor(
        [confident, [0.0, 0.0, 0.0], confident, [0, 9.0, 0], [0, 9.0, 0], [0.0, 0.0, 0.0]]
    )
    ln8 = math.log(8.0)
    student_a = torch.tensor([[0, 0, 9.0], [LN3, 0, 0], [0, 0, 9.0]] + [[0, 0, 9.0]] * 2)
    student_a = torch.cat([student_a, torch.tensor([[0.0, ln8, 0.0]])])
    student_b = torch.tensor([[5.0, 0, 0]] * 5 + [[0.0, 0.0, 0.0]])
    student_b[1] = torch.tensor([0.0, 0.0, 0.0])
    rows, overall = entropy_comparison(
        teacher, {"r2kd": student_a, "kd": student_b}, targets, fraction=1 / 3
    )
    assert [r.label for r in rows] == [0, 1] and [r.count for r in rows] == [1, 1]
    assert rows[0].teacher == pytest.approx(LN3) and rows[1].teacher == pytest.approx(LN3)
    assert rows[0].students["r2kd"] == pytest.approx(h(0.6, 0.2, 0.2))  # p = (3, 1, 1) / 5
    assert rows[1].students["r2kd"] == pytest.approx(h(0.1, 0.8, 0.1))  # p = (1, 8, 1) / 10
    assert rows[0].students["kd"] == pytest.approx(LN3)
    assert rows[0].target_prob["r2kd"] == pytest.approx(0.6)
    assert rows[1].target_prob["r2kd"] == pytest.approx(0.8)
    assert rows[1].target_prob["kd"] == pytest.approx(1 / 3)
    assert overall.count == 2
    assert overall.students["r2kd"] == pytest.approx((h(0.6, 0.2, 0.2) + h(0.1, 0.8, 0.1)) / 2)
    assert overall.target_prob["r2kd"] == pytest.approx(0.7)
    assert overall.students["kd"] == pytest.approx(LN3)


def test_most_uncertain_classes_orders_by_teacher_entropy() -> None:
    targets = torch.tensor([0, 1, 2])
    teacher = torch.tensor([[1.0, 0, 0], [0.0, 0, 0], [0, 0, 4.0]])  # class 1 most uncertain
    rows, _ = entropy_comparison(teacher, {"s": teacher}, targets, fraction=1.0)
    assert [r.label for r in most_uncertain_classes(rows, 2)] == [1, 0]


# --------------------------------------------------------------------------------------------
# Fig. 6: disparity and the image writer
# --------------------------------------------------------------------------------------------


def test_disparity_by_hand() -> None:
    """Teacher's two class logits move together (corr +1), the student's opposite (-1):
    |difference| is 2 off the diagonal and 0 on it, mean 1."""
    x = torch.tensor([0.0, 1.0, 2.0, 4.0])
    teacher = torch.stack([x, 2 * x + 1], dim=1)
    student = torch.stack([x, -x], dim=1)
    result = disparity(student, teacher)
    assert torch.allclose(
        result.matrix, torch.tensor([[0.0, 2.0], [2.0, 0.0]], dtype=torch.float64)
    )
    assert result.mean == pytest.approx(1.0) and result.max == pytest.approx(2.0)
    assert disparity(teacher, teacher).mean == pytest.approx(0.0)
    logits = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    other = logits + torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    got = disparity(other, logits)
    assert got.mean == pytest.approx(correlation_disparity(other, logits))
    assert got.mean == pytest.approx(got.matrix.mean().item())


def test_heatmap_ppm_has_the_right_size_and_colours(tmp_path: Path) -> None:
    matrix = np.zeros((5, 3))
    matrix[4, 2] = 2.0
    matrix[0, 1] = 1.0
    path = write_heatmap(matrix, tmp_path / "m.png", scale=4, use_matplotlib=False)
    assert path == tmp_path / "m.ppm"
    data = path.read_bytes()
    header = b"P6\n12 20\n255\n"  # width = 3 columns x 4, height = 5 rows x 4
    assert data.startswith(header) and len(data) == len(header) + 12 * 20 * 3
    pixels = np.frombuffer(data[len(header) :], dtype=np.uint8).reshape(20, 12, 3)
    assert pixels[0, 0].tolist() == ANCHORS[0].tolist()  # 0 -> darkest
    assert pixels[19, 11].tolist() == ANCHORS[-1].tolist()  # the maximum -> brightest
    assert pixels[3, 7].tolist() == ANCHORS[2].tolist()  # 1.0 of max 2.0 -> middle colour
    assert (pixels[16:20, 8:12] == pixels[19, 11]).all()  # a 4 x 4 block per entry
    fixed = heatmap_pixels(matrix, vmax=4.0, scale=1)
    assert fixed[4, 2].tolist() == ANCHORS[2].tolist()  # 2.0 of a shared scale of 4.0


# --------------------------------------------------------------------------------------------
# End to end on tiny runs
# --------------------------------------------------------------------------------------------


# One epoch of 2 steps each (8 training images per class): the tools need trained files, not
# good networks. The 64 validation images (8 per class) are the tiny recipe's.
SHORT = "train: {epochs: 1}\ndata: {synthetic: {train_per_class: 8}}\n"


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """A resnet8 teacher (vanilla), then KD and DKD resnet8 students distilled from it."""
    root = tmp_path_factory.mktemp("runs")
    runs = {"teacher": root / "teacher", "kd": root / "kd", "dkd": root / "dkd"}
    teacher_recipe = tiny_recipe(root, SHORT, name="teacher.yaml")
    assert train(["--recipe", str(teacher_recipe), "--out", str(runs["teacher"])]) == 0
    teacher_ckpt = runs["teacher"] / "best.pt"
    for method in ("kd", "dkd"):
        extra = (
            f"method: {{name: {method}}}\nteacher: {{name: resnet8, checkpoint: {teacher_ckpt}}}\n"
        )
        recipe = tiny_recipe(root, SHORT + extra, name=f"{method}.yaml")
        assert train(["--recipe", str(recipe), "--out", str(runs[method])]) == 0
    return runs


def test_entropy_tool_end_to_end(tiny_runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "entropy"
    args = [str(tiny_runs["dkd"]), str(tiny_runs["kd"]), "--device", "cpu", "--out", str(out)]
    assert entropy_main([*args, "--classes", "3", "--samples", "2"]) == 0
    printed = capsys.readouterr().out
    assert "| class | samples | H(teacher) | H(dkd) | H(kd) |" in printed
    assert printed.count("\n| ") == 3 + 1 + 1  # header, three classes, the pooled row
    with open(out / "entropy_per_class.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 8 + 1  # every class and the pooled row
    assert all(row["samples"] == "1" for row in table[:8])  # ceil(10% of 8 val images)
    summary = json.loads((out / "entropy.json").read_text())
    assert summary["overall"]["count"] == 8 and summary["val_samples"] == 64
    shown = [c["teacher"] for c in summary["classes_shown"]]
    highest = sorted((float(r["H(teacher)"]) for r in table[:8]), reverse=True)[:3]
    assert shown == pytest.approx(highest, abs=1e-6)  # the 3 most uncertain classes, in order
    with open(out / "fig5_predictions.csv") as fh:
        fig5 = list(csv.reader(fh))
    assert len(fig5) == 1 + 2 * 3 and len(fig5[0]) == 4 + 8  # 2 samples x (teacher, dkd, kd)
    assert {r[2] for r in fig5[1:]} == {"teacher", "dkd", "kd"}


def test_entropy_over_every_sample_matches_the_run_summary(
    tiny_runs: dict[str, Path], tmp_path: Path
) -> None:
    """With fraction 1 every validation sample is selected, so the last student's mean
    entropy is the `entropy` its training run wrote to summary.json (last epoch)."""
    out = tmp_path / "all"
    args = [str(tiny_runs["kd"]), str(tiny_runs["dkd"]), "--fraction", "1", "--samples", "0"]
    assert entropy_main([*args, "--checkpoint", "last", "--device", "cpu", "--out", str(out)]) == 0
    overall = json.loads((out / "entropy.json").read_text())["overall"]
    assert overall["count"] == 64
    for method in ("kd", "dkd"):
        expected = json.loads((tiny_runs[method] / "summary.json").read_text())["entropy"]
        assert overall["students"][method] == pytest.approx(expected, rel=1e-6)


def test_corr_disparity_tool_end_to_end(tiny_runs: dict[str, Path], tmp_path: Path, capsys):
    out = tmp_path / "corr"
    args = [str(tiny_runs["dkd"]), str(tiny_runs["kd"]), "--device", "cpu", "--out", str(out)]
    assert corr_main([*args, "--scale", "3"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "corr_disparity.json").read_text())
    for label in ("dkd", "kd"):
        result = summary["runs"][label]
        matrix = np.load(out / f"corr_disparity_{label}.npy")
        assert matrix.shape == (8, 8) and np.allclose(np.diag(matrix), 0.0)
        assert result["disparity"] == pytest.approx(matrix.mean())
        assert f"{label}: correlation disparity {result['disparity']:.6f}" in printed
        image = Path(result["image"])
        assert image.is_file()
        if image.suffix == ".ppm":  # no matplotlib: 8 classes x 3 pixels a side
            assert image.read_bytes().startswith(b"P6\n24 24\n255\n")
    assert summary["vmax"] == pytest.approx(max(r["max"] for r in summary["runs"].values()))


def test_corr_disparity_of_the_teacher_with_itself_is_zero(
    tiny_runs: dict[str, Path], tmp_path: Path, capsys
) -> None:
    """The teacher run has no teacher: the tool says so; given the teacher explicitly, its own
    student (the same weights) has exactly zero disparity."""
    run = str(tiny_runs["teacher"])
    assert corr_main([run, "--device", "cpu", "--out", str(tmp_path)]) == 2
    assert "has no teacher" in capsys.readouterr().err
    teacher = str(tiny_runs["teacher"] / "best.pt")
    flags = ["--teacher-name", "resnet8", "--teacher-checkpoint", teacher]
    assert corr_main([run, *flags, "--device", "cpu", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "corr_disparity.json").read_text())
    assert summary["runs"]["vanilla"]["disparity"] == pytest.approx(0.0, abs=1e-12)


def test_tools_refuse_runs_on_different_data(tiny_runs: dict[str, Path], tmp_path: Path, capsys):
    copy = tmp_path / "kd_fewer_val"
    copy.mkdir()
    (copy / "best.pt").write_bytes((tiny_runs["kd"] / "best.pt").read_bytes())
    config = (tiny_runs["kd"] / "config.yaml").read_text()
    assert "val_subset: 0" in config
    (copy / "config.yaml").write_text(config.replace("val_subset: 0", "val_subset: 16"))
    args = [str(tiny_runs["dkd"]), "--device", "cpu", "--out", str(tmp_path)]
    assert entropy_main([str(copy), *args]) == 2
    assert "differ in data.val_subset (16 vs 0)" in capsys.readouterr().err
    assert corr_main([str(copy), *args]) == 2
    assert "differ in data.val_subset" in capsys.readouterr().err
    assert entropy_main([str(tiny_runs["kd"]), *args, "--labels", "a"]) == 2
    assert "--labels needs 2 names" in capsys.readouterr().err
    assert entropy_main([str(tmp_path / "missing"), *args]) == 2
    assert "has no config.yaml" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Low-resolution runs: the analysis feeds the inputs the run saw
# --------------------------------------------------------------------------------------------


class InputSpy(torch.nn.Module):
    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.inputs = net, []

    def forward(self, images: torch.Tensor):
        self.inputs.append(images)
        return self.net(images)


@pytest.mark.parametrize("method", ["lowres", "dml", "kd"])
@pytest.mark.parametrize("antialias", [False, True])
def test_a_runs_own_antialias_option_decides_the_analysis_inputs(
    tmp_path: Path, method: str, antialias: bool
) -> None:
    """The student of a low-resolution run is evaluated on `resize_to(images, resolution,
    <the run's method.antialias>)`, the shared resize of training and evaluation; a method
    without the option (kd) gets the shared default."""
    extra = f"student: {{name: resnet8, resolution: 8}}\nmethod: {{name: {method}"
    extra += "}\n" if method == "kd" else f", antialias: {str(antialias).lower()}}}\n"
    if method == "kd":
        extra += "teacher: {name: resnet8}\n"
    cfg = load_recipe(tiny_recipe(tmp_path, extra))
    run = tmp_path / "run"
    run.mkdir()
    save_config(cfg, run / "config.yaml")
    torch.save({"model": build_model("resnet8", 8).state_dict()}, run / "best.pt")
    net = load_student(run, read_config(run), "best", 8, torch.device("cpu"))
    expected_flag = antialias if method != "kd" else False  # DEFAULT_ANTIALIAS
    assert (net.resolution, net.antialias) == (8, expected_flag)
    net.module = spy = InputSpy(net.module)
    images = torch.randn(3, 3, 16, 16)
    collect_logits([net], [(images, torch.tensor([0, 1, 2]))])
    (seen,) = spy.inputs
    assert torch.equal(seen, resize_to(images, 8, antialias=expected_flag))
    assert not torch.allclose(seen, resize_to(images, 8, antialias=not expected_flag))
