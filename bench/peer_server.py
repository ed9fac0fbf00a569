#!/usr/bin/env python3
"""The peer service: what a Python team deploys instead of snapembed — FastAPI + uvicorn +
onnxruntime + tokenizers, with the same TEI-style POST /embed.
Usage: python peer_server.py MODEL.onnx TOKENIZER.json PORT [THREADS]"""
import sys
import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from tokenizers import Tokenizer

model, tokenizer_json, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
so = ort.SessionOptions()
so.intra_op_num_threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
tok = Tokenizer.from_file(tokenizer_json)
tok.no_padding()
tok.enable_truncation(256)
app = FastAPI()


class EmbedRequest(BaseModel):
    inputs: str | list[str]


@app.get("/health")
def health():
    return {"status": "healthy"}


@app.post("/embed")
def embed(req: EmbedRequest):
    texts = [req.inputs] if isinstance(req.inputs, str) else req.inputs
    encs = tok.encode_batch([t.strip() for t in texts])
    n = max(len(e.ids) for e in encs)
    ids = np.zeros((len(encs), n), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encs):
        ids[i, :len(e.ids)] = e.ids
        mask[i, :len(e.ids)] = 1
    hs = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
    m = mask[..., None].astype(np.float32)
    v = (hs * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v.tolist()


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
