#!/usr/bin/env python3
"""The peer process: what a Python service does to embed one text with ONNX Runtime
(import, load tokenizer.json and the ONNX model, tokenize, run, mean-pool, L2-normalize, print).
Usage: python peer_embed.py MODEL.onnx TOKENIZER.json TEXT [THREADS]"""
import json, sys
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

model, tokenizer_json, text = sys.argv[1:4]
so = ort.SessionOptions()
so.intra_op_num_threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
tok = Tokenizer.from_file(tokenizer_json)
tok.no_padding()
tok.enable_truncation(256)
enc = tok.encode(text.strip())
ids = np.array([enc.ids], dtype=np.int64)
mask = np.ones_like(ids)
hs = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
v = hs[0].mean(0)
print(json.dumps((v / max(np.linalg.norm(v), 1e-12)).tolist()))
