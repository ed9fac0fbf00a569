"""ONNX Runtime as the peers use it: one session and tokenizer, sentence-transformers' pipeline
(strip, 256 word pieces, mean pooling over the mask, L2). Shared by peer_embed.py (cold start),
peer_bench.py (engine) and peer_server.py (HTTP)."""
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def load(model, tokenizer_json, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(tokenizer_json)
    tok.no_padding()
    tok.enable_truncation(256)
    return sess, tok


def embed(sess, tok, texts):
    """Unit vectors [len(texts), dim] for one padded batch."""
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
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
