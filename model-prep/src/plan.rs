//! Turns a `SourceModel` into the snapshot: the op plan, the tensors in the layouts the runtime's
//! kernels read (fused QKV, `[in, out]` panels, int8 groups), and the header.

use anyhow::{Context, Result};
use snapembed::engine::kernels::{pack_panels, pack_quad_panels};
use snapembed::engine::snapshot::{
    DType, Header, Layout, LinearRef, ModelInfo, NormRef, PlanStep, Quantization, SnapshotWriter, TensorData,
    VOCAB_TENSOR,
};

use crate::quantize::{quantize_groups, quantize_rows, GROUP};
use crate::source::{Array, SourceModel};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// int8 weights (group-32 scales), f32 activations: the shipped snapshot.
    Int8,
    /// f32 weights: the same plan unquantized, the reference for the accuracy report.
    F32,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i8_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

fn dims(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

struct Builder {
    writer: SnapshotWriter,
    precision: Precision,
    params: u64,
}

impl Builder {
    fn f32(&mut self, name: &str, shape: &[usize], data: &[f32]) {
        self.params += data.len() as u64;
        self.writer.push(TensorData {
            name: name.to_owned(),
            dtype: DType::F32,
            layout: Layout::RowMajor,
            shape: dims(shape),
            bytes: f32_bytes(data),
        });
    }

    /// A linear layer from `[in, out]` weights.
    fn linear(&mut self, name: &str, w: &Array, bias: &[f32]) -> LinearRef {
        let (k, n) = (w.shape[0], w.shape[1]);
        self.params += (w.data.len() + bias.len()) as u64;
        let weight = format!("{name}.weight");
        match self.precision {
            Precision::F32 => self.writer.push(TensorData {
                name: weight,
                dtype: DType::F32,
                layout: Layout::Panels,
                shape: dims(&[k, n]),
                bytes: f32_bytes(&pack_panels(&w.data, k, n)),
            }),
            Precision::Int8 => {
                let (q, s) = quantize_groups(&w.data, k, n, GROUP);
                self.writer.push(TensorData {
                    name: weight,
                    dtype: DType::I8,
                    layout: Layout::QuadPanels,
                    shape: dims(&[k, n]),
                    bytes: i8_bytes(&pack_quad_panels(&q, k, n)),
                });
                self.writer.push(TensorData {
                    name: format!("{name}.weight_scale"),
                    dtype: DType::F32,
                    layout: Layout::Panels,
                    shape: dims(&[k / GROUP, n]),
                    bytes: f32_bytes(&pack_panels(&s, k / GROUP, n)),
                });
            }
        }
        self.writer.push(TensorData {
            name: format!("{name}.bias"),
            dtype: DType::F32,
            layout: Layout::RowMajor,
            shape: dims(&[n]),
            bytes: f32_bytes(bias),
        });
        LinearRef { name: name.to_owned() }
    }

    fn norm(&mut self, src: &SourceModel, from: &str, to: &str, h: usize) -> Result<NormRef> {
        let gamma = format!("{to}.gamma");
        let beta = format!("{to}.beta");
        self.f32(&gamma, &[h], &src.tensor(&format!("{from}.weight"), &[h])?.data);
        self.f32(&beta, &[h], &src.tensor(&format!("{from}.bias"), &[h])?.data);
        Ok(NormRef { gamma, beta })
    }
}

/// What was built, for the report.
pub struct Built {
    pub bytes: Vec<u8>,
    pub params: u64,
    pub plan: Vec<PlanStep>,
}

pub fn build(src: &SourceModel, precision: Precision) -> Result<Built> {
    let c = &src.config;
    let (h, i, v) = (c.hidden_size as usize, c.intermediate_size as usize, c.vocab_size as usize);
    let mut b = Builder { writer: SnapshotWriter::new(), precision, params: 0 };
    let mut plan = Vec::new();

    let mut vocab = String::new();
    for tok in &src.vocab {
        vocab.push_str(tok);
        vocab.push('\n');
    }
    b.writer.push(TensorData {
        name: VOCAB_TENSOR.into(),
        dtype: DType::U8,
        layout: Layout::RowMajor,
        shape: vec![vocab.len() as u64],
        bytes: vocab.into_bytes(),
    });

    // Embeddings.
    let word = src.tensor("embeddings.word_embeddings.weight", &[v, h])?;
    let word_scale = match precision {
        Precision::F32 => {
            b.f32("embeddings.word", &[v, h], &word.data);
            None
        }
        Precision::Int8 => {
            let (q, s) = quantize_rows(&word.data, h);
            b.params += word.data.len() as u64;
            b.writer.push(TensorData {
                name: "embeddings.word".into(),
                dtype: DType::I8,
                layout: Layout::RowMajor,
                shape: dims(&[v, h]),
                bytes: i8_bytes(&q),
            });
            b.f32("embeddings.word_scale", &[v], &s);
            Some("embeddings.word_scale".to_owned())
        }
    };
    let p = c.max_position_embeddings as usize;
    let t = c.type_vocab_size as usize;
    // Positions past max_seq_length are never used: keep only the rows the runtime can reach.
    let used = (src.embedding.max_seq_length as usize).min(p);
    let position = src.tensor("embeddings.position_embeddings.weight", &[p, h])?;
    b.f32("embeddings.position", &[used, h], &position.data[..used * h]);
    b.f32("embeddings.token_type", &[t, h], &src.tensor("embeddings.token_type_embeddings.weight", &[t, h])?.data);
    let norm = b.norm(src, "embeddings.LayerNorm", "embeddings.norm", h)?;
    plan.push(PlanStep::Embeddings {
        word: "embeddings.word".into(),
        word_scale,
        position: "embeddings.position".into(),
        token_type: "embeddings.token_type".into(),
        norm,
    });

    for l in 0..c.num_hidden_layers as usize {
        let from = format!("encoder.layer.{l}");
        let to = format!("layer.{l}");
        let lin = |name: &str, out: usize, inp: usize| -> Result<(Array, Vec<f32>)> {
            let w = src.tensor(&format!("{from}.{name}.weight"), &[out, inp])?.transposed();
            let bias = src.tensor(&format!("{from}.{name}.bias"), &[out])?.data.clone();
            Ok((w, bias))
        };
        // Fused QKV: one [h, 3h] matmul reads the layer input once instead of three times.
        let (q, k, vv) = (
            lin("attention.self.query", h, h)?,
            lin("attention.self.key", h, h)?,
            lin("attention.self.value", h, h)?,
        );
        let mut qkv = Array { shape: vec![h, 3 * h], data: vec![0f32; 3 * h * h] };
        for r in 0..h {
            for (part, (w, _)) in [&q, &k, &vv].into_iter().enumerate() {
                qkv.data[r * 3 * h + part * h..r * 3 * h + (part + 1) * h].copy_from_slice(&w.data[r * h..(r + 1) * h]);
            }
        }
        let qkv_bias: Vec<f32> = [&q.1, &k.1, &vv.1].into_iter().flatten().copied().collect();
        let qkv = b.linear(&format!("{to}.attention.qkv"), &qkv, &qkv_bias);
        let (w, bias) = lin("attention.output.dense", h, h)?;
        let attention_output = b.linear(&format!("{to}.attention.output"), &w, &bias);
        let attention_norm =
            b.norm(src, &format!("{from}.attention.output.LayerNorm"), &format!("{to}.attention.norm"), h)?;
        let (w, bias) = lin("intermediate.dense", i, h)?;
        let intermediate = b.linear(&format!("{to}.ffn.intermediate"), &w, &bias);
        let (w, bias) = lin("output.dense", h, i)?;
        let output = b.linear(&format!("{to}.ffn.output"), &w, &bias);
        let output_norm = b.norm(src, &format!("{from}.output.LayerNorm"), &format!("{to}.ffn.norm"), h)?;
        plan.push(PlanStep::EncoderLayer { qkv, attention_output, attention_norm, intermediate, output, output_norm });
    }

    let quantization = match precision {
        Precision::Int8 => Quantization {
            scheme: format!(
                "int8 weights, symmetric, one f32 scale per {GROUP} input rows per output column \
                 (word embeddings: per row); f32 activations and arithmetic"
            ),
            group_size: GROUP as u32,
        },
        Precision::F32 => Quantization { scheme: "none (f32 weights)".into(), group_size: 0 },
    };
    let header = Header {
        model: ModelInfo {
            name: src.name.clone(),
            created_by: format!("model-prep {}", env!("CARGO_PKG_VERSION")),
            source_kind: src.kind.into(),
            source_files: src.files.clone(),
        },
        config: src.config.clone(),
        embedding: src.embedding.clone(),
        tokenizer: src.tokenizer.clone(),
        quantization,
        plan: plan.clone(),
        tensors: Vec::new(),
        data_len: 0,
        data_crc32: 0,
    };
    let params = b.params;
    let bytes = b.writer.finish(header).context("cannot encode the snapshot header")?;
    Ok(Built { bytes, params, plan })
}
