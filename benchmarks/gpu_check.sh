#!/usr/bin/env bash
# Sections (a)-(c) and (h) of the report on a CUDA GPU, within 10 minutes.
#
#   bash benchmarks/gpu_check.sh            # results in $OUT (if set) or ./gpu_results
#   QUICK=1 bash benchmarks/gpu_check.sh    # the reduced sizes of `sparselp report --quick`
#
# What it does, in order (each step has its own time limit; the whole stays under 8 min):
#   1. records the machine (nvidia-smi, torch and CUDA versions) and checks that CUDA works;
#   2. runs the CUDA smoke test of the solver, the AUC loss and the ratio losses (closed
#      form against the solver path; float32 and float64 for the solver, one
#      forward + backward, compared with the CPU result);
#   3. runs the benchmarks of sections (a) LP-layer memory, (b) the ResNet-18 study
#      (torch.cuda.max_memory_allocated per configuration, each in a fresh process) and
#      (c) runtime against the blackbox baseline and cvxpylayers, and (h) the engine:
#      batches of 1 to 1,024 box LPs through the layer on the GPU (is the time nearly flat
#      in the batch?) and the coupled losses at 4,096 and 65,536 scores (time, device
#      memory), each with its own limit;
#   4. assembles $OUT_DIR/report/index.html from their CSVs (`sparselp report --from-csv`).
# Limits: 30 + 60 + 130 + 190 + 50 + 60 + 60 + 20 s = 10 minutes at most. Every step's log
# is kept in $OUT_DIR, and a failing step does not stop the others.
set -euo pipefail

source "$(dirname "$0")/gpu_env.sh" gpu_results
QUICK_FLAG=""
if [ "${QUICK:-0}" = "1" ]; then
    QUICK_FLAG="--quick"
fi
START=$(date +%s)
log() { echo "[gpu_check $(( $(date +%s) - START ))s] $*" | tee -a "$OUT_DIR/gpu_check.log"; }

log "machine"
(nvidia-smi || echo "nvidia-smi not available") > "$OUT_DIR/nvidia-smi.txt" 2>&1
timeout 30 "$PY" - > "$OUT_DIR/versions.txt" 2>&1 <<'EOF' || { cat "$OUT_DIR/versions.txt"; exit 2; }
import sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)
if not torch.cuda.is_available():
    sys.exit("CUDA is not available: this script needs a GPU")
print("device", torch.cuda.get_device_name(0))
EOF
cat "$OUT_DIR/versions.txt"

log "CUDA smoke test of the solver and the AUC loss"
timeout 60 "$PY" - > "$OUT_DIR/smoke.txt" 2>&1 <<'EOF' || log "smoke test FAILED (see smoke.txt)"
import torch
from sparselp.formulations import binary_auc
from sparselp.solver import solve

for dtype in (torch.float32, torch.float64):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(64, generator=g, dtype=dtype)
    y = (torch.arange(64) % 2).long()
    cpu = solve(binary_auc(s, y))
    gpu = solve(binary_auc(s.cuda(), y.cuda()))
    err = abs(float(cpu.fun) - float(gpu.fun)) / max(1.0, abs(float(cpu.fun)))
    print(dtype, "status", gpu.status, "cpu", float(cpu.fun), "cuda", float(gpu.fun), "rel", err)
    assert err < (1e-4 if dtype == torch.float32 else 1e-8), err
try:
    from sparselp.losses import AUCLoss
except ImportError as exc:
    print("AUCLoss not available:", exc)
else:
    s = torch.randn(200, device="cuda", requires_grad=True)
    y = (torch.arange(200, device="cuda") % 2).long()
    loss = AUCLoss()(s, y)
    loss.backward()
    print("AUCLoss on cuda", float(loss), "grad norm", float(s.grad.norm()))
    # the ratio losses: the certified closed form against the solver's path, on CUDA
    from sparselp.losses import FScoreLoss, PrecisionAtRecallLoss
    for cls in (FScoreLoss, PrecisionAtRecallLoss):
        sc = torch.randn(4096, device="cuda", dtype=torch.float64, requires_grad=True)
        yc = (torch.arange(4096, device="cuda") % 5 == 0).long()
        fast, slow = cls(), cls(closed_form=False)
        v0 = fast(sc, yc)
        v0.backward()
        g0, sc.grad = sc.grad.clone(), None
        v1 = slow(sc, yc)
        v1.backward()
        diff = float((g0 - sc.grad).abs().max())
        print(cls.__name__, "cuda", fast.last_path, float(v0), slow.last_path, float(v1),
              "grad diff", diff)
        assert fast.last_path == "closed-form" and abs(float(v0) - float(v1)) < 1e-8
        assert diff < 1e-8
print("smoke test passed")
EOF
cat "$OUT_DIR/smoke.txt"

# Each benchmark writes its CSV under the name the report reads back with --from-csv.
R="$OUT_DIR/report"
mkdir -p "$R"
run_step() {  # run_step LIMIT_SECONDS NAME COMMAND...: a failing step does not stop the rest
    local limit=$1 name=$2
    shift 2
    log "$name (limit ${limit}s)"
    set +e
    timeout "$limit" "$@" > "$OUT_DIR/$name.log" 2>&1
    local rc=$?
    set -e
    tail -n 25 "$OUT_DIR/$name.log"
    if [ "$rc" != "0" ]; then
        log "$name exited with code $rc (124: time limit)"
        FAILED="$FAILED $name"
    fi
}
FAILED=""

if [ -n "$QUICK_FLAG" ]; then
    run_step 120 memory_lp "$PY" -m benchmarks.memory_lp --quick --device cuda \
        --out "$R/memory_lp.csv"
    run_step 150 resnet "$PY" -m benchmarks.resnet --quick --device cuda \
        --out "$R/resnet.csv" --timing-out "$R/resnet_timing.csv"
    run_step 60 runtime "$PY" -m benchmarks.runtime --quick --device cuda \
        --out "$R/runtime.csv"
    run_step 60 batched_lp "$PY" -m benchmarks.batched_lp --quick --device cuda \
        --methods ours,highs --out "$R/batched_lp.csv"
    run_step 60 loss_scaling "$PY" -m benchmarks.loss_scaling --quick --device cuda \
        --losses fscore,precision-at-recall --out "$R/loss_scaling.csv"
else
    # (a) 64 to 1e7 pairs, both balances; the dense port up to its 6 GB cap.
    run_step 130 memory_lp "$PY" -m benchmarks.memory_lp --device cuda \
        --sizes 64,200,2000,6325 --timeout 60 --dense-mem-cap 6e9 --out "$R/memory_lp.csv"
    # (b) batch 16 to 400 at 32x32 and 96x96, one fresh process per configuration.
    run_step 190 resnet "$PY" -m benchmarks.resnet --device cuda --batches 16 64 200 400 \
        --sizes 32 96 --timeout 60 --out "$R/resnet.csv" --timing-out "$R/resnet_timing.csv"
    # (c) ours on the GPU; HiGHS and cvxpylayers on the CPU, where they run.
    run_step 50 runtime "$PY" -m benchmarks.runtime --device cuda --out "$R/runtime.csv"
    # (h) ours on the GPU (HiGHS gives each element's reference objective on the CPU).
    run_step 60 batched_lp "$PY" -m benchmarks.batched_lp --device cuda --methods ours \
        --batches 1,32,1024 --out "$R/batched_lp.csv"
    run_step 60 loss_scaling "$PY" -m benchmarks.loss_scaling --device cuda \
        --losses fscore,precision-at-recall --batches 4096,65536 --dtypes float32 \
        --timeout 25 --out "$R/loss_scaling.csv"
fi

log "assembling the report from the CSVs"
set +e
timeout 20 "$PY" -m benchmarks.cli report --sections abch --device cuda $QUICK_FLAG \
    --from-csv "$R" --out "$R" > "$OUT_DIR/report.log" 2>&1
RC=$?
set -e
tail -n 5 "$OUT_DIR/report.log"
log "done in $(( $(date +%s) - START ))s: $R/index.html${FAILED:+; steps that failed:$FAILED}"
if [ -n "$FAILED" ] && [ "$RC" = "0" ]; then
    RC=1
fi
exit "$RC"
