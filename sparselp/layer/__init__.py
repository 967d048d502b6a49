"""The differentiable LP layer (implicit differentiation on the active set)."""
from .module import LPLayer, lp_solve

__all__ = ["LPLayer", "lp_solve"]
