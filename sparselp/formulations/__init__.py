"""LP formulations of non-decomposable metrics, built sparse by index arithmetic.

Each builder takes scores and integer labels and returns a
:class:`~sparselp.problem.LinearProgram`; the ``*_data`` variants return the same LP as an
:class:`LPData` bundle of tensors that stay attached to the scores' autograd graph, for the
differentiable layer and the losses.
"""
from ._base import LPData
from .auc import auc_from_hinge, binary_auc, binary_auc_data, multiclass_auc, multiclass_auc_data
from .ratio import (fscore, fscore_data, precision_at_recall, precision_at_recall_data,
                    relaxed_predictions)

__all__ = ["LPData", "binary_auc", "binary_auc_data", "multiclass_auc", "multiclass_auc_data",
           "auc_from_hinge", "fscore", "fscore_data", "precision_at_recall",
           "precision_at_recall_data", "relaxed_predictions"]
