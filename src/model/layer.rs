//! `BertLayer` (post-LayerNorm): self-attention with a fused QKV projection, output projection +
//! residual + LayerNorm, then the GELU feed-forward + residual + LayerNorm.

use super::{Dims, LinearIds, ModelError, Norm, Scratch};
use crate::kernels::{math, Epilogue, Isa};
use crate::snapshot::{PlanStep, Snapshot};

pub struct EncoderLayer {
    qkv: LinearIds,
    attention_output: LinearIds,
    attention_norm: Norm,
    intermediate: LinearIds,
    output: LinearIds,
    output_norm: Norm,
}

impl EncoderLayer {
    pub(super) fn load(snap: &Snapshot, d: &Dims, step: &PlanStep) -> Result<EncoderLayer, ModelError> {
        let PlanStep::EncoderLayer { qkv, attention_output, attention_norm, intermediate, output, output_norm } = step
        else {
            return Err(ModelError::Plan("expected an EncoderLayer step".into()));
        };
        let (h, i) = (d.hidden, d.intermediate);
        Ok(EncoderLayer {
            qkv: LinearIds::load(snap, qkv, h, 3 * h)?,
            attention_output: LinearIds::load(snap, attention_output, h, h)?,
            attention_norm: Norm::load(snap, attention_norm, h)?,
            intermediate: LinearIds::load(snap, intermediate, h, i)?,
            output: LinearIds::load(snap, output, i, h)?,
            output_norm: Norm::load(snap, output_norm, h)?,
        })
    }

    /// `scratch.x` holds the layer's input on entry and its output on return.
    pub(super) fn forward(&self, snap: &Snapshot, isa: Isa, d: &Dims, seqs: &[&[u32]], s: &mut Scratch) {
        let m = s.x.len() / d.hidden;
        self.qkv.bind(snap).forward(isa, &s.x, m, Epilogue::None, &mut s.qkv);
        attention(d, seqs, &s.qkv, &mut s.ctx, &mut s.scores, &mut s.keys_t);
        self.attention_output.bind(snap).forward(isa, &s.ctx, m, Epilogue::Residual(&s.x), &mut s.h);
        self.attention_norm.apply(snap, &mut s.h, d.eps);
        self.intermediate.bind(snap).forward(isa, &s.h, m, Epilogue::Gelu, &mut s.ffn);
        self.output.bind(snap).forward(isa, &s.ffn, m, Epilogue::Residual(&s.h), &mut s.x);
        self.output_norm.apply(snap, &mut s.x, d.eps);
    }
}

/// Keys scored at once: their partial dot products stay in registers across the head dimension.
/// (`mul_add` is a single FMA on the x86-64-v3 and aarch64 builds; Rust never fuses `a += b * c`.)
const KEY_BLOCK: usize = 16;

/// Scaled dot-product attention per sequence and head. `qkv` rows are `[q | k | v]`; no mask is
/// needed because every sequence attends to exactly its own tokens.
fn attention(d: &Dims, seqs: &[&[u32]], qkv: &[f32], ctx: &mut [f32], scores: &mut Vec<f32>, keys_t: &mut Vec<f32>) {
    let (h, dh) = (d.hidden, d.head_dim);
    let stride = 3 * h;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut start = 0;
    for seq in seqs {
        let t = seq.len();
        // K transposed and padded to whole key blocks, so each block of scores is one pass of
        // FMAs over contiguous memory.
        let tp = t.div_ceil(KEY_BLOCK) * KEY_BLOCK;
        scores.resize(tp, 0.0);
        keys_t.clear();
        keys_t.resize(dh * tp, 0.0);
        for head in 0..d.heads {
            let (qo, ko, vo) = (head * dh, h + head * dh, 2 * h + head * dh);
            for j in 0..t {
                let krow = &qkv[(start + j) * stride + ko..][..dh];
                for (c, &kv) in krow.iter().enumerate() {
                    keys_t[c * tp + j] = kv;
                }
            }
            for i in 0..t {
                let q = &qkv[(start + i) * stride + qo..][..dh];
                for jb in (0..tp).step_by(KEY_BLOCK) {
                    let mut acc = [0f32; KEY_BLOCK];
                    for (c, &qv) in q.iter().enumerate() {
                        let k = &keys_t[c * tp + jb..][..KEY_BLOCK];
                        for l in 0..KEY_BLOCK {
                            acc[l] = qv.mul_add(k[l], acc[l]);
                        }
                    }
                    for l in 0..KEY_BLOCK {
                        scores[jb + l] = acc[l] * scale;
                    }
                }
                math::softmax(&mut scores[..t]);
                let out = &mut ctx[(start + i) * h + qo..][..dh];
                weighted_sum(&scores[..t], qkv, start, stride, vo, out);
            }
        }
        start += t;
    }
}

/// `out = Σ_j p_j · v_j`, with the sum kept in registers for the usual head sizes.
fn weighted_sum(p: &[f32], qkv: &[f32], start: usize, stride: usize, vo: usize, out: &mut [f32]) {
    fn fixed<const D: usize>(p: &[f32], qkv: &[f32], start: usize, stride: usize, vo: usize, out: &mut [f32]) {
        let mut acc = [0f32; D];
        for (j, &pj) in p.iter().enumerate() {
            let v = &qkv[(start + j) * stride + vo..][..D];
            for c in 0..D {
                acc[c] = pj.mul_add(v[c], acc[c]);
            }
        }
        out.copy_from_slice(&acc);
    }
    match out.len() {
        32 => fixed::<32>(p, qkv, start, stride, vo, out),
        64 => fixed::<64>(p, qkv, start, stride, vo, out),
        dh => {
            out.fill(0.0);
            for (j, &pj) in p.iter().enumerate() {
                for (o, &vv) in out.iter_mut().zip(&qkv[(start + j) * stride + vo..][..dh]) {
                    *o += pj * vv;
                }
            }
        }
    }
}
