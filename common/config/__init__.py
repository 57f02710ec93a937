"""Recipes: the schema, YAML loading with `base:` inheritance, overrides and validation."""

from common.config.loader import (
    config_to_dict,
    load_recipe,
    load_saved_config,
    save_config,
)
from common.config.schema import (
    DataConfig,
    LogConfig,
    MethodConfig,
    ModelConfig,
    OptimConfig,
    PaperConfig,
    RunConfig,
    SyntheticConfig,
    TrainConfig,
)
from common.config.validate import ConfigError

__all__ = [
    "ConfigError",
    "DataConfig",
    "LogConfig",
    "MethodConfig",
    "ModelConfig",
    "OptimConfig",
    "PaperConfig",
    "RunConfig",
    "SyntheticConfig",
    "TrainConfig",
    "config_to_dict",
    "load_recipe",
    "load_saved_config",
    "save_config",
]
