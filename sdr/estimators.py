r"""Sliced inverse regression, sliced average variance estimation, directional regression.

All three share the whitening and slicing of :class:`sdr._base.SlicedEstimatorBase` and
differ only in the kernel matrix :math:`M` whose leading eigenvectors span the estimated
central subspace. With the whitened predictors :math:`Z`, slices :math:`h` of proportion
:math:`p_h`, slice means :math:`m_h = E[Z \mid h]` and slice second moments
:math:`S_h = E[Z Z^T \mid h]` (so :math:`V_h = S_h - m_h m_h^T` is the slice covariance):

.. math::

    M_{SIR}  &= \sum_h p_h\, m_h m_h^T \\
    M_{SAVE} &= \sum_h p_h\, (I - V_h)^2 \\
    M_{DR}   &= 2 \sum_h p_h\, S_h^2 + 2 \Big(\sum_h p_h m_h m_h^T\Big)^2
               + 2 \Big(\sum_h p_h m_h^T m_h\Big) \sum_h p_h m_h m_h^T - 2 I

SIR only sees slice means, so it misses directions along which ``y`` is symmetric; SAVE
sees slice variances but is inefficient for monotone trends; DR combines first and second
moments (it is exhaustive under milder conditions than SIR and SAVE). For a categorical
response each class is its own slice (``categorical="auto"`` does this for integer, bool or
string labels), which is the setting directional regression was designed for beyond
regression: the kernel uses the class-wise first and second moments, so classes that
differ only in their spread are separated, which SIR (class means only; at most
``n_classes - 1`` directions) cannot do.

References
----------
.. [1] K.-C. Li, "Sliced inverse regression for dimension reduction", JASA 86 (1991).
.. [2] R. D. Cook and S. Weisberg, "Discussion of Li (1991)", JASA 86 (1991).
.. [3] B. Li and S. Wang, "On directional regression for dimension reduction", JASA 102 (2007).
"""
from __future__ import annotations

from ._base import SlicedEstimatorBase

__all__ = ["SlicedInverseRegression", "SlicedAverageVarianceEstimation",
           "DirectionalRegression"]

_PARAMS_DOC = """
    Parameters
    ----------
    n_components : int or None, default=None
        Number of directions kept; ``None`` keeps ``n_features`` (all, ordered by
        eigenvalue). Must not exceed ``n_features``.
    n_slices : int, default=10
        Number of quantile slices of a continuous response.
    categorical : {"auto", True, False}, default="auto"
        Slice by class (one slice per distinct value of ``y``) or by quantiles; ``"auto"``
        picks classes for non-float ``y`` or when ``y`` has at most ``n_slices`` values.
    ridge : float, default=1e-8
        Relative ridge :math:`\\delta` added to the covariance before whitening:
        :math:`\\Sigma + \\delta\\,\\mathrm{tr}(\\Sigma)/p\\,I`. Keeps the whitening finite for
        collinear or constant features.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Unit-length directions in the original coordinates, leading eigenvalue first.
    eigenvalues_ : ndarray of shape (n_components,)
        Eigenvalues of the kernel matrix for these directions.
    mean_ : ndarray of shape (n_features,)
    n_slices_ : int
        Number of slices actually used.
    n_features_in_ : int
"""


class SlicedInverseRegression(SlicedEstimatorBase):
    __doc__ = r"""Sliced inverse regression (Li, 1991).

    Kernel :math:`M = \sum_h p_h m_h m_h^T` of the whitened slice means. For a binary
    response its single nonzero direction is :math:`\Sigma^{-1}(\mu_1 - \mu_0)`, Fisher's
    linear discriminant.
    """ + _PARAMS_DOC + """
    Examples
    --------
    >>> import numpy as np
    >>> from sdr.estimators import SlicedInverseRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 5)); y = X[:, 0] ** 3 + 0.1 * rng.standard_normal(500)
    >>> sir = SlicedInverseRegression(n_components=1).fit(X, y)
    >>> bool(abs(sir.components_[0, 0]) > 0.99)
    True
    """

    def _kernel(self, props, means, seconds, eye):
        return (means.T * props) @ means


class SlicedAverageVarianceEstimation(SlicedEstimatorBase):
    __doc__ = r"""Sliced average variance estimation (Cook & Weisberg, 1991).

    Kernel :math:`M = \sum_h p_h (I - V_h)^2` with :math:`V_h` the whitened slice covariance;
    it recovers directions along which the response changes the spread of ``X`` (e.g.
    :math:`y = (\beta^T x)^2`), which SIR misses.
    """ + _PARAMS_DOC

    def _kernel(self, props, means, seconds, eye):
        D = eye - (seconds - means[:, :, None] * means[:, None, :])
        return (props[:, None, None] * (D @ D)).sum(0)


class DirectionalRegression(SlicedEstimatorBase):
    __doc__ = r"""Directional regression (Li & Wang, 2007).

    Kernel :math:`M = 2\sum_h p_h S_h^2 + 2 (\sum_h p_h m_h m_h^T)^2
    + 2 (\sum_h p_h \|m_h\|^2) \sum_h p_h m_h m_h^T - 2I`, the slice form of
    :math:`E[(2I - E[(Z - Z')(Z - Z')^T \mid Y, Y'])^2]`. With a categorical ``y`` every class
    is one slice, so ``M`` uses the class means and class second moments together.
    """ + _PARAMS_DOC

    def _kernel(self, props, means, seconds, eye):
        mm = (means.T * props) @ means
        ss = (props[:, None, None] * (seconds @ seconds)).sum(0)
        return 2 * ss + 2 * mm @ mm + 2 * float(props @ (means ** 2).sum(1)) * mm - 2 * eye
