#!/usr/bin/env bash
# The training study's ResNet-18 grid on a CUDA GPU, in one call of about 8 minutes: what
# a session lent a GPU runs for the ResNet-18 half of the training targets (on this CPU a
# ResNet-18 step at minibatch 256 takes about 11 s, a 4-epoch run over an hour).
#
#   mkdir -p data/fashion-mnist && cp /usr/share/datasets/fashion-mnist/*.gz data/fashion-mnist/
#   bash benchmarks/gpu_train.sh     # on the GPU machine, data/fashion-mnist carried (30 MB)
#
# It runs `sparselp bench train --studies grid --model resnet18 --device cuda`: the losses
# of the AUC target (cross-entropy, the two AUC surrogates, LibAUC's AUCM + PESG when the
# package imports, its learning rate chosen on validation) at 1% and 5% positives, 3
# seeds, 4 epochs, minibatch 256, Adam 1e-3 (LibAUC's own protocol for it). Settings by
# environment (defaults in brackets): DATASET [fashion-mnist], DATA [the usual folders,
# data/fashion-mnist among them], MODEL [resnet18], DEVICE [cuda], LOSSES
# [ce,auc,auc-hinge,libauc-aucm], IMRATIOS [0.01,0.05], SEEDS [0,1,2], EPOCHS [4],
# LIMIT [480 s for the grid], OUT [gpu_train]. The grid stops at LIMIT: finished runs
# are kept (each run writes its metrics.json), and whatever finished is summarised.
# Back in $OUT: train_summary.csv, train_runs.csv, train_roc.png, runs.tgz (every run's
# metrics.json and learning curve) and gpu_train.log.
set -uo pipefail

source "$(dirname "$0")/gpu_env.sh" gpu_train
export PYTHONUNBUFFERED=1
DATA_FLAG=()
if [ -n "${DATA:-}" ]; then
    DATA_FLAG=(--data-dir "$DATA")
fi
ARGS=(--dataset "${DATASET:-fashion-mnist}" "${DATA_FLAG[@]}" --model "${MODEL:-resnet18}"
      --device "${DEVICE:-cuda}" --studies grid
      --losses "${LOSSES:-ce,auc,auc-hinge,libauc-aucm}" --imratios "${IMRATIOS:-0.01,0.05}"
      --seeds "${SEEDS:-0,1,2}" --epochs "${EPOCHS:-4}" --runs "$OUT_DIR/runs"
      --out "$OUT_DIR" --no-progress)
LOG="$OUT_DIR/gpu_train.log"

(nvidia-smi || echo "nvidia-smi not available") > "$LOG" 2>&1
timeout "${LIMIT:-480}" "$PY" -m benchmarks.train_grid "${ARGS[@]}" >> "$LOG" 2>&1
status=$?
if [ "$status" != 0 ]; then
    # Out of time (124) or failed: summarise the runs that finished. Every finished run is
    # read back from its folder, and none is started: the grid is cut to them.
    echo "grid ended with status $status: summarising the finished runs" | tee -a "$LOG"
    "$PY" - "$OUT_DIR" >> "$LOG" 2>&1 <<'EOF'
import glob, json, os, sys
from benchmarks.tables import write_csv
out = sys.argv[1]
rows = []
for path in sorted(glob.glob(os.path.join(out, "runs", "*", "metrics.json"))):
    d = json.load(open(path))
    rows.append({**d["config"], **d["metrics"], "val_auc": d["val_auc"],
                 "seconds_per_step": d["seconds_per_step"]})
write_csv(rows, os.path.join(out, "train_runs_finished.csv"))
print(f"{len(rows)} finished runs in {out}/train_runs_finished.csv")
EOF
fi
(cd "$OUT_DIR/runs" 2>/dev/null && tar czf ../runs.tgz --exclude='*.pt' --exclude='*.npz' .) || true
tail -n 30 "$LOG"
exit "$status"
