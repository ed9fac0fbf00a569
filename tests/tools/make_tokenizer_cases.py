#!/usr/bin/env python3
"""Writes tests/data/tokenizer_cases.jsonl: texts and the ids HF `tokenizers` gives them with
sentence-transformers' settings (no padding, truncation at 256). The Rust tokenizer must agree.
Usage: python make_tokenizer_cases.py MODEL_DIR > tests/data/tokenizer_cases.jsonl"""
import json, random, sys
from tokenizers import Tokenizer

model_dir = sys.argv[1]
tok = Tokenizer.from_file(model_dir + "/tokenizer.json")
tok.no_padding()
full = Tokenizer.from_file(model_dir + "/tokenizer.json")
full.no_padding(); full.no_truncation()
tok.enable_truncation(256)

texts = open("/work/shared/reference/test_sentences.txt", encoding="utf-8").read().split("\n")[:-1]
pools = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    " \t\n\r\u00a0\u2003\u3000\u2028\u0085\x1c", "éèêëñüÅßİıﬁœæøÇçÑ", "αβγδΩπσ", "привет мир",
    "مرحبا", "שלום", "नमस्ते", "สวัสดี", "안녕하세요", "こんにちはカタカナ", "東京日本語中文字", "🙂🚀👍🏽❤️‍🔥",
    "\u0301\u0308\u0327", "\x00\x07\x1b\u200b\ufeff\ufffd\u00ad\ue000", "«»“”‘’—–…•·¿¡", "€£¥©®™°±×÷",
]
specials = ["[CLS]", "[SEP]", "[MASK]", "[mask]", "[PAD]", "[UNK]", "[CLS"]
words = "the quick brown fox jumps over lazy dog embedding vector search unbelievable résumé naïve café " \
        "kubernetes postgres rustacean tokenizer antidisestablishmentarianism e-mail test@example.com".split()
rng = random.Random(20261123)
for _ in range(500):
    parts = []
    for _ in range(rng.randint(0, 30)):
        r = rng.random()
        if r < 0.45:
            parts.append(rng.choice(words))
        elif r < 0.9:
            pool = rng.choice(pools)
            parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
        elif r < 0.95:
            parts.append(rng.choice(specials))
        else:
            parts.append(rng.choice("abcdefgh") * rng.choice([99, 100, 101, 150]))
        parts.append(rng.choice([" ", "", "  ", "\n"]))
    texts.append("".join(parts))
texts.append("word " * 300)
texts.append("x" * 100 + " " + "y" * 101)
texts.append("İstanbul ǅemal ﬃ ᾼ ΐ")
for t in texts:
    e = tok.encode(t)
    print(json.dumps({"text": t, "ids": e.ids, "untruncated_len": len(full.encode(t).ids)}, ensure_ascii=False))
