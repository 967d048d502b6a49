"""sparselp: solve and differentiate through huge sparse linear programs in PyTorch."""
from .problem import LinearProgram
from .linsolve import cg, NewtonSystem, HessianStrategy
from .options import SolverOptions
from .solution import Solution, Status
from .solver import solve
from .linprog import linprog

__all__ = ["LinearProgram", "solve", "linprog", "SolverOptions", "Solution", "Status", "cg",
           "NewtonSystem", "HessianStrategy"]
