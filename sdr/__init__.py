"""Sufficient dimension reduction estimators and the reduction of LPs by projection."""
from .estimators import (DirectionalRegression, SlicedAverageVarianceEstimation,
                         SlicedInverseRegression)
from .evaluation import MinibatchLP, compare_reduction, lagrangian_gradient, solve_lp
from .projection import SDRGrouping, group_average_matrix, sdr_projection
from .reduce import lift, reduce
from .select import SDRFamily, SketchFamily, select_dimension

__all__ = ["SlicedInverseRegression", "SlicedAverageVarianceEstimation",
           "DirectionalRegression", "reduce", "lift", "sdr_projection", "SDRGrouping",
           "group_average_matrix", "select_dimension", "SDRFamily", "SketchFamily",
           "MinibatchLP", "compare_reduction", "lagrangian_gradient", "solve_lp"]
