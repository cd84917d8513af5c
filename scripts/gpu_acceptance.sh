#!/usr/bin/env bash
# The GPU checks of issue 14 as one prepared run (about 10 minutes on an H200), from the repo root:
#
#   bash scripts/prepare_device_carry.sh $MEDKIT_REAL_DATA/dsb2018_nuclei     # here: wheels + flat DSB2018 (~25 MB)
#   # on the GPU machine (device tool: carry [".whl", ".device"]):
#   bash scripts/gpu_acceptance.sh .device/dsb_flat "$OUT" 1    # about 5 minutes: throughput, 50 epochs, costs
#   bash scripts/gpu_acceptance.sh .device/dsb_flat "$OUT" 2    # about 9 minutes: 5-minute recipe, torchrun, chains
#
# (two calls: the device tool runs 10 minutes a command at most)
# Writes into the output folder: summary.json (every figure, one line per check), log.txt (all output),
# bench_b4.json, bench_b16.json, tests.txt. Each step has its own time limit; a failed step is recorded and the
# next one runs.
set -uo pipefail
DSB=${1:?usage: gpu_acceptance.sh <flat DSB2018 folder> <output folder> 1|2}
OUT=${2:?usage: gpu_acceptance.sh <flat DSB2018 folder> <output folder> 1|2}
PART=${3:?usage: gpu_acceptance.sh <flat DSB2018 folder> <output folder> 1|2}
mkdir -p "$OUT"
RUNS=$(mktemp -d /tmp/medkit_gpu.XXXX)
export PYTHONUNBUFFERED=1
if ! python3 -c "import monai, ignite" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
exec > >(tee -a "$OUT/log.txt") 2>&1

record() {  # record <name> <start> <end> <rc> [json fragment]: one line of summary.json
    python3 - "$@" >>"$OUT/summary.json" <<'PY'
import json, sys
name, start, end, rc = sys.argv[1:5]
extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] else {}
print(json.dumps({"check": name, "seconds": round(float(end) - float(start), 1), "rc": int(rc), **extra}))
PY
}
step() {  # step <name> <timeout s> <command...>: runs it, records wall time and exit code
    local name=$1 limit=$2; shift 2
    echo "=== $name: $*"
    local t0=$EPOCHREALTIME
    timeout "$limit" "$@"; local rc=$?
    record "$name" "$t0" "$EPOCHREALTIME" "$rc"
    return $rc
}
dice() { python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['metrics']; print(json.dumps({'test_mean_dice': m.get('val_mean_dice')}))" "$1"; }
TRAIN=bundles/nuclei_seg/configs/train.json
EVAL="['bundles/nuclei_seg/configs/train.json','bundles/nuclei_seg/configs/evaluate.json']"
DDP="['bundles/nuclei_seg/configs/train.json','bundles/nuclei_seg/configs/multi_gpu_train.json']"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, monai; print('torch', torch.__version__, 'monai', monai.__version__, 'cuda', torch.cuda.is_available())"

if [ "$PART" = 1 ]; then
# 1. throughput against compute only, batch 4 and 16, with SM utilisation (targets 0.8x and 0.9x)
step bench_b4 150 python3 scripts/bench_nuclei.py --data "$DSB" --iterations 60 --warmup 10 --repeats 2 > "$OUT/bench_b4.json"
step bench_b16 150 python3 scripts/bench_nuclei.py --data "$DSB" --iterations 60 --warmup 10 --repeats 2 --set batch_size=16 > "$OUT/bench_b16.json"

# 2. the default 50-epoch run on real DSB2018 (target 25 s or less), then its test Dice
step default_50_epochs 120 python3 -m monai.bundle run --config_file "$TRAIN" --dataset_dir "$DSB" --output_dir "$RUNS/default"
step default_evaluate 90 python3 -m monai.bundle run --config_file "$EVAL" --output_dir "$RUNS/default" \
    && record default_test_dice 0 0 0 "$(dice "$RUNS/default/eval/metrics.json")"

# the cost of --deterministic true and the gain of --compile true on the same 50 epochs
step deterministic_50_epochs 150 python3 -m monai.bundle run --config_file "$TRAIN" --dataset_dir "$DSB" \
    --output_dir "$RUNS/deterministic" --deterministic true
step compile_50_epochs 180 python3 -m monai.bundle run --config_file "$TRAIN" --dataset_dir "$DSB" \
    --output_dir "$RUNS/compiled" --compile true
else
# 3. the GPU recipe within 5 minutes (target: mean test Dice 0.91 or more on the bundle's own test split)
step recipe_train 330 python3 -m monai.bundle run --config_file "$TRAIN" --dataset_dir "$DSB" --output_dir "$RUNS/recipe" \
    --batch_size 16 --epochs 400 --max_minutes 4 --learning_rate 0.002
step recipe_evaluate 90 python3 -m monai.bundle run --config_file "$EVAL" --output_dir "$RUNS/recipe" \
    && record recipe_test_dice 0 0 0 "$(dice "$RUNS/recipe/eval/metrics.json")"

# 4. torchrun with nccl on one GPU: train 2 epochs, then resume to 3
step torchrun_nccl_train 120 torchrun --standalone --nproc_per_node=1 -m monai.bundle run --config_file "$DDP" \
    --dataset_dir "$DSB" --output_dir "$RUNS/ddp" --epochs 2
step torchrun_nccl_resume 120 torchrun --standalone --nproc_per_node=1 -m monai.bundle run --config_file "$DDP" \
    --dataset_dir "$DSB" --output_dir "$RUNS/ddp" --epochs 3 --resume true

# 5. every bundle's train -> evaluate -> inference chain on CUDA (the test suite's chains, on the GPU)
MEDKIT_TEST_CUDA=1 step bundle_chains_on_cuda 240 python3 -m pytest tests/bundles -q -x -n 8 -p no:cacheprovider \
    -k "train or evaluate or inference" > "$OUT/tests.txt" 2>&1
tail -n 5 "$OUT/tests.txt"
fi
cat "$OUT/summary.json"
