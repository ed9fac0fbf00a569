//! The snapshot file format: plain data shared by the writer (model-prep) and the reader.
//!
//! Layout, in the spirit of GGUF:
//!
//! ```text
//! offset 0   MAGIC (8 bytes) | FORMAT_VERSION u32 LE | header_len u32 LE | header_crc32 u32 LE | 0u32
//! offset 24  header: `Header`, bincode 2 (standard config) of the serde form below
//!            zero padding up to a multiple of ALIGNMENT
//! data_start tensor data; every tensor starts at a multiple of ALIGNMENT from data_start
//! ```
//!
//! The header says everything the runtime needs: the model's hyper-parameters, the tokenizer's
//! settings, the embedding settings (max length, pooling, normalization), the op plan and the
//! tensor table. The vocabulary is a tensor (`tokenizer.vocab`, newline-separated UTF-8) so the
//! runtime borrows it from the mapping instead of decoding 30k strings.
//!
//! `FORMAT_VERSION` is bumped only for structural changes; a reader reads its own version only.
//! Version 2 stored int8 weights in quad panels (`Layout::QuadPanels`), where version 1 had
//! plain panels. Version 3 gave a linear layer an optional input scale (`LinearRef`), the
//! per-channel smoothing that lets int8 activations share a scale over larger groups. Version 4
//! stores each int8 weight group's column sums (`{name}.weight_sum`, `DType::I32`), so the
//! int8-activation kernels can take activations as the unsigned operand with an offset and
//! remove it per column, instead of flipping every weight to unsigned as they load it.

use serde::{Deserialize, Serialize};

pub const MAGIC: [u8; 8] = *b"SNAPEMB\0";
pub const FORMAT_VERSION: u32 = 4;
/// Every tensor's offset is a multiple of this, so a mapped tensor can be read with aligned loads.
pub const ALIGNMENT: usize = 64;
/// Magic, version, header length, header checksum, reserved.
pub const PREAMBLE_LEN: usize = 24;
/// Columns per weight panel: the width of the matmul micro-kernel (two 8-lane f32 vectors).
pub const PANEL_WIDTH: usize = 16;
/// The vocabulary tensor's name.
pub const VOCAB_TENSOR: &str = "tokenizer.vocab";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub model: ModelInfo,
    pub config: BertConfig,
    pub embedding: EmbeddingSettings,
    pub tokenizer: TokenizerSettings,
    pub quantization: Quantization,
    pub plan: Vec<PlanStep>,
    pub tensors: Vec<TensorInfo>,
    /// Bytes of tensor data after the header's padding.
    pub data_len: u64,
    /// CRC-32 (IEEE) of the tensor data.
    pub data_crc32: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Short model name, e.g. `all-MiniLM-L6-v2`.
    pub name: String,
    /// What wrote the file, e.g. `model-prep 0.1.0`.
    pub created_by: String,
    /// `sentence-transformers` (safetensors directory) or `onnx`.
    pub source_kind: String,
    /// SHA-256 (hex) of each source file read, by file name, sorted.
    pub source_files: Vec<(String, String)>,
}

/// BERT hyper-parameters, as `config.json` names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: u32,
    pub hidden_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub intermediate_size: u32,
    pub max_position_embeddings: u32,
    pub type_vocab_size: u32,
    pub layer_norm_eps: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pooling {
    /// Mean over the attention mask (sentence-transformers `pooling_mode_mean_tokens`).
    Mean,
    /// The `[CLS]` token's hidden state.
    Cls,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingSettings {
    /// Word pieces per text, `[CLS]` and `[SEP]` included (sentence-transformers `max_seq_length`).
    pub max_seq_length: u32,
    pub pooling: Pooling,
    /// Whether the model's pipeline ends in L2 normalization.
    pub normalize: bool,
    pub dimensions: u32,
}

/// A BERT WordPiece tokenizer (HF `BertNormalizer` + `BertPreTokenizer` + `WordPiece`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizerSettings {
    pub clean_text: bool,
    pub handle_chinese_chars: bool,
    pub strip_accents: bool,
    pub lowercase: bool,
    pub continuing_subword_prefix: String,
    pub max_input_chars_per_word: u32,
    pub unk_id: u32,
    pub cls_id: u32,
    pub sep_id: u32,
    pub pad_id: u32,
    /// Tokens matched verbatim in the raw text before normalization (`added_tokens`), with ids.
    pub special_tokens: Vec<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// Human-readable scheme, shown by `snapembed info` and `/model-status`.
    pub scheme: String,
    /// Input-dimension rows sharing one weight scale per output column (0: f32 weights).
    pub group_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DType {
    F32,
    I8,
    U8,
    I32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::I8 | DType::U8 => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Plain row-major.
    RowMajor,
    /// A `[k, n]` matrix cut into `n / PANEL_WIDTH` column panels, each stored k-major
    /// (`PANEL_WIDTH` consecutive values per k). A group-scale tensor `[k / group, n]` uses the
    /// same panel order.
    Panels,
    /// An int8 `[k, n]` matrix in 16-column panels whose k runs in steps of four: per panel and
    /// four k, 64 bytes, column c's four consecutive k at bytes `4c..4c + 4`
    /// (`kernels::pack_quad_panels`): the operand layout of `vpdpbusd`, loaded without shuffles.
    QuadPanels,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    pub layout: Layout,
    pub shape: Vec<u64>,
    /// From the start of the data section; a multiple of `ALIGNMENT`.
    pub offset: u64,
    pub nbytes: u64,
}

impl TensorInfo {
    pub fn element_count(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }
}

/// A fully connected layer `y = (x ⊙ input_scale) · W + b`, `W` stored `[in, out]` in
/// `Layout::Panels` (f32) or `Layout::QuadPanels` (int8). Tensors: `{name}.weight`,
/// `{name}.bias`, for int8 weights `{name}.weight_scale` (f32) and `{name}.weight_sum` (i32:
/// each group's sum of the int8 weights per column, `[in / group, out]` in `Layout::Panels`),
/// and with an input scale `{name}.input_scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearRef {
    pub name: String,
    /// `[in]` f32 factors, powers of two, the layer's input is multiplied by before the matmul:
    /// SmoothQuant's smoothing, whose inverse model-prep multiplied into the weights' rows.
    pub input_scale: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormRef {
    pub gamma: String,
    pub beta: String,
}

/// The op plan: what the runtime executes, in order. Each step names its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanStep {
    /// word (int8 rows + per-row scale, or f32) + position + token type, then LayerNorm.
    Embeddings {
        word: String,
        word_scale: Option<String>,
        position: String,
        token_type: String,
        norm: NormRef,
    },
    /// Post-LayerNorm BERT layer: fused QKV projection, softmax attention per head, output
    /// projection + residual + LayerNorm, GELU(erf) FFN + residual + LayerNorm.
    EncoderLayer {
        qkv: LinearRef,
        attention_output: LinearRef,
        attention_norm: NormRef,
        intermediate: LinearRef,
        output: LinearRef,
        output_norm: NormRef,
    },
}
