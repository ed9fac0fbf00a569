#!/usr/bin/env python3
"""The peer service: what a Python team deploys instead of snapembed — FastAPI + uvicorn +
onnxruntime + tokenizers, with the same TEI-style POST /embed.
Usage: python peer_server.py MODEL.onnx TOKENIZER.json PORT [THREADS]"""
import sys
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
import ort_peer

model, tokenizer_json, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
sess, tok = ort_peer.load(model, tokenizer_json, int(sys.argv[4]) if len(sys.argv) > 4 else 1)
app = FastAPI()


class EmbedRequest(BaseModel):
    inputs: str | list[str]


@app.get("/health")
def health():
    return {"status": "healthy"}


@app.post("/embed")
def embed(req: EmbedRequest):
    texts = [req.inputs] if isinstance(req.inputs, str) else req.inputs
    return ort_peer.embed(sess, tok, texts).tolist()


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
