r"""The container the LP file readers return, and their one error type.

An :class:`LPData` holds an LP in ``scipy.optimize.linprog``'s form

.. math::

    \min_x \; c^T x + \text{offset} \quad \text{s.t.} \quad A_{ub} x \le b_{ub},
    \quad A_{eq} x = b_{eq}, \quad lb \le x \le ub .
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = ["LPData", "LPFileError"]


class LPFileError(ValueError):
    """A missing, unreadable or malformed LP file."""


@dataclass
class LPData:
    """An LP in linprog form; matrices are ``scipy.sparse.csr_array`` of shape (m, n).

    ``sense`` is -1 for a file that maximises (MPS ``OBJSENSE MAX``): ``c`` and ``offset``
    are then stored negated, so that the LP here is always a minimisation.
    """

    name: str
    c: np.ndarray
    A_ub: sp.csr_array
    b_ub: np.ndarray
    A_eq: sp.csr_array
    b_eq: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    offset: float = 0.0
    col_names: list = field(default_factory=list)
    sense: float = 1.0

    def objective(self, fun: float) -> float:
        """The objective in the file's own sense, from ``fun`` = min of c^T x."""
        return self.sense * (fun + self.offset)

    @property
    def n(self) -> int:
        """Number of variables."""
        return self.c.size

    @property
    def bounds(self) -> list:
        """scipy-style bounds: a list of ``(lb, ub)`` with ``None`` for an infinite side."""
        return [(None if math.isinf(lo) else float(lo), None if math.isinf(hi) else float(hi))
                for lo, hi in zip(self.lb, self.ub)]

    def linprog_args(self) -> dict:
        """Keyword arguments for a scipy-style ``linprog`` (empty blocks become None)."""
        return {"c": self.c,
                "A_ub": self.A_ub if self.A_ub.shape[0] else None,
                "b_ub": self.b_ub if self.b_ub.size else None,
                "A_eq": self.A_eq if self.A_eq.shape[0] else None,
                "b_eq": self.b_eq if self.b_eq.size else None,
                "bounds": self.bounds}
