"""Random sketch operators and the sketched Newton (Iterative Hessian Sketch) strategy."""
from .base import Sketch
from .gaussian import GaussianSketch
from .hessian import SKETCHES, SketchedHessian
from .sampling import RowSampler, leverage_scores
from .sparse import CountSketch, SparseSignSketch
from .srht import SRHTSketch, fwht, hadamard_rows

__all__ = ["Sketch", "GaussianSketch", "SRHTSketch", "CountSketch", "SparseSignSketch",
           "RowSampler", "leverage_scores", "fwht", "hadamard_rows", "SketchedHessian",
           "SKETCHES"]
