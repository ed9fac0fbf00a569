#!/usr/bin/env python3
"""The fused ONNX Runtime graphs the issue compares against: `onnxruntime.transformers.optimizer`
with model type `bert` (what optimum and sentence-transformers' ONNX exports use) over
export_onnx.py's fp32 graph, then ONNX Runtime's dynamic int8 quantization of the fused graph.
Prints which fused operators it made, so a fusion that did not happen is visible.
Usage: python fuse_onnx.py OUT_DIR   (reads OUT_DIR/model_fp32.onnx) -> OUT_DIR/model_fused_fp32.onnx, model_fused_int8.onnx"""
import collections, os, sys

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers import optimizer

out = sys.argv[1]
fp32, fused, fused_int8 = (os.path.join(out, f) for f in ("model_fp32.onnx", "model_fused_fp32.onnx", "model_fused_int8.onnx"))
# all-MiniLM-L6-v2: 12 heads of 32 over a 384-wide hidden state.
# opt_level 0: the Python fusions only (its ORT pre-pass imports torch); the session applies
# ORT's own graph optimizations when it loads the model.
m = optimizer.optimize_model(fp32, model_type="bert", num_heads=12, hidden_size=384, opt_level=0)
m.save_model_to_file(fused)
# The fused ops (Attention, SkipLayerNormalization) are in the com.microsoft domain, which
# shape inference does not type: their inputs are f32.
quantize_dynamic(fused, fused_int8, weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
ops = collections.Counter(n.op_type for n in onnx.load(fused).graph.node)
print(f"wrote {fused} and {fused_int8}; fused graph operators: {dict(ops.most_common())}")
