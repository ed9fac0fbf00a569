//! Request and response bodies: TEI's `/embed` and `/similarity`, OpenAI's `/v1/embeddings`,
//! and their OpenAPI schemas (derived; the untagged inputs' `oneOf` written beside them, since
//! utoipa's derive cannot bound the length of an enum variant's text or list).

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// The limits the schemas state: `config::Limits`' defaults (a test in `service::openapi` keeps
/// them equal), so generated examples stay within what a default server accepts. A server
/// started with other limits says which at `/info`.
pub const DOC_MAX_INPUTS: usize = 64;
pub const DOC_MAX_TEXT_CHARS: usize = 50_000;

fn text_schema(description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).max_length(Some(DOC_MAX_TEXT_CHARS)).description(Some(description))
}

fn list_of(item: ObjectBuilder, description: &str) -> ArrayBuilder {
    ArrayBuilder::new().items(item).min_items(Some(1)).max_items(Some(DOC_MAX_INPUTS)).description(Some(description))
}

/// A text or a list of texts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Inputs {
    One(String),
    Many(Vec<String>),
}

impl PartialSchema for Inputs {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(text_schema("One text."))
            .item(list_of(text_schema("A text."), "Texts, embedded in order."))
            .description(Some("A text or a list of texts (at most 64, each at most 50,000 characters by default)."))
            .into()
    }
}
impl ToSchema for Inputs {}

impl Inputs {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Inputs::One(s) => vec![s],
            Inputs::Many(v) => v,
        }
    }
}

/// TEI `POST /embed`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbedRequest {
    pub inputs: Inputs,
    /// Unit-length vectors (default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub normalize: bool,
    /// Cut texts over the model's maximum (sentence-transformers' behaviour); `false` makes
    /// them a 413.
    #[serde(default = "yes")]
    #[schema(default = true)]
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

impl PartialSchema for OpenAiInput {
    fn schema() -> RefOr<Schema> {
        let token = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0));
        OneOfBuilder::new()
            .item(text_schema("One text."))
            .item(list_of(text_schema("A text."), "Texts, embedded in order."))
            .item(ArrayBuilder::new().items(token()).description(Some("Token ids: always refused with 422 (this model has its own tokenizer).")))
            .item(
                ArrayBuilder::new()
                    .items(ArrayBuilder::new().items(token()))
                    .min_items(Some(1))
                    .description(Some("Lists of token ids: always refused with 422.")),
            )
            .description(Some("A text, a list of texts, or token arrays (accepted by OpenAI's API; refused here with 422)."))
            .into()
    }
}
impl ToSchema for OpenAiInput {}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

/// OpenAI `POST /v1/embeddings`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenAiRequest {
    pub input: OpenAiInput,
    /// Ignored: the loaded model answers (its name is in the response).
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub encoding_format: Option<EncodingFormat>,
    /// Only the model's own dimension (384) is accepted.
    #[serde(default)]
    pub dimensions: Option<usize>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingValue {
    Float(Vec<f32>),
    /// Little-endian f32 bytes, base64 (what OpenAI's Python client asks for by default).
    Base64(String),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiEmbedding {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingValue,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiResponse {
    pub object: &'static str,
    pub data: Vec<OpenAiEmbedding>,
    pub model: String,
    pub usage: OpenAiUsage,
}

/// TEI `POST /similarity`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SimilarityRequest {
    pub inputs: SimilarityInputs,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SimilarityInputs {
    #[schema(max_length = 50_000)]
    pub source_sentence: String,
    #[schema(schema_with = sentences_schema)]
    pub sentences: Vec<String>,
}

fn sentences_schema() -> ArrayBuilder {
    list_of(text_schema("A text."), "Compared with `source_sentence`; with it, at most 64 texts.").max_items(Some(DOC_MAX_INPUTS - 1))
}
