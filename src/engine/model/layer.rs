//! `BertLayer` (post-LayerNorm): self-attention with a fused QKV projection, output projection +
//! residual + LayerNorm, then the GELU feed-forward + residual + LayerNorm.

use std::ops::Range;

use super::{resize, Dims, LinearIds, ModelError, Norm, Scratch};
use crate::engine::kernels::{math, Epilogue, Floor, Isa, Linear, Weights, PANEL};
use crate::engine::snapshot::{PlanStep, Snapshot};
use crate::engine::team;

pub struct EncoderLayer {
    qkv: LinearIds,
    attention_output: LinearIds,
    attention_norm: Norm,
    intermediate: LinearIds,
    output: LinearIds,
    output_norm: Norm,
    /// The feed-forward's second matmul's bias for inputs quantized above GELU's floor
    /// (`Floor`), if its weights are int8.
    output_floor_bias: Option<Vec<f32>>,
}

impl EncoderLayer {
    pub(super) fn load(snap: &Snapshot, d: &Dims, step: &PlanStep) -> Result<EncoderLayer, ModelError> {
        let PlanStep::EncoderLayer { qkv, attention_output, attention_norm, intermediate, output, output_norm } = step
        else {
            return Err(ModelError::Plan("expected an EncoderLayer step".into()));
        };
        let (h, i) = (d.hidden, d.intermediate);
        let output = LinearIds::load(snap, output, i, h)?;
        let bound = output.bind(snap);
        Ok(EncoderLayer {
            qkv: LinearIds::load(snap, qkv, h, 3 * h)?,
            attention_output: LinearIds::load(snap, attention_output, h, h)?,
            attention_norm: Norm::load(snap, attention_norm, h)?,
            intermediate: LinearIds::load(snap, intermediate, h, i)?,
            output_floor_bias: Floor::bias_for(bound.weights, bound.bias, math::GELU_FLOOR),
            output,
            output_norm: Norm::load(snap, output_norm, h)?,
        })
    }

    /// `scratch.x` holds the layer's input on entry and its output on return. `parts` splits
    /// the batch's rows among threads (`team`): each runs the QKV projection for its rows, then,
    /// once every row's keys and values exist, attention for its queries and the rest of the
    /// layer for its rows. Every step computes a row the same way whatever rows it is given, so
    /// the bits do not depend on the split.
    pub(super) fn forward(&self, snap: &Snapshot, isa: Isa, d: &Dims, seqs: &[&[u32]], s: &mut Scratch, parts: &[Range<usize>]) {
        let h = d.hidden;
        let qkv = self.qkv.bind(snap);
        let mut projections: Vec<_> = split(&s.x, h, parts).zip(split_mut(&mut s.qkv, 3 * h, parts)).collect();
        team::run_each(&mut projections, |(x, out)| qkv.forward(isa, x, x.len() / h, Epilogue::None, out));
        s.attention.resize_with(parts.len(), AttentionScratch::default);
        let mut rest: Vec<Part> = parts
            .iter()
            .zip(split_mut(&mut s.x, h, parts))
            .zip(split_mut(&mut s.h, h, parts))
            .zip(split_mut(&mut s.ctx, h, parts))
            .zip(split_mut(&mut s.ffn, d.intermediate, parts))
            .zip(s.attention.iter_mut())
            .map(|(((((rows, x), hidden), ctx), ffn), attention)| Part { rows: rows.clone(), x, h: hidden, ctx, ffn, attention })
            .collect();
        let qkv = &s.qkv;
        team::run_each(&mut rest, |p| self.rest(snap, isa, d, seqs, qkv, p));
    }

    /// Attention for the part's queries, then the output projection, LayerNorm and
    /// feed-forward for its rows.
    fn rest(&self, snap: &Snapshot, isa: Isa, d: &Dims, seqs: &[&[u32]], qkv: &[f32], p: &mut Part) {
        let m = p.rows.len();
        attention(isa, d, seqs, qkv, p.rows.clone(), p.ctx, p.attention);
        self.attention_output.bind(snap).forward(isa, p.ctx, m, Epilogue::Residual(p.x), p.h);
        self.attention_norm.apply(snap, p.h, d.eps);
        self.intermediate.bind(snap).forward(isa, p.h, m, Epilogue::Gelu, p.ffn);
        let floor = self.output_floor_bias.as_deref().map(|bias| Floor { value: math::GELU_FLOOR, bias });
        Linear { floor, ..self.output.bind(snap) }.forward(isa, p.ffn, m, Epilogue::Residual(p.h), p.x);
        self.output_norm.apply(snap, p.x, d.eps);
    }
}

/// One thread's rows of the activations (`EncoderLayer::forward`).
struct Part<'a> {
    rows: Range<usize>,
    x: &'a mut [f32],
    h: &'a mut [f32],
    ctx: &'a mut [f32],
    ffn: &'a mut [f32],
    attention: &'a mut AttentionScratch,
}

/// The rows `parts` of a `[rows, width]` buffer.
fn split<'a>(buf: &'a [f32], width: usize, parts: &'a [Range<usize>]) -> impl Iterator<Item = &'a [f32]> {
    parts.iter().map(move |r| &buf[r.start * width..r.end * width])
}

/// The rows `parts` (consecutive, from 0) of a `[rows, width]` buffer, each mutable.
fn split_mut<'a>(mut buf: &'a mut [f32], width: usize, parts: &[Range<usize>]) -> Vec<&'a mut [f32]> {
    parts
        .iter()
        .map(|r| {
            let (part, rest) = std::mem::take(&mut buf).split_at_mut(r.len() * width);
            buf = rest;
            part
        })
        .collect()
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

/// Scaled dot-product attention per sequence and head for the queries `rows` of the batch
/// (into `ctx`, `[rows, hidden]`), as two small matmuls through the same kernels as the linear
/// layers: scores = (Q·scale)·Kᵀ with Kᵀ packed as f32 panels, then context = softmax(scores)·V
/// with V packed likewise. Key counts are padded to whole panels (zero keys, zero
/// probabilities). No mask is needed: every sequence attends to exactly its own tokens. (Written
/// as loops, this was a quarter of a 128-token forward.)
fn attention(isa: Isa, d: &Dims, seqs: &[&[u32]], qkv: &[f32], rows: Range<usize>, ctx: &mut [f32], a: &mut AttentionScratch) {
    let (h, dh) = (d.hidden, d.head_dim);
    let stride = 3 * h;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut start = 0;
    for seq in seqs {
        let t = seq.len();
        // This sequence's queries among `rows`, as positions within it.
        let (q0, q1) = (rows.start.clamp(start, start + t) - start, rows.end.clamp(start, start + t) - start);
        if q0 == q1 {
            start += t;
            continue;
        }
        let tp = t.div_ceil(PANEL) * PANEL;
        for head in 0..d.heads {
            let (qo, ko, vo) = (head * dh, h + head * dh, 2 * h + head * dh);
            let rows_at = |off: usize, js: Range<usize>| js.map(move |j| (start + j) * stride + off);
            let q = q1 - q0;
            // Q·scale, [q, dh].
            resize(&mut a.q, q * dh);
            for (dst, r) in a.q.chunks_exact_mut(dh).zip(rows_at(qo, q0..q1)) {
                for (d, v) in dst.iter_mut().zip(&qkv[r..r + dh]) {
                    *d = v * scale;
                }
            }
            // Kᵀ, [dh, tp], straight into panels (`pack_panels`): key j is column j % PANEL of
            // panel j / PANEL, one value per row c.
            resize_zeroed(&mut a.keys, dh * tp);
            for (j, r) in rows_at(ko, 0..t).enumerate() {
                let column = &mut a.keys[j / PANEL * dh * PANEL + j % PANEL..];
                for (c, &v) in qkv[r..r + dh].iter().enumerate() {
                    column[c * PANEL] = v;
                }
            }
            // V, [tp, dh], likewise (dh a multiple of 16): row j's values c..c + PANEL are row j
            // of panel c / PANEL.
            resize_zeroed(&mut a.values, tp * dh);
            for (j, r) in rows_at(vo, 0..t).enumerate() {
                for (p, part) in qkv[r..r + dh].chunks_exact(PANEL).enumerate() {
                    a.values[(p * tp + j) * PANEL..][..PANEL].copy_from_slice(part);
                }
            }
            resize(&mut a.zeros, tp.max(dh));
            resize(&mut a.scores, q * tp);
            let kt = Linear { weights: Weights::F32(&a.keys), bias: &a.zeros[..tp], input_scale: None, floor: None, k: dh, n: tp };
            kt.forward(isa, &a.q, q, Epilogue::None, &mut a.scores);
            for row in a.scores.chunks_exact_mut(tp) {
                math::softmax(isa, row, t);
            }
            resize(&mut a.out, q * dh);
            let v = Linear { weights: Weights::F32(&a.values), bias: &a.zeros[..dh], input_scale: None, floor: None, k: tp, n: dh };
            v.forward(isa, &a.scores, q, Epilogue::None, &mut a.out);
            for (i, row) in a.out.chunks_exact(dh).enumerate() {
                ctx[(start + q0 + i - rows.start) * h + qo..][..dh].copy_from_slice(row);
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

/// Zeroes a buffer at `len`, grown exactly (see `model::resize`).
fn resize_zeroed(v: &mut Vec<f32>, len: usize) {
    v.clear();
    v.reserve_exact(len);
    v.resize(len, 0.0);
}
