//! `BertLayer` (post-LayerNorm): self-attention with a fused QKV projection, output projection +
//! residual + LayerNorm, then the GELU feed-forward + residual + LayerNorm.

use super::{Dims, LinearIds, ModelError, Norm, Scratch};
use crate::engine::kernels::{math, pack_panels_into, Epilogue, Isa, Linear, Weights, PANEL};
use crate::engine::snapshot::{PlanStep, Snapshot};

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
        attention(isa, d, seqs, &s.qkv, &mut s.ctx, &mut s.attention);
        self.attention_output.bind(snap).forward(isa, &s.ctx, m, Epilogue::Residual(&s.x), &mut s.h);
        self.attention_norm.apply(snap, &mut s.h, d.eps);
        self.intermediate.bind(snap).forward(isa, &s.h, m, Epilogue::Gelu, &mut s.ffn);
        self.output.bind(snap).forward(isa, &s.ffn, m, Epilogue::Residual(&s.h), &mut s.x);
        self.output_norm.apply(snap, &mut s.x, d.eps);
    }
}

/// Per-head buffers for attention, reused across heads, layers and calls.
#[derive(Default)]
pub struct AttentionScratch {
    q: Vec<f32>,
    keys: Vec<f32>,
    values: Vec<f32>,
    scores: Vec<f32>,
    out: Vec<f32>,
    zeros: Vec<f32>,
}

/// Scaled dot-product attention per sequence and head, as two small matmuls through the same
/// kernels as the linear layers: scores = (Q·scale)·Kᵀ with Kᵀ packed as f32 panels, then
/// context = softmax(scores)·V with V packed likewise. Key counts are padded to whole panels
/// (zero keys, zero probabilities). No mask is needed: every sequence attends to exactly its
/// own tokens. (Written as loops, this was a quarter of a 128-token forward.)
fn attention(isa: Isa, d: &Dims, seqs: &[&[u32]], qkv: &[f32], ctx: &mut [f32], a: &mut AttentionScratch) {
    let (h, dh) = (d.hidden, d.head_dim);
    let stride = 3 * h;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut start = 0;
    for seq in seqs {
        let t = seq.len();
        let tp = t.div_ceil(PANEL) * PANEL;
        for head in 0..d.heads {
            let (qo, ko, vo) = (head * dh, h + head * dh, 2 * h + head * dh);
            let rows = |off: usize| (0..t).map(move |j| (start + j) * stride + off);
            // Q·scale, [t, dh]; Kᵀ as [dh, tp] panels; V as [tp, dh] panels (dh a multiple of 16).
            a.q.clear();
            a.q.extend(rows(qo).flat_map(|r| qkv[r..r + dh].iter().map(|v| v * scale)));
            resize_zeroed(&mut a.scores, dh * tp);
            for (j, r) in rows(ko).enumerate() {
                for c in 0..dh {
                    a.scores[c * tp + j] = qkv[r + c];
                }
            }
            pack_panels_into(&a.scores, dh, tp, &mut a.keys);
            resize_zeroed(&mut a.scores, tp * dh);
            for (j, r) in rows(vo).enumerate() {
                a.scores[j * dh..(j + 1) * dh].copy_from_slice(&qkv[r..r + dh]);
            }
            pack_panels_into(&a.scores, tp, dh, &mut a.values);
            a.zeros.resize(tp.max(dh), 0.0);
            a.scores.resize(t * tp, 0.0);
            let kt = Linear { weights: Weights::F32(&a.keys), bias: &a.zeros[..tp], k: dh, n: tp };
            kt.forward(isa, &a.q, t, Epilogue::None, &mut a.scores);
            for row in a.scores.chunks_exact_mut(tp) {
                math::softmax(isa, &mut row[..t]);
                row[t..].fill(0.0);
            }
            a.out.resize(t * dh, 0.0);
            let v = Linear { weights: Weights::F32(&a.values), bias: &a.zeros[..dh], k: tp, n: dh };
            v.forward(isa, &a.scores, t, Epilogue::None, &mut a.out);
            for (i, row) in a.out.chunks_exact(dh).enumerate() {
                ctx[(start + i) * h + qo..][..dh].copy_from_slice(row);
            }
        }
        start += t;
    }
}

impl AttentionScratch {
    pub(super) fn floats(&self) -> usize {
        [&self.q, &self.keys, &self.values, &self.scores, &self.out, &self.zeros].iter().map(|v| v.capacity()).sum()
    }
}

fn resize_zeroed(v: &mut Vec<f32>, len: usize) {
    v.clear();
    v.resize(len, 0.0);
}
