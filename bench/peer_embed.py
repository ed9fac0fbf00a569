#!/usr/bin/env python3
"""The peer process: what a Python service does to embed one text with ONNX Runtime
(import, load tokenizer.json and the ONNX model, tokenize, run, pool, normalize, print).
Usage: python peer_embed.py MODEL.onnx TOKENIZER.json TEXT [THREADS]"""
import json, sys
import ort_peer

model, tokenizer_json, text = sys.argv[1:4]
sess, tok = ort_peer.load(model, tokenizer_json, int(sys.argv[4]) if len(sys.argv) > 4 else 1)
print(json.dumps(ort_peer.embed(sess, tok, [text])[0].tolist()))
