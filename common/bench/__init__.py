"""`make bench`: timing helpers, the engine-step measurement and the registry of sections."""

from common.bench.sections import get_section, section_names
from common.bench.steps import StepSpec, method_step_cost, step_costs, step_trainer
from common.bench.timing import (
    Interleaved,
    Spread,
    interleaved_seconds,
    peak_memory_mb,
    reset_peak_memory,
    seconds_per_call,
)

__all__ = [
    "Interleaved",
    "Spread",
    "StepSpec",
    "get_section",
    "interleaved_seconds",
    "method_step_cost",
    "peak_memory_mb",
    "reset_peak_memory",
    "seconds_per_call",
    "section_names",
    "step_costs",
    "step_trainer",
]
