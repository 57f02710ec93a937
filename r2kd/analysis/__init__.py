"""R2KD's analysis tools: entropy where the teacher is uncertain (Figs. 4, 5) and the
student-teacher disparity of logit correlation matrices (Fig. 6).

`entropy` and `correlation` are pure tensor functions; `runs` turns run directories into
networks and validation logits; `images` and `tables` write the results. The command-line
tools are `tools/r2kd_entropy.py` and `tools/r2kd_corr_disparity.py`.
"""

from r2kd.analysis.correlation import Disparity, disparity
from r2kd.analysis.entropy import (
    EntropyRow,
    entropy_comparison,
    high_entropy_indices,
    most_uncertain_classes,
    most_uncertain_samples,
    per_class_count,
    sample_entropy,
)
from r2kd.analysis.images import heatmap_pixels, write_heatmap, write_ppm

__all__ = [
    "Disparity",
    "EntropyRow",
    "disparity",
    "entropy_comparison",
    "heatmap_pixels",
    "high_entropy_indices",
    "most_uncertain_classes",
    "most_uncertain_samples",
    "per_class_count",
    "sample_entropy",
    "write_heatmap",
    "write_ppm",
]
