//! `BertEmbeddings`: word + position + token-type embeddings, then LayerNorm.
//! The word table is int8 with one scale per row (a row is read per token, so the table stays
//! mapped, not resident); position and token-type tables are small and stay f32.

use super::{Dims, ModelError, Norm};
use crate::engine::snapshot::{DType, Layout, NormRef, Snapshot, TensorId};

enum WordTable {
    F32(TensorId),
    I8 { q: TensorId, scale: TensorId },
}

pub struct Embeddings {
    word: WordTable,
    position: TensorId,
    token_type: TensorId,
    norm: Norm,
}

impl Embeddings {
    pub(super) fn load(
        snap: &Snapshot,
        d: &Dims,
        word: &str,
        word_scale: Option<&str>,
        position: &str,
        token_type: &str,
        norm: &NormRef,
    ) -> Result<Embeddings, ModelError> {
        let (v, h) = (d.vocab as u64, d.hidden as u64);
        let word = match word_scale {
            None => WordTable::F32(snap.expect_id(word, DType::F32, Layout::RowMajor, &[v, h])?),
            Some(scale) => WordTable::I8 {
                q: snap.expect_id(word, DType::I8, Layout::RowMajor, &[v, h])?,
                scale: snap.expect_id(scale, DType::F32, Layout::RowMajor, &[v])?,
            },
        };
        Ok(Embeddings {
            word,
            position: snap.expect_id(position, DType::F32, Layout::RowMajor, &[d.max_seq_length as u64, h])?,
            token_type: snap.expect_id(token_type, DType::F32, Layout::RowMajor, &[d.type_vocab as u64, h])?,
            norm: Norm::load(snap, norm, d.hidden)?,
        })
    }

    /// Writes `[total tokens, hidden]` into `out`. Every text is a single segment (type 0).
    pub(super) fn forward(&self, snap: &Snapshot, d: &Dims, seqs: &[&[u32]], out: &mut [f32]) {
        let h = d.hidden;
        let position = snap.f32_data(self.position);
        let token_type = &snap.f32_data(self.token_type)[..h];
        let mut rows = out.chunks_exact_mut(h);
        for seq in seqs {
            for (pos, (&id, row)) in seq.iter().zip(&mut rows).enumerate() {
                let id = id as usize;
                let pos_row = &position[pos * h..(pos + 1) * h];
                match self.word {
                    WordTable::F32(w) => {
                        let w = &snap.f32_data(w)[id * h..(id + 1) * h];
                        for i in 0..h {
                            row[i] = w[i] + pos_row[i] + token_type[i];
                        }
                    }
                    WordTable::I8 { q, scale } => {
                        let w = &snap.i8_data(q)[id * h..(id + 1) * h];
                        let s = snap.f32_data(scale)[id];
                        for i in 0..h {
                            row[i] = w[i] as f32 * s + pos_row[i] + token_type[i];
                        }
                    }
                }
            }
        }
        self.norm.apply(snap, out, d.eps);
    }
}
