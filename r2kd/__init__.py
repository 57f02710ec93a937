"""R2KD: Robustness-Reinforced Knowledge Distillation (correlation distances, pruned teacher,
augmented copies). The method registers as `method.name: r2kd` from `r2kd.method`."""
