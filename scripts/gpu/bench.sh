#!/usr/bin/env bash
# Run on a CUDA machine that has PyTorch but nothing can be fetched on (with .gpu/site.tar.xz from prepare.sh
# beside it): the GPU figures the benchmarks ask for, in one go, each under its own time limit, every stage's output
# and log written to $OUT (default out/gpu). Stages: train (the shipped masked recipe on the GPU, for its speed),
# families (the DiffusionGemma-shaped model at realistic size streamed at batch 1; the masked family against the
# AR twin at batch 1 and 32; the prefix cache at 2,048 tokens), sampler (speedup_b32 on a GPU), book (chapters of
# 2,000 tokens, at the setting that qualifies in bench sampler on the CPU), parallelism (a step's cost against a
# token of the twin on the GPU: the tokens per step the >= 4x target needs there). The limits add up to 525 s, so
# the whole run fits one 10-minute call; `bench.sh book` runs one stage. DEVICE=cpu makes a (slow) smoke run on a
# machine without a GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT" /tmp/airquill-gpu
# the bundle holds CPython 3.12 builds: another Python uses what it has installed
if [ -f .gpu/site.tar.xz ] && python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    tar -C /tmp/airquill-gpu -xJf .gpu/site.tar.xz
    export PYTHONPATH=/tmp/airquill-gpu/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-build-isolation --no-index --target /tmp/airquill-gpu/app . \
    > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
export PYTHONPATH=/tmp/airquill-gpu/app${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"

stage() {  # name, time limit (s), then the airquill command; its output goes to $OUT/name.out, its log to .log
    local name=$1 limit=$2
    shift 2
    if [ -n "${ONLY:-}" ] && [ "$ONLY" != "$name" ]; then return; fi
    echo "== $name (at most ${limit}s)"
    local started=$SECONDS
    timeout "$limit" python3 -m airquill "$@" --device "${DEVICE:-cuda}" > "$OUT/$name.out" 2> "$OUT/$name.log"
    echo "   exit $? after $((SECONDS - started))s"
    tail -c 300 "$OUT/$name.out"
    tr '\r' '\n' < "$OUT/$name.log" | grep -v '^$' | tail -1  # a progress bar's last state (tokens/s)
}

ONLY=${1:-}
# the shipped masked recipe on the GPU, stopped at its limit: its speed, for planning a larger run
stage train 45 train assets/corpus/kjv.txt.gz --family masked --out /tmp/airquill-gpu/train --tokens 4500000 \
    --seed 1
stage families 200 bench families --json --families masked --quick --batch 1 32 --length 128 --long-length 2048 \
    --shaped realistic
stage sampler 90 bench sampler --json --quick --batch 1 32 --length 256
stage book 150 bench book --json --chapters 64 --length 2000 --schedule threshold --threshold 0.5 \
    --parallel 16 64
stage parallelism 40 bench parallelism --json --samples 4 --thresholds 0.5 0.3 --blocks 16 32
