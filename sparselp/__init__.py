"""sparselp: solve and differentiate through huge sparse linear programs in PyTorch."""
from .problem import LinearProgram
from .linsolve import cg, NewtonSystem, HessianStrategy
from .options import SolverOptions
from .solution import Solution, Status
from .solver import solve
from .warmstart import WarmStart
from .linprog import linprog
from . import formulations
from .layer import LPLayer, lp_solve
from .losses import AUCLoss, MultiClassAUCLoss, FScoreLoss, PrecisionAtRecallLoss
from .memory_model import MemoryBudgetError, Plan
from .planner import plan

__all__ = ["LinearProgram", "solve", "linprog", "SolverOptions", "Solution", "Status", "cg",
           "NewtonSystem", "HessianStrategy", "formulations", "LPLayer", "lp_solve",
           "AUCLoss", "MultiClassAUCLoss", "FScoreLoss", "PrecisionAtRecallLoss",
           "plan", "Plan", "MemoryBudgetError", "WarmStart"]
