//! Turns a `SourceModel` into the snapshot: the op plan, the tensors in the layouts the runtime's
//! kernels read (fused QKV, `[in, out]` panels, int8 groups), and the header.

use anyhow::{bail, Context, Result};
use snapembed::engine::kernels::{group_sums, pack_panels, pack_quad_panels};
use snapembed::engine::model::InputMaxima;
use snapembed::engine::snapshot::{
    DType, Header, Layout, LinearRef, ModelInfo, NormRef, PlanStep, Quantization, SnapshotWriter, TensorData,
    VOCAB_TENSOR,
};

use crate::quantize::{quantize_groups, quantize_rows, smoothing, SMOOTHING_ALPHA};
use crate::source::{Array, SourceModel};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// int8 weights (group scales), QKV and feed-forward inputs smoothed: the shipped snapshot.
    Int8,
    /// f32 weights: the same plan unquantized, the reference for the accuracy report and the
    /// model the int8 one is calibrated on.
    F32,
}

/// How the int8 weights are made.
pub struct Int8 {
    /// Input rows sharing a weight scale (and the kernels' activation groups).
    pub group: usize,
    /// Per channel, the largest magnitudes the f32 model's QKV projections and feed-forwards
    /// read over the calibration texts: the smoothing's inputs.
    pub maxima: InputMaxima,
    /// How many texts `maxima` came from, for the header's description.
    pub texts: usize,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i8_bytes(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn dims(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

struct Builder<'a> {
    writer: SnapshotWriter,
    /// None: f32 weights.
    int8: Option<&'a Int8>,
    params: u64,
}

impl Builder<'_> {
    /// A model parameter tensor.
    fn f32(&mut self, name: &str, shape: &[usize], data: &[f32]) {
        self.params += data.len() as u64;
        self.f32_tensor(name, shape, data);
    }

    fn f32_tensor(&mut self, name: &str, shape: &[usize], data: &[f32]) {
        self.writer.push(TensorData {
            name: name.to_owned(),
            dtype: DType::F32,
            layout: Layout::RowMajor,
            shape: dims(shape),
            bytes: f32_bytes(data),
        });
    }

    /// A linear layer from `[in, out]` weights. With int8 weights and `input_max` (the
    /// calibration's maxima of its input), the input is smoothed: each weight row is multiplied
    /// by its factor before quantization, and the layer's input scale holds the inverses.
    fn linear(&mut self, name: &str, w: &Array, bias: &[f32], input_max: Option<&[f32]>) -> Result<LinearRef> {
        let (k, n) = (w.shape[0], w.shape[1]);
        self.params += (w.data.len() + bias.len()) as u64;
        let weight = format!("{name}.weight");
        let mut input_scale = None;
        match self.int8 {
            None => self.writer.push(TensorData {
                name: weight,
                dtype: DType::F32,
                layout: Layout::Panels,
                shape: dims(&[k, n]),
                bytes: f32_bytes(&pack_panels(&w.data, k, n)),
            }),
            Some(&Int8 { group, .. }) => {
                if !k.is_multiple_of(group) {
                    bail!("{name}: the group size {group} does not divide its {k} inputs");
                }
                let mut w = w.data.clone();
                if let Some(input_max) = input_max {
                    let factors = smoothing(input_max, &w, k, n);
                    for (row, f) in w.chunks_exact_mut(n).zip(&factors) {
                        row.iter_mut().for_each(|v| *v *= f);
                    }
                    let scale_name = format!("{name}.input_scale");
                    let inverse: Vec<f32> = factors.iter().map(|f| 1.0 / f).collect();
                    self.f32_tensor(&scale_name, &[k], &inverse);
                    input_scale = Some(scale_name);
                }
                let (q, s) = quantize_groups(&w, k, n, group);
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
                    shape: dims(&[k / group, n]),
                    bytes: f32_bytes(&pack_panels(&s, k / group, n)),
                });
                self.writer.push(TensorData {
                    name: format!("{name}.weight_sum"),
                    dtype: DType::I32,
                    layout: Layout::Panels,
                    shape: dims(&[k / group, n]),
                    bytes: i32_bytes(&pack_panels(&group_sums(&q, k, n, group), k / group, n)),
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
        Ok(LinearRef { name: name.to_owned(), input_scale })
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

/// The snapshot of `src`: f32 weights, or with `int8` int8 ones.
pub fn build(src: &SourceModel, int8: Option<&Int8>) -> Result<Built> {
    let c = &src.config;
    let (h, i, v) = (c.hidden_size as usize, c.intermediate_size as usize, c.vocab_size as usize);
    let layers = c.num_hidden_layers as usize;
    let mut b = Builder { writer: SnapshotWriter::new(), int8, params: 0 };
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
    let word_scale = match int8 {
        None => {
            b.f32("embeddings.word", &[v, h], &word.data);
            None
        }
        Some(_) => {
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

    // The maxima come from this model's own f32 plan: one entry per layer.
    let input_max = |pick: fn(&InputMaxima) -> &Vec<Vec<f32>>, l: usize| int8.map(|q| pick(&q.maxima)[l].as_slice());
    for l in 0..layers {
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
        let qkv = b.linear(&format!("{to}.attention.qkv"), &qkv, &qkv_bias, input_max(|m| &m.qkv, l))?;
        // The attention output and the feed-forward's second matmul are left unsmoothed:
        // smoothing them did not change the simulated accuracy.
        let (w, bias) = lin("attention.output.dense", h, h)?;
        let attention_output = b.linear(&format!("{to}.attention.output"), &w, &bias, None)?;
        let attention_norm =
            b.norm(src, &format!("{from}.attention.output.LayerNorm"), &format!("{to}.attention.norm"), h)?;
        let (w, bias) = lin("intermediate.dense", i, h)?;
        let intermediate = b.linear(&format!("{to}.ffn.intermediate"), &w, &bias, input_max(|m| &m.intermediate, l))?;
        let (w, bias) = lin("output.dense", h, i)?;
        let output = b.linear(&format!("{to}.ffn.output"), &w, &bias, None)?;
        let output_norm = b.norm(src, &format!("{from}.output.LayerNorm"), &format!("{to}.ffn.norm"), h)?;
        plan.push(PlanStep::EncoderLayer { qkv, attention_output, attention_norm, intermediate, output, output_norm });
    }

    let quantization = match int8 {
        Some(q) => Quantization {
            scheme: format!(
                "int8 weights, symmetric, one f32 scale per {} input rows per output column (word \
                 embeddings: per row); QKV and feed-forward inputs smoothed per channel (SmoothQuant, \
                 α {SMOOTHING_ALPHA}, powers of two, calibrated on {} texts)",
                q.group, q.texts
            ),
            group_size: q.group as u32,
        },
        None => Quantization { scheme: "none (f32 weights)".into(), group_size: 0 },
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
