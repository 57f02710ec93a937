"""Shared baselines (vanilla, KD, DKD) and the Distiller base class."""

from common.methods.base import Distiller, NoOptions
from common.methods.registry import get_method, method_names, register_method

__all__ = ["Distiller", "NoOptions", "get_method", "method_names", "register_method"]
