"""The IDX reader of the training data: round trips, gzip, the dataset folder, errors.
The tests write their own small IDX files: CI needs no dataset package."""
import gzip

import numpy as np
import pytest

from benchmarks import idx_data


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip(tmp_path, dtype, name):
    a = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    idx_data.write_idx(str(tmp_path / name), a)
    b = idx_data.read_idx(str(tmp_path / name))
    assert b.dtype == np.dtype(dtype) and np.array_equal(a, b)


def test_reads_the_published_layout_byte_for_byte(tmp_path):
    """A header written by hand as the format's description says (big-endian dims)."""
    raw = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 0, 255])
    (tmp_path / "l").write_bytes(raw)
    with gzip.open(tmp_path / "l.gz", "wb") as fh:
        fh.write(raw)
    for p in ("l", "l.gz"):
        assert idx_data.read_idx(str(tmp_path / p)).tolist() == [7, 0, 255]


def test_bad_files_are_refused_by_name(tmp_path):
    (tmp_path / "x").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="not an IDX file"):
        idx_data.read_idx(str(tmp_path / "x"))
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + b"ab")
    with pytest.raises(ValueError, match="5 bytes of data"):
        idx_data.read_idx(str(tmp_path / "short"))
    with pytest.raises(ValueError, match="uint8"):
        idx_data.write_idx(str(tmp_path / "y"), np.zeros(3, dtype=np.int64))


def _fake_dataset(folder, n_train=12, n_test=5, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("test", n_test)):
        img, lab = idx_data.FILES[split]
        idx_data.write_idx(str(folder / (img + suffix)),
                           rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        idx_data.write_idx(str(folder / (lab + suffix)), (np.arange(n) % 10).astype(np.uint8))


def test_find_and_load_a_dataset_folder(tmp_path):
    _fake_dataset(tmp_path, gz=True)
    assert idx_data.find_dataset("mnist", str(tmp_path)) == str(tmp_path)
    x, y = idx_data.load_split(str(tmp_path), "train")
    assert x.shape == (12, 28, 28) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == [i % 10 for i in range(12)]
    assert idx_data.load_split(str(tmp_path), "test")[0].shape == (5, 28, 28)
    with pytest.raises(ValueError, match="split"):
        idx_data.load_split(str(tmp_path), "valid")


def test_missing_files_and_unknown_datasets(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="lacks"):
        idx_data.find_dataset("fashion-mnist", str(tmp_path))
    with pytest.raises(ValueError, match="dataset"):
        idx_data.find_dataset("cifar", None)
    monkeypatch.setitem(idx_data.DATASETS, "mnist", (str(tmp_path / "nowhere"),))
    assert idx_data.find_dataset("mnist") is None
