"""`make bench`'s fair measurement: candidates timed in interleaved repeats (one thread and
thread CPU time on the CPU), every share and "x its base" a median of per-repeat values with
its spread, and a method's trained adapters counted as network work. No timed assertions:
speed goals live in the benchmarks, never in tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_runs import tiny_recipe

from common.bench import StepSpec, interleaved_seconds, method_step_cost, step_costs
from common.bench.timing import Interleaved, Spread

CPU = torch.device("cpu")
PAIR = ["teacher.name=resnet20", "student.name=resnet8"]


class FakeClock:
    """A clock that only the candidates move: each call of a candidate adds its cost of the
    current repeat (so a block's time is known exactly)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_candidates_alternate_in_blocks_with_the_order_rotated_each_repeat() -> None:
    log: list[str] = []
    candidates = {name: (lambda name=name: log.append(name)) for name in "ABC"}
    interleaved_seconds(candidates, calls=2, repeats=3, warmup=1, clock=FakeClock())
    blocks = ["".join(log[i : i + 2]) for i in range(3, len(log), 2)]
    assert log[:3] == ["A", "B", "C"]  # the warm-up, one call each
    assert blocks == ["AA", "BB", "CC", "BB", "CC", "AA", "CC", "AA", "BB"]


def test_median_spread_and_ratios_are_taken_within_each_repeat() -> None:
    clock = FakeClock()
    # seconds a call, per call (the warm-up's first): the machine drifts, B stays twice A
    costs = {
        "A": iter([0.0, 1.0, 1.0, 2.0, 2.0, 10.0, 10.0]),
        "B": iter([0.0, 2.0, 2.0, 4.0, 4.0, 20.0, 20.0]),
    }

    def a() -> None:
        clock.now += next(costs["A"])

    def b() -> None:
        clock.now += next(costs["B"])

    result = interleaved_seconds({"A": a, "B": b}, calls=2, repeats=3, warmup=1, clock=clock)
    assert result.samples["A"] == [1.0, 2.0, 10.0]
    assert result.seconds("A") == Spread(2.0, 1.0, 10.0)
    assert result.ratio("B", "A") == Spread(2.0, 2.0, 2.0)  # the drift cancels
    assert result.share_outside("B", "A") == Spread(0.5, 0.5, 0.5)
    assert (result.calls, result.repeats) == (2, 3)


def test_a_share_is_not_clipped_so_its_spread_shows_the_noise() -> None:
    timing = Interleaved({"step": [1.0, 1.0, 1.0], "bare": [0.9, 1.0, 1.1]}, "fake", 1, 3)
    share = timing.share_outside("step", "bare")
    assert share.median == pytest.approx(0.0)
    assert share.bounds() == pytest.approx([-0.1, 0.1])


def test_the_cpu_measurement_runs_on_one_thread_and_restores_the_count() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[int] = []
    try:
        timing = interleaved_seconds({"A": lambda: seen.append(torch.get_num_threads())}, 2, 2)
        assert set(seen) == {1} and torch.get_num_threads() == 2
        assert "thread_time" in timing.clock

        def fails() -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            interleaved_seconds({"A": fails}, 1, 1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_loop_with_worker_processes_is_timed_by_the_wall_clock_on_its_own_threads() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[int] = []
    try:
        timing = interleaved_seconds(
            {"A": lambda: seen.append(torch.get_num_threads())}, 1, 2, thread_time=False
        )
        assert set(seen) == {2} and timing.clock == "wall (2 threads)"
    finally:
        torch.set_num_threads(before)


def check_spread(cost: dict, key: str) -> None:
    lo, hi = cost[f"{key}_spread"]
    assert lo <= cost[key] <= hi, key


def test_a_step_cost_gives_each_figure_with_its_spread_and_the_steps_own_order(
    tmp_path: Path,
) -> None:
    recipe = tiny_recipe(tmp_path, "method: {name: kd}\n")
    cost = method_step_cost(recipe, CPU, 1, PAIR)
    for key in ("step_ms", "models_fwd_bwd_ms", "outside_models_share"):
        check_spread(cost, key)
    assert cost["networks"] == "student, teacher"  # KD runs the student first
    assert "interleaved" in cost["timing"] and "1 thread" in cost["timing"]


@pytest.mark.parametrize(
    ("method", "adapters"), [("reviewkd", True), ("fitnet", True), ("at", False)]
)
def test_a_feature_methods_trained_adapters_count_as_networks(
    tmp_path: Path, method: str, adapters: bool
) -> None:
    recipe = tiny_recipe(tmp_path, f"method: {{name: {method}}}\n")
    costs, timing = step_costs({"m": StepSpec(recipe, PAIR)}, CPU, 1, repeats=2)
    assert costs["m"]["networks"].endswith("+ adapters") == adapters
    assert len(timing.samples["m"]) == len(timing.samples["m/bare"]) == 2


def test_the_bare_pass_trains_reviewkds_fusion(tmp_path: Path) -> None:
    from common.bench.steps import prepare_step

    recipe = tiny_recipe(tmp_path, "method: {name: reviewkd}\n")
    prepared = prepare_step(StepSpec(recipe, PAIR), CPU)
    assert prepared.order == ["student", "teacher"] and prepared.bare is not None
    prepared.bare()
    fusion = prepared.trainer.method.fusion
    assert all(p.grad is not None for p in fusion.parameters() if p.requires_grad)
    assert all(p.grad is None for p in prepared.trainer.method.teacher.parameters())


def fake_step_costs(specs, device, steps, repeats=None):
    """`step_costs` without training: each spec a step of 10 ms (bare 9 ms), two repeats."""
    samples = {}
    for name, spec in specs.items():
        samples[name] = [0.010, 0.012]
        if spec.bare:
            samples[f"{name}/bare"] = [0.009, 0.011]
    costs = {}
    for name, spec in specs.items():
        costs[name] = {
            "step_ms": 11.0, "step_ms_spread": [10.0, 12.0], "peak_memory_mb": 1.0,
            "images_per_second": 1.0, "timing": "fake",
        }  # fmt: skip
        if spec.bare:
            costs[name].update({
                "networks": "student, teacher", "models_fwd_bwd_ms": 10.0,
                "models_fwd_bwd_ms_spread": [9.0, 11.0], "outside_models_share": 0.1,
                "outside_models_share_spread": [0.08, 0.1],
            })  # fmt: skip
    return costs, Interleaved(samples, "fake", steps, 2)


SECTIONS = {
    "sokd.bench:bench_sokd_step": ("search_over_base", "fixed_over_base", "fitnet_step_ms"),
    "slkd.bench:bench_slkd_step": ("slkd_step_vs_kd", "slkd_outside_models_share"),
    "r2kd.bench:bench_r2kd_step": ("r2kd_step_vs_kd", "r2kd_outside_models_share"),
    "cqkd.bench_steps:cqkd_step_cost": ("cqkd_over_baseline_16px", "cqkd_16px_step_ms"),
    "cqkd.bench_steps:dml_step_cost": ("dml_over_baseline_16px", "dml_16px_step_ms"),
}


@pytest.mark.parametrize("target", SECTIONS)
def test_every_methods_share_and_ratio_comes_with_its_spread(monkeypatch, target: str) -> None:
    import importlib

    module_name, function = target.split(":")
    module = importlib.import_module(module_name)
    monkeypatch.setattr(module, "step_costs", fake_step_costs)
    out = getattr(module, function)(CPU, 1)
    for key in SECTIONS[target]:
        check_spread(out, key)
    assert out["timing"] == "fake"


def test_the_command_line_refuses_no_repeats_and_prints_a_spread(capsys) -> None:
    from tools.bench import main, shown

    assert main(["--repeats", "0", "--sections", "kd_step"]) == 2
    assert "--repeats must be >= 1, got 0" in capsys.readouterr().err
    assert shown([0.0123456, 1.5]) == "[0.01235, 1.5]"
