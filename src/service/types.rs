//! Request and response bodies: TEI's `/embed` and `/similarity`, OpenAI's `/v1/embeddings`.

use serde::{Deserialize, Serialize};

/// A text or a list of texts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Inputs {
    One(String),
    Many(Vec<String>),
}

impl Inputs {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Inputs::One(s) => vec![s],
            Inputs::Many(v) => v,
        }
    }
}

/// TEI `POST /embed`.
#[derive(Debug, Deserialize)]
pub struct EmbedRequest {
    pub inputs: Inputs,
    #[serde(default = "yes")]
    pub normalize: bool,
    /// Cut texts over the model's maximum (sentence-transformers' behaviour); `false` makes
    /// them a 413.
    #[serde(default = "yes")]
    pub truncate: bool,
}

fn yes() -> bool {
    true
}

/// OpenAI's `input`: strings, or token arrays (which this model cannot take: its tokenizer is
/// not the caller's).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OpenAiInput {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u32>),
    TokenBatches(Vec<Vec<u32>>),
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

/// OpenAI `POST /v1/embeddings`.
#[derive(Debug, Deserialize)]
pub struct OpenAiRequest {
    pub input: OpenAiInput,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub encoding_format: Option<EncodingFormat>,
    #[serde(default)]
    pub dimensions: Option<usize>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EmbeddingValue {
    Float(Vec<f32>),
    /// Little-endian f32 bytes, base64 (what OpenAI's Python client asks for by default).
    Base64(String),
}

#[derive(Debug, Serialize)]
pub struct OpenAiEmbedding {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingValue,
}

#[derive(Debug, Serialize)]
pub struct OpenAiUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

#[derive(Debug, Serialize)]
pub struct OpenAiResponse {
    pub object: &'static str,
    pub data: Vec<OpenAiEmbedding>,
    pub model: String,
    pub usage: OpenAiUsage,
}

/// TEI `POST /similarity`.
#[derive(Debug, Deserialize)]
pub struct SimilarityRequest {
    pub inputs: SimilarityInputs,
}

#[derive(Debug, Deserialize)]
pub struct SimilarityInputs {
    pub source_sentence: String,
    pub sentences: Vec<String>,
}
