#!/usr/bin/env python3
"""Writes an fp32 ONNX graph of a sentence-transformers BERT (last_hidden_state output) from its
model.safetensors, with the `onnx` package only (no torch), and ONNX Runtime's dynamic int8
quantization of it (`quantize_dynamic`, what sentence-transformers recommends for CPU).
Usage: python export_onnx.py MODEL_DIR OUT_DIR [--fp32-only]   -> OUT_DIR/model_fp32.onnx, OUT_DIR/model_int8.onnx"""
import json, math, os, sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

model_dir, out_dir = sys.argv[1], sys.argv[2]
os.makedirs(out_dir, exist_ok=True)
cfg = json.load(open(os.path.join(model_dir, "config.json")))
w = {k.removeprefix("bert."): v for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
H, NH, L, EPS = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["layer_norm_eps"]
DH = H // NH
nodes, inits = [], []


def const(name, arr):
    inits.append(numpy_helper.from_array(np.asarray(arr), name))
    return name


def node(op, inputs, name, **attrs):
    nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
    return name


def linear(x, prefix, out):
    wt = const(prefix + ".weight_t", np.ascontiguousarray(w[prefix + ".weight"].T))
    return node("Add", [node("MatMul", [x, wt], out + "_mm"), const(prefix + ".bias", w[prefix + ".bias"])], out)


def layer_norm(x, prefix, out):
    return node("LayerNormalization", [x, const(prefix + ".weight", w[prefix + ".weight"]),
                                       const(prefix + ".bias", w[prefix + ".bias"])], out, axis=-1, epsilon=EPS)


i64 = lambda v: np.array(v, dtype=np.int64)
seq = node("Gather", [node("Shape", ["input_ids"], "ids_shape"), const("one_i", i64(1))], "seq_len", axis=0)
pos = node("Slice", [const("embeddings.position_embeddings.weight", w["embeddings.position_embeddings.weight"]),
                     const("zero_1d", i64([0])), node("Unsqueeze", [seq, const("axes0", i64([0]))], "seq_1d"),
                     const("axis0_1d", i64([0]))], "pos_emb")
x = node("Add", [node("Gather", [const("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"]), "input_ids"], "word_emb"),
                 node("Gather", [const("embeddings.token_type_embeddings.weight", w["embeddings.token_type_embeddings.weight"]), "token_type_ids"], "type_emb")], "emb_sum0")
x = layer_norm(node("Add", [x, pos], "emb_sum"), "embeddings.LayerNorm", "emb_out")
maskf = node("Cast", [node("Unsqueeze", ["attention_mask", const("axes12", i64([1, 2]))], "mask4")], "mask4f", to=TensorProto.FLOAT)
bias = node("Mul", [node("Sub", [const("one_f", np.float32(1.0)), maskf], "inv_mask"), const("neg", np.float32(np.finfo(np.float32).min))], "mask_bias")
heads = const("heads_shape", i64([0, 0, NH, DH]))
merged = const("merged_shape", i64([0, 0, H]))
for l in range(L):
    p = f"encoder.layer.{l}."
    def split(name, perm):
        r = node("Reshape", [linear(x, p + f"attention.self.{name}", f"l{l}_{name}"), heads], f"l{l}_{name}_r")
        return node("Transpose", [r], f"l{l}_{name}_t", perm=perm)
    q, k, v = split("query", [0, 2, 1, 3]), split("key", [0, 2, 3, 1]), split("value", [0, 2, 1, 3])
    s = node("Add", [node("Mul", [node("MatMul", [q, k], f"l{l}_qk"), const(f"l{l}_scale", np.float32(1 / math.sqrt(DH)))], f"l{l}_qks"), bias], f"l{l}_scores")
    a = node("Softmax", [s], f"l{l}_probs", axis=-1)
    ctx = node("Reshape", [node("Transpose", [node("MatMul", [a, v], f"l{l}_ctx")], f"l{l}_ctx_t", perm=[0, 2, 1, 3]), merged], f"l{l}_ctx_m")
    x = layer_norm(node("Add", [linear(ctx, p + "attention.output.dense", f"l{l}_ao"), x], f"l{l}_ares"), p + "attention.output.LayerNorm", f"l{l}_attn_out")
    h = linear(x, p + "intermediate.dense", f"l{l}_inter")
    g = node("Mul", [node("Mul", [h, const(f"l{l}_half", np.float32(0.5))], f"l{l}_gh"),
                     node("Add", [node("Erf", [node("Mul", [h, const(f"l{l}_rsqrt2", np.float32(1 / math.sqrt(2)))], f"l{l}_gs")], f"l{l}_erf"), const(f"l{l}_one", np.float32(1.0))], f"l{l}_g1")], f"l{l}_gelu")
    x = layer_norm(node("Add", [linear(g, p + "output.dense", f"l{l}_out"), x], f"l{l}_ores"), p + "output.LayerNorm", f"l{l}_ffn_out" if l < L - 1 else "last_hidden_state")

ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in ("input_ids", "attention_mask", "token_type_ids")]
outs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", H])]
graph = helper.make_graph(nodes, "bert", ins, outs, inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="snapembed-bench")
onnx.checker.check_model(model)
fp32 = os.path.join(out_dir, "model_fp32.onnx")
onnx.save(model, fp32)
if "--fp32-only" in sys.argv:
    sys.exit(print(f"wrote {fp32}"))
from onnxruntime.quantization import QuantType, quantize_dynamic
quantize_dynamic(fp32, os.path.join(out_dir, "model_int8.onnx"), weight_type=QuantType.QInt8, per_channel=True)
print(f"wrote {fp32} and model_int8.onnx to {out_dir}")
