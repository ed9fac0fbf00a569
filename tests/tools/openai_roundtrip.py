#!/usr/bin/env python3
"""The OpenAI Python client, unchanged, against a running snapembed: base_url is all it needs.
Usage: python openai_roundtrip.py http://127.0.0.1:PORT"""
import json, math, sys, urllib.request
from openai import OpenAI

base = sys.argv[1]
client = OpenAI(base_url=base + "/v1", api_key="not-needed")
texts = ["hello world", "A man is playing a guitar."]
# The client asks for base64 by default and decodes it; ask for floats too.
r = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
f = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float")
assert [d.index for d in r.data] == [0, 1], r
assert r.model == "all-MiniLM-L6-v2" and r.usage.prompt_tokens == r.usage.total_tokens > 0
req = urllib.request.Request(base + "/embed", data=json.dumps({"inputs": texts}).encode(),
                             headers={"Content-Type": "application/json"})
tei = json.load(urllib.request.urlopen(req))
for a, b, c in zip(r.data, f.data, tei):
    assert len(a.embedding) == len(b.embedding) == len(c) == 384
    assert max(abs(x - y) for x, y in zip(a.embedding, c)) < 1e-6
    assert max(abs(x - y) for x, y in zip(b.embedding, c)) < 1e-6
    assert abs(math.sqrt(sum(x * x for x in a.embedding)) - 1) < 1e-4
print(f"openai client round trip: OK ({len(r.data)} vectors, {r.usage.prompt_tokens} tokens)")
