#!/usr/bin/env bash
# The GPU measurements in one command, for a machine lent for minutes: the CUDA tests, the
# training benchmark, and the `fast` recipe on the full CIFAR-10 (seeds, a run 4x longer for the
# plateau, shorter runs for the time to 90%, and an ablation that removes one trick at a time).
#
#   benchmarks/gpu_suite.sh CIFAR10_JPEG_TAR OUT_DIR [STAGE...]
#
# Stages (all, in this order, when none is named): accuracy (tests, plateau, shorter runs and
# accuracy ablations, side by side: nothing in it is timed), seeds (the fast recipe over 5 seeds,
# alone on the GPU), bench (benchmarks/bench_train.py), speed (the speed tricks removed, alone).
# Each stage has its own time limit and the suite goes on after a failure; everything lands in
# OUT_DIR as JSON and logs, summed up by benchmarks/gpu_report.py.
#
# SUITE_TINY=1 rehearses the whole suite on the CPU in a few minutes (tiny runs; the numbers mean
# nothing). Uses the python3 on PATH (or $PYTHON) and this checkout's src/, installing nothing.
set -uo pipefail

tar_file=$(realpath "$1")
out=$(realpath -m "$2")
shift 2
stages=("${@:-accuracy seeds bench speed}")
read -r -a stages <<<"${stages[*]}"
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
work=${SUITE_WORK:-/tmp/reslab-suite}
export RESLAB_DATA="$work/reslab-data"
mkdir -p "$work/runs" "$RESLAB_DATA"

if [[ ${SUITE_TINY:-0} == 1 ]]; then
    device=cpu precision=bf16 fast=(--epochs 1 --max-steps 4 --batch-size 64 --no-compile)
    seeds=(0 1) plateau_epochs=2 short_epochs=(1) limit=300 runs_limit=300
    bench=(--steps 2 --warmup 1 --workers 2 --batch-sizes 32) imagenet_batch=2 compile=()
    tests=(tests/train/test_cuda.py tests/data/test_loader.py)
else
    device=cuda precision=bf16 fast=(--compile)
    seeds=(0 1 2 3 4) plateau_epochs=40 short_epochs=(5 15 20) limit=150 runs_limit=200
    bench=(--steps 100 --warmup 25 --batch-sizes 128) imagenet_batch=256 compile=(--compile)
    tests=(tests)
fi

log() { echo "[$(date +%T)] $*" | tee -a "$out/suite.log"; }
train() { # NAME FLAG...: one `reslab train --recipe fast` run into $work/runs/NAME
    local name=$1 start
    shift
    start=$(date +%s.%N)
    "$py" -m reslab train --recipe fast --dataset "folder:$data" --device "$device" \
        --precision "$precision" "${fast[@]}" --out "$work/runs/$name" --force "$@" \
        >"$work/runs/$name.log" 2>&1 || log "run $name failed: $(tail -n 3 "$work/runs/$name.log")"
    echo "$start $(date +%s.%N)" >"$work/runs/$name.clock" # the command's wall time
}
keep_runs() { # copy the summaries and metrics of the runs under $work/runs into one JSON file
    "$py" - "$work/runs" "$out/runs.json" <<'EOF'
import json, sys
from pathlib import Path
from reslab.run.directory import RunDir
runs = {}
for d in sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir()):
    run, entry = RunDir(d), {}
    for name in ("summary", "config"):
        if getattr(run, name).is_file():
            entry[name] = getattr(run, name).read_text()
    entry["metrics"] = run.read_metrics()
    log, clock = d.parent / f"{d.name}.log", d.parent / f"{d.name}.clock"
    entry["log_tail"] = log.read_text()[-1500:] if log.is_file() else ""
    if clock.is_file():
        start, end = map(float, clock.read_text().split())
        entry["command_s"] = end - start
    runs[d.name] = entry
Path(sys.argv[2]).write_text(json.dumps(runs, indent=1))
EOF
}

log "stages: ${stages[*]}; device $device"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
  "$py" -c "import torch, torchvision, platform, os; print(platform.python_version(), torch.__version__, torchvision.__version__, torch.cuda.is_available(), os.cpu_count())"
} >"$out/machine.txt" 2>&1

data="$work/cifar10"
if [[ ! -d $data ]]; then
    tar xzf "$tar_file" -C "$work" || log "could not extract $tar_file"
fi
# Decode once into the cache, so that no timed run pays for it.
"$py" -c "from reslab.data import load_dataset; d = load_dataset('folder:$data'); print(len(d.train), len(d.test))" \
    >>"$out/suite.log" 2>&1 || log "decoding $data failed"

for stage in "${stages[@]}"; do
    log "stage $stage"
    case $stage in
    accuracy) # not timed: the CUDA tests, beside the runs whose accuracy alone is read
        stage_start=$SECONDS
        timeout "$limit" "$py" -m pytest -m gpu -p no:cacheprovider -q -rs "${tests[@]}" \
            --junit-xml="$out/tests.xml" >"$out/tests.log" 2>&1 &
        tests_pid=$!
        (
            train plateau-s0 --epochs "$plateau_epochs" &
            for e in "${short_epochs[@]}"; do train "short-e$e-s0" --epochs "$e" & done
            for s in 0 1; do
                train "no-ema-s$s" --seed "$s" --ema 0 &
                train "no-tta-s$s" --seed "$s" --no-tta &
                train "no-smoothing-s$s" --seed "$s" --label-smoothing 0 &
                train "no-nesterov-s$s" --seed "$s" --optimizer sgd &
                train "decay-all-s$s" --seed "$s" --decay-norm-bias &
            done
            wait
        ) &
        runs_pid=$!
        wait "$tests_pid" || log "tests: exit $? (see tests.log)"
        left=$((${RUNS_LIMIT:-$runs_limit} - (SECONDS - stage_start)))
        if ((left <= 0)) || ! timeout "$left" tail --pid="$runs_pid" -f /dev/null; then
            log "accuracy runs: out of time; stopping those still running"
            pkill -9 -f -- "-m reslab train --recipe fast" || true
            sleep 2
        fi
        keep_runs
        ;;
    seeds) # timed, alone on the GPU
        for s in "${seeds[@]}"; do train "fast-s$s" --seed "$s" && keep_runs; done
        ;;
    bench)
        args=(--data "folder:$data" --device "$device" --precision "$precision" "${bench[@]}")
        timeout "$limit" "$py" benchmarks/bench_train.py --models resnet20 "${compile[@]}" "${args[@]}" \
            --json "$out/bench_resnet20.json" >>"$out/bench.log" 2>&1 || log "bench resnet20: exit $?"
        timeout "$limit" "$py" benchmarks/bench_train.py --models --imagenet resnet50 "${compile[@]}" \
            --imagenet-batch "$imagenet_batch" "${args[@]}" \
            --json "$out/bench_imagenet.json" >>"$out/bench.log" 2>&1 || log "bench resnet50: exit $?"
        timeout "$limit" "$py" benchmarks/bench_train.py --models resnet56 resnet18_cifar \
            --imagenet resnet18 --imagenet-batch "$imagenet_batch" "${args[@]}" \
            --json "$out/bench_more.json" >>"$out/bench.log" 2>&1 || log "bench more: exit $?"
        ;;
    speed) # timed, alone: each speed trick removed in turn
        train eager-s0 --no-compile && keep_runs
        train fp32-s0 --precision fp32 && keep_runs
        train contiguous-s0 --no-channels-last && keep_runs
        ;;
    *) log "unknown stage $stage" ;;
    esac
done
"$py" benchmarks/gpu_report.py "$out" --json "$out/report.json" >"$out/report.md" \
    2>>"$out/suite.log" || log "report failed"
log "done"
