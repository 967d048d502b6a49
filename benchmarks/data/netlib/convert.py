"""Convert SciPy's dense Netlib files to the sparse layout of this folder, and verify them.

Run once, from the repository root::

    python -m benchmarks.data.netlib.convert SRC [--dest DIR]

SRC holds ``feasible/*.npz`` and ``infeasible/*.npz`` in the dense layout of SciPy's
``benchmarks/benchmarks/linprog_benchmark_files`` (see README.md); DIR defaults to this
folder. Each written file is read back and compared with the original: the CSR arrays
with those of ``scipy.sparse.csr_array`` of the dense matrix (and, for matrices up to
1e7 entries, the densified matrix with the original), the vectors exactly, and the
bounds with an independent decoding of the object array (``None`` = infinite).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmarks.netlib_data import SPARSE_MARK, read_arrays, write_sparse

HERE = Path(__file__).resolve().parent


def convert(src: Path, dest: Path = HERE) -> list[str]:
    """Write every problem of ``src`` into ``dest`` in the sparse layout; names written."""
    done = []
    for kind in ("feasible", "infeasible"):
        (dest / kind).mkdir(parents=True, exist_ok=True)
        for f in sorted((src / kind).glob("*.npz")):
            out = dest / kind / f.name
            write_sparse(out, read_arrays(f))
            verify(f, out)
            done.append(f"{kind}/{f.stem}")
            print(f"{kind:10s} {f.stem:10s} {f.stat().st_size:9d} -> {out.stat().st_size:8d} bytes",
                  flush=True)
    return done


def verify(original: Path, converted: Path) -> None:
    """Raise AssertionError unless ``converted`` holds the same problem as ``original``."""
    with np.load(converted) as d:  # no pickle: the sparse layout has no object arrays
        assert SPARSE_MARK in d.files and all(d[k].dtype != object for k in d.files)
    new = read_arrays(converted)
    with np.load(original, allow_pickle=True) as raw:
        c = np.asarray(raw["c"], dtype=np.float64).reshape(-1)
        n = c.size
        assert np.array_equal(new["c"], c)
        assert new["obj"] == float(raw["obj"])
        for name, rhs in (("A_ub", "b_ub"), ("A_eq", "b_eq")):
            dense = np.asarray(raw[name], dtype=np.float64).reshape(-1, n)
            ref, got = sp.csr_array(dense), new[name]
            assert got.shape == ref.shape and got.nnz == ref.nnz
            for part in ("indptr", "indices", "data"):
                assert np.array_equal(getattr(got, part), getattr(ref, part)), (name, part)
            if dense.size <= 10**7:
                assert np.array_equal(got.toarray(), dense), name
            assert np.array_equal(new[rhs], np.asarray(raw[rhs], dtype=np.float64).reshape(-1))
        bnd = raw["bounds"].reshape(-1, 2) if raw["bounds"].size else np.array([[0.0, None]] * n)
        for col, key, inf in ((0, "lb", -np.inf), (1, "ub", np.inf)):
            want = np.array([inf if v is None else float(v) for v in bnd[:, col]])
            assert np.array_equal(new[key], want), key


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="folder with feasible/ and infeasible/ (dense layout)")
    ap.add_argument("--dest", type=Path, default=HERE)
    args = ap.parse_args(argv)
    done = convert(args.src, args.dest)
    print(f"converted and verified {len(done)} problems into {args.dest}")


if __name__ == "__main__":
    main()
