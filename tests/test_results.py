"""Tests for the results page (common.report.results, run as tools/results.py) on fake runs."""

from __future__ import annotations

import base64
import json
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.report.readme_block import markers, replace_block
from common.report.result_rows import build_results
from common.report.results import main
from common.report.run_states import ResultsError

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(
    root: Path,
    rel: str,
    *,
    name: str,
    method: str,
    seed: int,
    top1: float | None,
    student: str = "resnet8",
    teacher: str = "resnet20",
    epochs: int = 3,
    paper: float | None = None,
    extra: dict[str, Any] | None = None,
    seconds: float = 60.0,
) -> Path:
    """A run folder: config.yaml, metrics.jsonl (top-1 rising to ``top1``), summary.json when
    ``top1`` is given (a run without it is unfinished)."""
    run = root / rel
    run.mkdir(parents=True)
    config: dict[str, Any] = {
        "name": name,
        "git_commit": "abc",
        "data": {"name": "cifar10", "subset": 0, "root": "/data"},
        "train": {"seed": seed, "epochs": epochs},
        "optim": {"lr": 0.1},
        "teacher": {"name": teacher if method != "vanilla" else ""},
        "student": {"name": student},
        "method": {"name": method},
        "paper": {"top1": paper},
    }
    for section, values in (extra or {}).items():
        config[section] = {**config.get(section, {}), **values}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    final = top1 if top1 is not None else 50.0
    lines = [json.dumps({"epoch": e, "top1": final - 10.0 * (epochs - e)}) for e in range(1, 4)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if top1 is not None:
        (run / "summary.json").write_text(json.dumps({"top1": top1, "train_seconds": seconds}))
    return run


VANILLA = [70.0, 71.0, 72.0]  # mean 71, std 1
KD = [73.0, 74.0, 75.0]  # mean 74, std 1
DKD = [71.0, 72.6]  # mean 71.8, std 1.1314


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A teacher, vanilla / kd / dkd students on 3, 3, 2 seeds, a one-seed method, a 2-epoch
    vanilla (not a baseline: other epochs) and a run of each unfinished state."""
    root = tmp_path / "runs"
    for s, v in enumerate([90.0, 91.0]):
        _run(
            root,
            f"teacher/seed{s}",
            name="teacher",
            method="vanilla",
            student="resnet20",
            seed=s,
            top1=v,
            epochs=3,
        )
    for s, v in enumerate(VANILLA):
        _run(
            root,
            f"vanilla/seed{s}",
            name="vanilla_r8",
            method="vanilla",
            seed=s,
            top1=v,
            seconds=100.0 + 10 * s,
        )
    _run(
        root,
        "vanilla_short/seed0",
        name="vanilla_r8_short",
        method="vanilla",
        seed=0,
        top1=10.0,
        epochs=2,
    )
    for s, v in enumerate(KD):
        _run(root, f"kd/seed{s}", name="kd_r20_r8", method="kd", seed=s, top1=v, paper=74.5)
    for s, v in enumerate(DKD):
        _run(root, f"dkd/seed{s}", name="dkd_r20_r8", method="dkd", seed=s, top1=v)
    failed = _run(root, "dkd/seed2", name="dkd_r20_r8", method="dkd", seed=2, top1=None)
    (failed / "sweep.failed").write_text("error: loss became NaN at step 12\n")
    _run(root, "one/seed0", name="one_seed", method="fitnet", seed=0, top1=72.0)
    partial = _run(root, "one/seed1", name="one_seed", method="fitnet", seed=1, top1=None)
    (partial / "last.pt").write_bytes(b"x")
    no_config = root / "one" / "seed2"  # failed before writing its config
    no_config.mkdir()
    (no_config / "sweep.failed").write_text("error: CUDA out of memory\n")
    return root


def _table(text: str) -> dict[str, dict[str, str]]:
    """The markdown table's rows, by row label."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]
    ]
    return {r["row"]: r for r in rows}


def _results(study: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    assert main([str(study), *extra]) == 0
    out = capsys.readouterr().out
    return _table(out)


# --------------------------------------------------------------------------------------------
# The table's numbers
# --------------------------------------------------------------------------------------------


def test_mean_std_n_paper_and_time(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _results(study, capsys)
    kd = rows["kd_r20_r8"]
    assert kd["method"] == "kd" and kd["n"] == "3"
    assert kd["top-1 (last)"] == "74.00 ± 1.00"
    assert kd["paper"] == "74.50" and kd["vs paper"] == "-0.50"
    assert rows["dkd_r20_r8"]["top-1 (last)"] == f"71.80 ± {statistics.stdev(DKD):.2f}"
    assert rows["dkd_r20_r8"]["paper"] == "—" and rows["dkd_r20_r8"]["vs paper"] == "—"
    assert rows["vanilla_r8"]["time / run"] == "1m50s"  # mean of 100, 110, 120 s
    assert rows["vanilla_r8"]["time / row"] == "5m30s"  # their sum
    assert rows["one_seed"]["top-1 (last)"] == "72.00" and rows["one_seed"]["n"] == "1"


def test_gaps_to_baselines_and_two_se_mark(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _results(study, capsys)
    # kd - vanilla = +3.00; SE = sqrt(1/3 + 1/3) = 0.82: beyond 2 SE, marked
    assert rows["kd_r20_r8"]["vs vanilla"] == "+3.00*"
    # dkd - vanilla = +0.80; SE = sqrt(1.28/2 + 1/3) = 0.99: within 2 SE, not marked
    assert rows["dkd_r20_r8"]["vs vanilla"] == "+0.80"
    # dkd - kd = -2.20; same SE: beyond 2 SE, marked (negative)
    assert rows["dkd_r20_r8"]["vs KD"] == "-2.20*"
    # one seed: no standard error, no verdict
    assert rows["one_seed"]["vs vanilla"] == "+1.00†"
    # a baseline is not compared with itself
    assert rows["vanilla_r8"]["vs vanilla"] == "—" and rows["kd_r20_r8"]["vs KD"] == "—"


def test_gap_standard_error_values(study: Path) -> None:
    results = build_results([str(study)])
    by_label = {r.label: r for r in results.rows}
    kd = by_label["kd_r20_r8"].gaps["vanilla"]
    assert kd is not None and kd.diff == pytest.approx(3.0)
    assert kd.se == pytest.approx(math.sqrt(1 / 3 + 1 / 3)) and kd.significant is True
    dkd = by_label["dkd_r20_r8"].gaps["vanilla"]
    assert dkd is not None
    assert dkd.se == pytest.approx(math.sqrt(statistics.variance(DKD) / 2 + 1 / 3))
    assert dkd.significant is False
    one = by_label["one_seed"].gaps["vanilla"]
    assert one is not None and one.se is None and one.significant is None


def test_baselines_need_same_student_and_epochs(study: Path) -> None:
    """The teacher (vanilla, other student) and a 2-epoch vanilla are not kd's baseline."""
    results = build_results([str(study)])
    by_label = {r.label: r for r in results.rows}
    kd = by_label["kd_r20_r8"]
    assert kd.baselines["vanilla"].label == "vanilla_r8"
    assert kd.teacher is not None and kd.teacher.label == "teacher"
    assert "vanilla" not in by_label["vanilla_r8_short"].baselines
    assert "vanilla" not in by_label["teacher"].baselines
    assert [t.label for t in results.teacher_rows] == ["teacher"]


def test_teacher_row_is_labelled(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _results(study, capsys)
    assert rows["teacher"]["method"] == "vanilla (teacher)"
    assert list(rows)[0] == "teacher"  # a data set's teachers come first, then its students
    assert rows["vanilla_r8"]["method"] == "vanilla"


def test_seeds_pooled_only_when_all_but_seed_match(tmp_path: Path) -> None:
    _run(tmp_path, "a/seed0", name="kd", method="kd", seed=0, top1=70.0)
    _run(tmp_path, "a/seed1", name="kd", method="kd", seed=1, top1=72.0)
    _run(
        tmp_path, "b/seed0", name="kd", method="kd", seed=0, top1=60.0, extra={"optim": {"lr": 0.2}}
    )
    results = build_results([str(tmp_path)])
    assert sorted((r.label, r.row.n) for r in results.rows) == [
        ("kd [optim.lr=0.1]", 2),
        ("kd [optim.lr=0.2]", 1),
    ]


# --------------------------------------------------------------------------------------------
# Run states
# --------------------------------------------------------------------------------------------


def test_states_done_partial_failed(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(study)]) == 0
    out = capsys.readouterr().out
    rows = _table(out)
    assert "missing" not in rows["kd_r20_r8"]  # no --expect: no missing column
    dkd, one = rows["dkd_r20_r8"], rows["one_seed"]
    assert (dkd["done"], dkd["partial"], dkd["failed"]) == ("2", "0", "1")
    # one_seed: seed0 done, seed1 partial (last.pt), seed2 failed before writing its config
    assert (one["done"], one["partial"], one["failed"]) == ("1", "1", "1")
    assert f"failed: {study / 'dkd' / 'seed2'}: error: loss became NaN at step 12" in out
    assert f"failed: {study / 'one' / 'seed2'}: error: CUDA out of memory" in out


def test_expect_counts_missing(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expect = study / "expected.json"
    names = ["kd/seed0", "kd/seed1", "kd/seed2", "kd/seed3", "dkd/seed3", "new/seed0"]
    expect.write_text(json.dumps({"runs": names}))
    rows = _results(study, capsys, "--expect", str(expect))
    assert rows["kd_r20_r8"]["missing"] == "1" and rows["kd_r20_r8"]["done"] == "3"
    assert rows["dkd_r20_r8"]["missing"] == "1"
    (new,) = [r for label, r in rows.items() if label.endswith("new")]
    assert (new["n"], new["missing"], new["top-1 (last)"]) == ("0", "1", "—")


# --------------------------------------------------------------------------------------------
# Outputs: markdown file, README block, HTML, figure
# --------------------------------------------------------------------------------------------


def test_markdown_file_is_stdout(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "results.md"
    assert main([str(study), "--markdown", str(file)]) == 0
    out = capsys.readouterr().out
    assert file.read_text() == out
    assert "`*` marks a gap larger than 2 standard errors" in out


def test_readme_block_is_replaced(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start, end = markers("cifar")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{start}\nold table\n{end}\n\nafter\n")
    assert main([str(study), "--readme", str(readme), "--marker", "cifar"]) == 0
    table = capsys.readouterr().out
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n" + start + "\n")
    assert text.endswith(end + "\n\nafter\n")
    assert "old table" not in text
    block = text.split(start)[1].split(end)[0]
    assert table.strip() in block and "generated by tools/results.py" in block
    assert main([str(study), "--readme", str(readme), "--marker", "cifar"]) == 0
    capsys.readouterr()
    assert readme.read_text() == text  # regenerating gives the same file


def test_replace_block_refuses_bad_markers() -> None:
    start, end = markers("x")
    with pytest.raises(ResultsError, match="has no marker"):
        replace_block("no markers here", "x", "table")
    with pytest.raises(ResultsError, match="has 2 marker"):
        replace_block(f"{start}{end}{start}", "x", "table")
    with pytest.raises(ResultsError, match="comes before"):
        replace_block(f"{end} ... {start}", "x", "table")


def _strip_data_urls(page: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", page)


def test_html_page_is_self_contained(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    page_file = tmp_path / "page.html"
    assert main([str(study), "--html", str(page_file), "--title", "CIFAR-10 study"]) == 0
    capsys.readouterr()
    page = page_file.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>CIFAR-10 study</title>" in page
    assert "<table>" in page and '<td class="left">kd_r20_r8</td>' in page
    assert '<td class="right up">+3.00*</td>' in page  # a marked gap, coloured
    assert '<td class="right down">-2.20*</td>' in page
    assert "74.00 ± 1.00" in page and "gap larger than 2 standard errors" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    for image in images:
        png = base64.b64decode(image)
        assert png[:8] == PNG_SIGNATURE and len(png) > 5000
    rest = _strip_data_urls(page)
    assert 'src="http' not in rest and 'href="http' not in rest and "http" not in rest
    assert "<script" not in rest and "<link" not in rest and "url(" not in rest


def test_figure_png(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "accuracy.png"
    assert main([str(study), "--figure", str(out)]) == 0
    capsys.readouterr()
    assert out.read_bytes()[:8] == PNG_SIGNATURE and out.stat().st_size > 5000


# --------------------------------------------------------------------------------------------
# Errors: one line, exit 2
# --------------------------------------------------------------------------------------------


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert lines[0].startswith("results.py: error: ")
    return lines[0]


def test_missing_path(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(study), str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in _one_error(capsys)


def test_folder_without_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert main([str(tmp_path / "empty")]) == 2
    assert "no runs under" in _one_error(capsys)


def test_missing_markers(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert main([str(study), "--readme", str(readme), "--marker", "cifar"]) == 2
    assert "no marker <!-- results:cifar -->" in _one_error(capsys)
    assert readme.read_text() == "# no markers\n"


@pytest.mark.parametrize("content", ["{not json", '{"runs": 3}'])
def test_bad_expect_file(
    study: Path, tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expect = tmp_path / "expect.json"
    expect.write_text(content)
    assert main([str(study), "--expect", str(expect)]) == 2
    assert "--expect" in _one_error(capsys)


def test_html_without_matplotlib(
    study: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main([str(study), "--html", str(tmp_path / "p.html")]) == 2
    assert ".[plot]" in _one_error(capsys)


def test_script_and_make_target(study: Path) -> None:
    script = REPO / "tools" / "results.py"
    ok = subprocess.run([sys.executable, str(script), str(study)], capture_output=True, text=True)
    assert ok.returncode == 0 and "| kd_r20_r8 | kd | 3 | 74.00 ± 1.00 |" in ok.stdout
    bad = subprocess.run(
        [sys.executable, str(script), str(study / "nope")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("results.py: error: ")
    assert "$(PY) tools/results.py $(RUNS) $(ARGS)" in (REPO / "Makefile").read_text()


def test_named_pairs_and_low_resolution_rows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "runs"
    for s, v in enumerate(VANILLA):
        _run(root, f"vanilla/seed{s}", name="s/vanilla", method="vanilla", seed=s, top1=v)
    for s, v in enumerate(KD):
        _run(root, f"fitnet/seed{s}", name="s/fitnet", method="fitnet", seed=s, top1=v)
    for s, v in enumerate([70.0, 70.5, 71.0]):
        _run(root, f"sokd/seed{s}", name="s/sokd_fitnet", method="sokd", seed=s, top1=v)
    low = {"student": {"resolution": 16}}
    for s, v in enumerate([60.0, 61.0, 62.0]):
        _run(root, f"low/seed{s}", name="s/lowres", method="lowres", seed=s, top1=v, extra=low)
        _run(root, f"cq/seed{s}", name="s/cqkd", method="cqkd", seed=s, top1=v + 2, extra=low)
    rows = _results(root, capsys, "--pair", "sokd_fitnet=fitnet", "--pair", "s/cqkd=lowres")
    # sokd - fitnet = 70.5 - 74 = -3.50; SE = sqrt(0.25/3 + 1/3) = 0.65: marked
    assert rows["s/sokd_fitnet"]["vs base"] == "-3.50* (fitnet)"
    assert rows["s/cqkd"]["vs base"] == "+2.00* (lowres)"  # SE = sqrt(1/3 + 1/3) = 0.82
    assert rows["s/fitnet"]["vs base"] == "—"
    # a 16-pixel student is not measured against the 32-pixel vanilla row
    assert rows["s/cqkd"]["vs vanilla"] == "—" and rows["s/sokd_fitnet"]["vs vanilla"] != "—"
    assert "paper" not in rows["s/fitnet"]  # no recipe has a paper number: no such columns
    assert main([str(root), "--pair", "nosuch=fitnet"]) == 2
    assert "no row has that label" in capsys.readouterr().err
    assert main([str(root), "--pair", "sokd_fitnet"]) == 2
    assert "give ROW=BASE" in capsys.readouterr().err
