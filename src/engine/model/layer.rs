//! `BertLayer` (post-LayerNorm): self-attention with a fused QKV projection, output projection +
//! residual + LayerNorm, then the GELU feed-forward + residual + LayerNorm.

use std::ops::Range;

use super::{Dims, LinearIds, ModelError, Norm, Scratch};
use crate::engine::kernels::{math, pack_panels_into, Epilogue, Isa, Linear, Weights, PANEL};
use crate::engine::snapshot::{PlanStep, Snapshot};
use crate::engine::team;

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

    /// `scratch.x` holds the layer's input on entry and its output on return. `parts` splits
    /// the batch's rows among threads (`team`): each runs the QKV projection for its rows, then,
    /// once every row's keys and values exist, attention for its queries and the rest of the
    /// layer for its rows. Every step computes a row the same way whatever rows it is given, so
    /// the bits do not depend on the split.
    pub(super) fn forward(&self, snap: &Snapshot, isa: Isa, d: &Dims, seqs: &[&[u32]], s: &mut Scratch, parts: &[Range<usize>]) {
        let h = d.hidden;
        let (qkv, qkv_scale) = (self.qkv.bind(snap), self.qkv.input_scale(snap));
        // `ctx` is free until attention fills it: it holds the scaled input, if there is one.
        let mut projections: Vec<_> =
            split(&s.x, h, parts).zip(split_mut(&mut s.qkv, 3 * h, parts)).zip(split_mut(&mut s.ctx, h, parts)).collect();
        team::run_each(&mut projections, |((x, out), ctx)| {
            let x = scaled_input(qkv_scale, x, ctx);
            qkv.forward(isa, x, x.len() / h, Epilogue::None, out)
        });
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
        scale_in_place(self.attention_output.input_scale(snap), p.ctx);
        self.attention_output.bind(snap).forward(isa, p.ctx, m, Epilogue::Residual(p.x), p.h);
        self.attention_norm.apply(snap, p.h, d.eps);
        // `h` is the residual of the feed-forward: a scaled input goes to `ctx`, free again.
        let input = scaled_input(self.intermediate.input_scale(snap), p.h, p.ctx);
        self.intermediate.bind(snap).forward(isa, input, m, Epilogue::Gelu, p.ffn);
        scale_in_place(self.output.input_scale(snap), p.ffn);
        self.output.bind(snap).forward(isa, p.ffn, m, Epilogue::Residual(p.h), p.x);
        self.output_norm.apply(snap, p.x, d.eps);
    }
}

/// A linear layer's input: `x` itself, or with an input scale (model-prep's smoothing) `x ⊙
/// scale` row by row, written to `buf` (as long as `x` or longer) because `x` is still needed as
/// it is. Every kernel then reads the same scaled values, so their specs are unchanged.
fn scaled_input<'a>(scale: Option<&[f32]>, x: &'a [f32], buf: &'a mut [f32]) -> &'a [f32] {
    let Some(scale) = scale else { return x };
    let buf = &mut buf[..x.len()];
    for (dst, src) in buf.chunks_exact_mut(scale.len()).zip(x.chunks_exact(scale.len())) {
        for ((d, &v), &s) in dst.iter_mut().zip(src).zip(scale) {
            *d = v * s;
        }
    }
    buf
}

/// `x ⊙ scale` row by row, in place, for an input that is needed no further.
fn scale_in_place(scale: Option<&[f32]>, x: &mut [f32]) {
    let Some(scale) = scale else { return };
    for row in x.chunks_exact_mut(scale.len()) {
        for (v, &s) in row.iter_mut().zip(scale) {
            *v *= s;
        }
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
            // Q·scale, [q, dh]; Kᵀ as [dh, tp] panels; V as [tp, dh] panels (dh a multiple of 16).
            a.q.clear();
            a.q.extend(rows_at(qo, q0..q1).flat_map(|r| qkv[r..r + dh].iter().map(|v| v * scale)));
            resize_zeroed(&mut a.scores, dh * tp);
            for (j, r) in rows_at(ko, 0..t).enumerate() {
                for c in 0..dh {
                    a.scores[c * tp + j] = qkv[r + c];
                }
            }
            pack_panels_into(&a.scores, dh, tp, &mut a.keys);
            resize_zeroed(&mut a.scores, tp * dh);
            for (j, r) in rows_at(vo, 0..t).enumerate() {
                a.scores[j * dh..(j + 1) * dh].copy_from_slice(&qkv[r..r + dh]);
            }
            pack_panels_into(&a.scores, tp, dh, &mut a.values);
            a.zeros.resize(tp.max(dh), 0.0);
            let q = q1 - q0;
            a.scores.resize(q * tp, 0.0);
            let kt = Linear { weights: Weights::F32(&a.keys), bias: &a.zeros[..tp], k: dh, n: tp };
            kt.forward(isa, &a.q, q, Epilogue::None, &mut a.scores);
            for row in a.scores.chunks_exact_mut(tp) {
                math::softmax(isa, &mut row[..t]);
                row[t..].fill(0.0);
            }
            a.out.resize(q * dh, 0.0);
            let v = Linear { weights: Weights::F32(&a.values), bias: &a.zeros[..dh], k: tp, n: dh };
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
