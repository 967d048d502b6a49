r"""A faithful dense port of the seed paper's binary-AUC LP layer (the reference to beat).

Port of the algorithm in the authors' released ``binary_auc.py`` (Meng et al., NeurIPS
2021, github.com/zihangm/nondecomposable-as-lp), written from its description:

- the LP :math:`\min 1^T z` s.t. :math:`A z \le b` with the **dense**
  :math:`A = [-I; -I]` of shape (2P, P), :math:`b = [s_i - s_j - \varepsilon; 0]`;
- start from the regularised least-squares fit of the first P rows
  (:math:`(A_1^T A_1 + 10^{-3} I) z = A_1^T b_1`);
- 20 generalized Newton steps on Mangasarian's exterior penalty with the step function
  formed as a dense (2P, 2P) diagonal matrix and the step
  :math:`d = -(A^T D A + 10^{-4} I)^{-1} (A^T (A z - b)_+ + 10^{-3} c)` taken with a
  dense inverse, step length 1;
- the dual :math:`v = (A z - b)_+/\varepsilon`, the active rows :math:`J = \{v > 0\}` and
  the primal :math:`z = (A_J^T A_J + 10^{-2} I)^{-1} A_J^T b_J`;
- the loss :math:`(P - \sum \operatorname{relu}(\varepsilon - z)/\varepsilon)/P`,
  differentiated by autograd through all of the above (unrolled).

It lives in ``benchmarks/`` only: it is the baseline of the memory benchmark, never part
of the package. Its memory is :math:`O(P^2)` per step, kept for all 20 steps by autograd.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["dense_port_auc_loss", "dense_port_bytes"]


def dense_port_auc_loss(scores: Tensor, labels: Tensor, eps: float = 0.01,
                        steps: int = 20) -> Tensor:
    """The paper's AUC loss of one minibatch (binary labels 1 / 0), dense and unrolled.

    Parameters
    ----------
    scores : tensor of shape (n,)
    labels : tensor of shape (n,), 1 for positive and 0 (or -1) for negative
    eps : float
        The paper's epsilon (0.01).
    steps : int
        Newton steps (20 in the paper).

    Returns
    -------
    Scalar loss tensor; its graph holds every dense intermediate.
    """
    relu = torch.nn.functional.relu
    pos, neg = scores[labels == 1], scores[labels != 1]
    T, N = pos.numel(), neg.numel()
    P = T * N
    dt, dev = scores.dtype, scores.device
    gap = (pos.unsqueeze(1) - neg.unsqueeze(0)).reshape(1, P)
    c = torch.ones(1, P, dtype=dt, device=dev)
    eye = torch.eye(P, dtype=dt, device=dev)
    A = torch.cat([-eye, -eye], 0).unsqueeze(0)                      # (1, 2P, P) dense
    b = torch.cat([gap - eps, torch.zeros(1, P, dtype=dt, device=dev)], 1)
    A1, b1 = A[:, :P, :], b[:, :P]
    z = torch.linalg.solve(A1.transpose(1, 2) @ A1 + 1e-3 * eye,
                           A1.transpose(1, 2) @ b1.unsqueeze(2))
    for _ in range(steps):
        D = torch.diag_embed(((A @ z).squeeze(2) - b > 0).to(dt))     # (1, 2P, 2P) dense
        H = A.transpose(1, 2) @ D @ A + 1e-4 * eye
        g = A.transpose(1, 2) @ relu(A @ z - b.unsqueeze(2)) + 1e-3 * c.unsqueeze(2)
        z = z - torch.inverse(H) @ g
    v = relu(A @ z - b.unsqueeze(2)) / eps
    J = (v > 0).to(dt).squeeze().nonzero().squeeze(1)
    AJ, bJ = A[:, J, :], b[:, J]
    z = torch.linalg.solve(AJ.transpose(1, 2) @ AJ + 1e-2 * eye,
                           AJ.transpose(1, 2) @ bJ.unsqueeze(2)).squeeze(2)
    return ((P - relu(-z + eps).sum(1) / eps) / P).mean()


def dense_port_bytes(n_pos: int, n_neg: int, itemsize: int = 4, steps: int = 20) -> int:
    """Predicted peak memory of the dense port, in bytes.

    Autograd keeps one dense (P, P) inverse per Newton step; on top of them one step holds
    transiently the (2P, 2P) step-function matrix, the (P, 2P) product ``A^T D`` and a few
    (P, P) matrices: about ``(steps + 8) P^2`` numbers (5.3 GB at P = 6,400 in float32,
    against 5.5 GB measured before this project).
    """
    P = n_pos * n_neg
    return (steps + 8) * P * P * itemsize
