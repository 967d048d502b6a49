"""Batched linear operators for constraint matrices: dense, sparse (CSR), bound rows, stacks.

:class:`Operator` (:mod:`.base`) is the interface the Newton solver sees;
:class:`DenseOperator` (:mod:`.dense`), :class:`SparseOperator` (:mod:`.sparse`, on an
index pattern from :mod:`.pattern`), and the row operators :class:`SelectionOperator` and
:class:`StackedOperator` (:mod:`.rows`) implement it. :mod:`.tensors` holds the small
tensor helpers that the operators share with the cleaning of inputs, :mod:`.masks` the
tests and 0/1 masks of large vectors that avoid torch's slow bool kernels on CPU.
"""
from .base import Operator
from .masks import (all_finite, all_true, any_neginf, any_nonzero, any_true, as_float,
                    finite_rows, float_mask, rows_all)
from .dense import DenseOperator
from .pattern import _coo_to_csr, _Pattern
from .rows import SelectionOperator, StackedOperator
from .sparse import SparseOperator
from .tensors import (coo_tensor, crow_to_rows, csr_tensor, index_dtype, is_expanded_scalar,
                      marked_rows, quiet_sparse, scipy_to_torch)

__all__ = ["Operator", "DenseOperator", "SparseOperator", "SelectionOperator",
           "StackedOperator", "_Pattern", "_coo_to_csr", "index_dtype", "crow_to_rows",
           "is_expanded_scalar", "scipy_to_torch", "quiet_sparse", "csr_tensor", "coo_tensor",
           "all_true", "any_true", "rows_all", "as_float", "float_mask", "all_finite",
           "finite_rows", "any_nonzero", "any_neginf", "marked_rows"]
