#!/usr/bin/env bash
# What users would otherwise run: the reference model in PyTorch (bench/torch_reference.py) next to
# ours (npm run bench, the same metrics), back to back on this machine, as JSON lines on stdout.
# Installs torch from PyPI into $T1_TORCH_VENV (default ~/.cache/t1/torch-venv) on first use: the
# PyPI wheel brings NVIDIA's CUDA libraries too, about 3 GB; only the CPU is used. Not run by npm test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${T1_TORCH_VENV:-$HOME/.cache/t1/torch-venv}
version=${T1_TORCH_VERSION:-2.15.0}
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  printf '[torch] installing torch==%s into %s\n' "$version" "$venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "torch==$version" >&2
fi
"$venv/bin/python" -W ignore "$root/bench/torch_reference.py"
cd "$root" && node bin/t1.js bench --only sft_tokens_per_s,sample_tokens_per_s,sample_tokens_per_s_b256,sample_tokens_per_s_b256_processes2,kv_cache_speedup
