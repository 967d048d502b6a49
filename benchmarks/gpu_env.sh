# Sourced by the GPU scripts (gpu_check.sh, gpu_train.sh): the repository root as the
# working directory, $OUT_DIR from $OUT (else the default given as the first argument),
# $PY from $PYTHON (else .venv's python, else python3), and the repository on PYTHONPATH.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT_DIR="${OUT:-$1}"
mkdir -p "$OUT_DIR"
if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ -x .venv/bin/python ]; then
    PY=.venv/bin/python
else
    PY=python3
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
