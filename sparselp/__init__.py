"""sparselp: solve and differentiate through huge sparse linear programs in PyTorch."""
from .problem import LinearProgram
from .linsolve import cg, NewtonSystem, HessianStrategy

__all__ = ["LinearProgram", "cg", "NewtonSystem", "HessianStrategy"]
