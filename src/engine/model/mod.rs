//! BERT as the snapshot's plan describes it: embeddings, then encoder layers, over a packed
//! batch — the tokens of all sequences back to back, no padding. Linear layers see every token
//! of the batch at once; attention runs per sequence over exactly its own tokens, so a text's
//! vector never depends on what it was batched with.
//!
//! Structs hold tensor handles resolved and shape-checked once at load; `forward` borrows the
//! data from the snapshot. Names follow the math (and HF's `BertModel`, whose module each struct
//! mirrors); checkpoint names were resolved by model-prep.

mod embeddings;
mod layer;

use crate::engine::kernels::{Isa, Linear, Weights, QUAD};
use crate::engine::snapshot::{BertConfig, DType, Layout, LinearRef, NormRef, PlanStep, Snapshot, SnapshotError, TensorId};

pub use embeddings::Embeddings;
pub use layer::EncoderLayer;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("the snapshot's plan is not a BERT encoder: {0}")]
    Plan(String),
}

/// Sizes every step needs.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub hidden: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub max_positions: usize,
    /// Tokens per sequence the snapshot supports (rows of its position table).
    pub max_seq_length: usize,
    pub type_vocab: usize,
    pub eps: f32,
}

impl Dims {
    fn from_config(c: &BertConfig, max_seq_length: u32) -> Result<Dims, ModelError> {
        let hidden = c.hidden_size as usize;
        let heads = c.num_attention_heads as usize;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(ModelError::Plan(format!("hidden size {hidden} is not a multiple of {heads} heads")));
        }
        if !(hidden / heads).is_multiple_of(crate::engine::kernels::PANEL) {
            return Err(ModelError::Plan(format!("head size {} is not a multiple of {}", hidden / heads, crate::engine::kernels::PANEL)));
        }
        Ok(Dims {
            hidden,
            heads,
            head_dim: hidden / heads,
            intermediate: c.intermediate_size as usize,
            vocab: c.vocab_size as usize,
            max_positions: c.max_position_embeddings as usize,
            max_seq_length: max_seq_length as usize,
            type_vocab: c.type_vocab_size as usize,
            eps: c.layer_norm_eps,
        })
    }
}

/// A LayerNorm's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Norm {
    pub gamma: TensorId,
    pub beta: TensorId,
}

impl Norm {
    fn load(snap: &Snapshot, r: &NormRef, h: usize) -> Result<Norm, ModelError> {
        let shape = [h as u64];
        Ok(Norm {
            gamma: snap.expect_id(&r.gamma, DType::F32, Layout::RowMajor, &shape)?,
            beta: snap.expect_id(&r.beta, DType::F32, Layout::RowMajor, &shape)?,
        })
    }

    pub fn apply(&self, snap: &Snapshot, xs: &mut [f32], eps: f32) {
        crate::engine::kernels::math::layer_norm(xs, snap.f32_data(self.gamma), snap.f32_data(self.beta), eps);
    }
}

/// A fully connected layer's tensor handles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinearIds {
    weight: TensorId,
    /// Present for int8 weights.
    scale: Option<GroupIds>,
    bias: TensorId,
    /// `[k]` factors the input is multiplied by first (`LinearRef::input_scale`).
    input_scale: Option<TensorId>,
    k: usize,
    n: usize,
}

/// An int8 weight's per-group tensors: scales and column sums, `group` rows of k each.
#[derive(Debug, Clone, Copy)]
struct GroupIds {
    scale: TensorId,
    sum: TensorId,
    group: usize,
}

impl LinearIds {
    fn load(snap: &Snapshot, r: &LinearRef, k: usize, n: usize) -> Result<LinearIds, ModelError> {
        let wname = format!("{}.weight", r.name);
        let shape = [k as u64, n as u64];
        let dtype = snap.tensor(&wname)?.info.dtype;
        let layout = if dtype == DType::I8 { Layout::QuadPanels } else { Layout::Panels };
        let weight = snap.expect_id(&wname, dtype, layout, &shape)?;
        let scale = match dtype {
            DType::F32 => None,
            DType::I8 => {
                let group = snap.header().quantization.group_size as usize;
                if group == 0 || !k.is_multiple_of(group) || !group.is_multiple_of(QUAD) {
                    return Err(ModelError::Plan(format!("{wname}: group size {group} does not divide {k} or is not a multiple of {QUAD}")));
                }
                let groups = [(k / group) as u64, n as u64];
                let scale = snap.expect_id(&format!("{}.weight_scale", r.name), DType::F32, Layout::Panels, &groups)?;
                let sum = snap.expect_id(&format!("{}.weight_sum", r.name), DType::I32, Layout::Panels, &groups)?;
                Some(GroupIds { scale, sum, group })
            }
            other => return Err(ModelError::Plan(format!("{wname}: {other:?} weights are not supported"))),
        };
        let bias = snap.expect_id(&format!("{}.bias", r.name), DType::F32, Layout::RowMajor, &[n as u64])?;
        let input_scale =
            r.input_scale.as_deref().map(|name| snap.expect_id(name, DType::F32, Layout::RowMajor, &[k as u64])).transpose()?;
        Ok(LinearIds { weight, scale, bias, input_scale, k, n })
    }

    pub fn bind<'s>(&self, snap: &'s Snapshot) -> Linear<'s> {
        let weights = match self.scale {
            None => Weights::F32(snap.f32_data(self.weight)),
            Some(GroupIds { scale, sum, group }) => Weights::I8 {
                q: snap.i8_data(self.weight),
                scales: snap.f32_data(scale),
                sums: snap.i32_data(sum),
                group,
            },
        };
        let input_scale = self.input_scale.map(|id| snap.f32_data(id));
        Linear { weights, bias: snap.f32_data(self.bias), input_scale, floor: None, k: self.k, n: self.n }
    }
}

/// Reusable activation buffers for one forward pass.
#[derive(Default)]
pub struct Scratch {
    pub x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    ffn: Vec<f32>,
    /// One per thread of the forward pass.
    attention: Vec<layer::AttentionScratch>,
}

impl Scratch {
    /// Bytes the buffers hold on to.
    pub fn bytes(&self) -> usize {
        let f = [&self.x, &self.h, &self.qkv, &self.ctx, &self.ffn].iter().map(|v| v.capacity()).sum::<usize>();
        (f + self.attention.iter().map(layer::AttentionScratch::floats).sum::<usize>()) * std::mem::size_of::<f32>()
    }
}

pub struct Bert {
    pub dims: Dims,
    embeddings: Embeddings,
    layers: Vec<EncoderLayer>,
}

impl Bert {
    /// Resolves and checks every tensor the plan names.
    pub fn load(snap: &Snapshot) -> Result<Bert, ModelError> {
        let header = snap.header();
        let dims = Dims::from_config(&header.config, header.embedding.max_seq_length)?;
        let mut steps = header.plan.iter();
        let embeddings = match steps.next() {
            Some(PlanStep::Embeddings { word, word_scale, position, token_type, norm }) => Embeddings::load(
                snap,
                &dims,
                word,
                word_scale.as_deref(),
                position,
                token_type,
                norm,
            )?,
            _ => return Err(ModelError::Plan("the plan must start with Embeddings".into())),
        };
        let mut layers = Vec::new();
        for step in steps {
            match step {
                PlanStep::EncoderLayer { .. } => layers.push(EncoderLayer::load(snap, &dims, step)?),
                PlanStep::Embeddings { .. } => return Err(ModelError::Plan("Embeddings may appear only first".into())),
            }
        }
        if layers.len() != header.config.num_hidden_layers as usize {
            return Err(ModelError::Plan(format!(
                "the plan has {} encoder layers, the config says {}",
                layers.len(),
                header.config.num_hidden_layers
            )));
        }
        if header.embedding.max_seq_length as usize > dims.max_positions {
            return Err(ModelError::Plan("max_seq_length exceeds the position table".into()));
        }
        Ok(Bert { dims, embeddings, layers })
    }

    /// Runs the encoder over `seqs` (token ids, each at most `max_positions` long and each id in
    /// the vocabulary) packed back to back, on up to `threads` threads (`team`), each taking a
    /// share of the rows of at least `MIN_PART_ROWS`. The last hidden state is left in
    /// `scratch.x`, `[total tokens, hidden]`, the same bits whatever `threads` is.
    pub fn forward(&self, snap: &Snapshot, isa: Isa, seqs: &[&[u32]], scratch: &mut Scratch, threads: usize) {
        self.run(snap, isa, seqs, scratch, threads, None);
    }

    /// `forward` on one thread that also folds into `maxima`, per channel, the largest
    /// magnitude each layer's QKV projection and feed-forward read.
    pub fn record_input_maxima(&self, snap: &Snapshot, isa: Isa, seqs: &[&[u32]], scratch: &mut Scratch, maxima: &mut InputMaxima) {
        let (layers, h) = (self.layers.len(), self.dims.hidden);
        maxima.qkv.resize_with(layers, || vec![0.0; h]);
        maxima.intermediate.resize_with(layers, || vec![0.0; h]);
        self.run(snap, isa, seqs, scratch, 1, Some(maxima));
    }

    fn run(&self, snap: &Snapshot, isa: Isa, seqs: &[&[u32]], scratch: &mut Scratch, threads: usize, mut maxima: Option<&mut InputMaxima>) {
        let m: usize = seqs.iter().map(|s| s.len()).sum();
        let d = &self.dims;
        resize(&mut scratch.x, m * d.hidden);
        resize(&mut scratch.h, m * d.hidden);
        resize(&mut scratch.ctx, m * d.hidden);
        resize(&mut scratch.qkv, m * 3 * d.hidden);
        resize(&mut scratch.ffn, m * d.intermediate);
        self.embeddings.forward(snap, d, seqs, &mut scratch.x);
        let parts = row_parts(m, threads);
        for (l, layer) in self.layers.iter().enumerate() {
            if let Some(maxima) = maxima.as_deref_mut() {
                fold_max(&mut maxima.qkv[l], &scratch.x);
            }
            layer.forward(snap, isa, d, seqs, scratch, &parts);
            // The feed-forward's input, the attention block's LayerNorm output, is left in `h`.
            if let Some(maxima) = maxima.as_deref_mut() {
                fold_max(&mut maxima.intermediate[l], &scratch.h);
            }
        }
    }
}

/// Per channel, the largest magnitude each encoder layer's QKV projection and feed-forward
/// read over the texts run (`Bert::record_input_maxima`): model-prep's calibration, from which
/// it computes the layers' input scales (`LinearRef::input_scale`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputMaxima {
    /// `[layers][hidden]`: the QKV projection's input, the layer's input.
    pub qkv: Vec<Vec<f32>>,
    /// `[layers][hidden]`: the feed-forward's input, the attention block's LayerNorm output.
    pub intermediate: Vec<Vec<f32>>,
}

/// `max[c] = max(max[c], |row[c]|)` over every row of `rows`.
fn fold_max(max: &mut [f32], rows: &[f32]) {
    for row in rows.chunks_exact(max.len()) {
        for (m, v) in max.iter_mut().zip(row) {
            *m = m.max(v.abs());
        }
    }
}

/// Fewest rows worth a thread of their own: below this the matmul tiles run short and the
/// weights stream through one more core's cache for too little work.
pub const MIN_PART_ROWS: usize = 8;

/// `m` rows cut into up to `threads` consecutive, near-equal parts of at least `MIN_PART_ROWS`
/// (one part, however small, if `m` is below that).
fn row_parts(m: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    let parts = threads.min(m / MIN_PART_ROWS).max(1);
    (0..parts).map(|i| i * m / parts..(i + 1) * m / parts).collect()
}

/// Sets a buffer's length; every buffer is fully written before it is read, so only growth is
/// zeroed. Grows to the length asked, not to twice the old capacity as `Vec` would: a pooled
/// scratch must stay what its largest pass needs, or it overshoots the server's limit and is
/// freed after all.
fn resize(v: &mut Vec<f32>, len: usize) {
    v.truncate(len);
    v.reserve_exact(len - v.len());
    v.resize(len, 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one part is an answer, not a range of parts
    fn rows_are_cut_into_near_equal_parts_worth_a_thread() {
        assert_eq!(row_parts(0, 2), [0..0]);
        assert_eq!(row_parts(15, 2), [0..15], "under two parts' worth of rows: one part");
        assert_eq!(row_parts(16, 2), [0..8, 8..16]);
        assert_eq!(row_parts(128, 3), [0..42, 42..85, 85..128]);
        assert_eq!(row_parts(20, 8), [0..10, 10..20]);
        assert_eq!(row_parts(300, 1), [0..300]);
    }
}
