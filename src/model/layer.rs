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

/// Scaled dot-product attention per sequence and head. `qkv` rows are `[q | k | v]`; no mask is
/// needed because every sequence attends to exactly its own tokens.
fn attention(d: &Dims, seqs: &[&[u32]], qkv: &[f32], ctx: &mut [f32], scores: &mut Vec<f32>, keys_t: &mut Vec<f32>) {
    let (h, dh) = (d.hidden, d.head_dim);
    let stride = 3 * h;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut start = 0;
    for seq in seqs {
        let t = seq.len();
        scores.resize(t, 0.0);
        keys_t.resize(dh * t, 0.0);
        for head in 0..d.heads {
            let (qo, ko, vo) = (head * dh, h + head * dh, 2 * h + head * dh);
            // K transposed, so each query's scores are a run of axpys over contiguous memory.
            for j in 0..t {
                let krow = &qkv[(start + j) * stride + ko..][..dh];
                for (c, &kv) in krow.iter().enumerate() {
                    keys_t[c * t + j] = kv;
                }
            }
            for i in 0..t {
                let q = &qkv[(start + i) * stride + qo..][..dh];
                scores.fill(0.0);
                for (c, &qv) in q.iter().enumerate() {
                    let qv = qv * scale;
                    for (sc, &kv) in scores.iter_mut().zip(&keys_t[c * t..(c + 1) * t]) {
                        *sc += qv * kv;
                    }
                }
                math::softmax(scores);
                let out = &mut ctx[(start + i) * h + qo..][..dh];
                out.fill(0.0);
                for (j, &p) in scores.iter().enumerate() {
                    let v = &qkv[(start + j) * stride + vo..][..dh];
                    for (o, &vv) in out.iter_mut().zip(v) {
                        *o += p * vv;
                    }
                }
            }
        }
        start += t;
    }
}
