#!/usr/bin/env python3
"""Writes tests/data/golden_mixed.json: fp32 vectors from the verified numpy reference
(../shared/reference/minilm_ref.py, which matches sentence-transformers to 1 - 1e-12) for a mix
of lengths, including paragraphs past 256 word pieces.
Usage: OPENBLAS_NUM_THREADS=1 python make_goldens.py MODEL_DIR > tests/data/golden_mixed.json"""
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "shared", "reference"))
sys.path.insert(0, os.path.join(here, "..", "..", "bench"))
from minilm_ref import MiniLM
from mix import mix

texts = mix(48, seed=7)
texts += [" ".join(mix(40, seed=9)), "short", "a " * 300]
m = MiniLM(sys.argv[1])
emb = m.embed(texts, batch_size=1)
lens = [len(e.ids) for e in m.tokenize(texts)]
items = [{"text": t, "tokens": n, "embedding": [float(f"{x:.7g}") for x in v]} for t, n, v in zip(texts, lens, emb)]
json.dump({"made_with": "shared/reference/minilm_ref.py fp32, batch_size=1", "items": items}, sys.stdout)
