//! Reading a sentence-transformers model directory: config.json, sentence_bert_config.json,
//! 1_Pooling/config.json, modules.json, tokenizer.json and model.safetensors. Checkpoint names
//! (`encoder.layer.N.attention.self.query.weight`, …) are resolved here and nowhere else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tract_onnx::prelude::Framework;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use snapembed::engine::snapshot::{BertConfig, EmbeddingSettings, Pooling, TokenizerSettings};

/// A float tensor in row-major order.
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    /// The transpose of a 2-D array (torch `Linear` stores `[out, in]`; the plan wants `[in, out]`).
    pub fn transposed(&self) -> Array {
        let (r, c) = (self.shape[0], self.shape[1]);
        let mut data = vec![0f32; r * c];
        for i in 0..r {
            for j in 0..c {
                data[j * r + i] = self.data[i * c + j];
            }
        }
        Array { shape: vec![c, r], data }
    }
}

/// Everything model-prep needs from the source, in checkpoint-independent form.
pub struct SourceModel {
    pub name: String,
    pub kind: &'static str,
    pub files: Vec<(String, String)>,
    pub source_bytes: u64,
    pub config: BertConfig,
    pub embedding: EmbeddingSettings,
    pub tokenizer: TokenizerSettings,
    /// Tokens by id.
    pub vocab: Vec<String>,
    pub tensors: BTreeMap<String, Array>,
}

impl SourceModel {
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<&Array> {
        let t = self.tensors.get(name).with_context(|| format!("the checkpoint has no tensor {name}"))?;
        if t.shape != shape {
            bail!("tensor {name} has shape {:?}, a BERT with this config needs {shape:?}", t.shape);
        }
        Ok(t)
    }
}

#[derive(Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    vocab_size: u32,
    hidden_size: u32,
    num_hidden_layers: u32,
    num_attention_heads: u32,
    intermediate_size: u32,
    max_position_embeddings: u32,
    type_vocab_size: u32,
    layer_norm_eps: f32,
    hidden_act: String,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

#[derive(Deserialize)]
struct StConfig {
    max_seq_length: u32,
}

#[derive(Deserialize)]
struct PoolingConfig {
    word_embedding_dimension: u32,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

/// Files read, with their digests, so the snapshot records its exact source.
struct Digests {
    dir: PathBuf,
    files: Vec<(String, String)>,
    bytes: u64,
}

impl Digests {
    fn read(&mut self, rel: &str) -> Result<Vec<u8>> {
        let path = self.dir.join(rel);
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        self.files.push((rel.to_owned(), hex(&Sha256::digest(&bytes))));
        self.bytes += bytes.len() as u64;
        Ok(bytes)
    }

    fn json<T: for<'de> Deserialize<'de>>(&mut self, rel: &str) -> Result<T> {
        let bytes = self.read(rel)?;
        serde_json::from_slice(&bytes).with_context(|| format!("{rel} is not the JSON expected"))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the weights come from; the settings always come from the model directory.
pub enum Weights<'a> {
    /// `model.safetensors` in the model directory.
    Safetensors,
    /// An ONNX export of the same model (e.g. a hub repository's `onnx/model.onnx`).
    Onnx(&'a Path),
}

pub fn read_sentence_transformers(dir: &Path, name: &str, weights: Weights) -> Result<SourceModel> {
    let mut d = Digests { dir: dir.to_owned(), files: Vec::new(), bytes: 0 };
    let hf: HfConfig = d.json("config.json")?;
    if hf.model_type.as_deref().is_some_and(|t| t != "bert") {
        bail!("config.json model_type is {:?}: only BERT-family encoders are supported", hf.model_type);
    }
    if hf.hidden_act != "gelu" {
        bail!("hidden_act {:?} is not supported (only exact-erf \"gelu\")", hf.hidden_act);
    }
    if hf.position_embedding_type.as_deref().is_some_and(|t| t != "absolute") {
        bail!("position_embedding_type {:?} is not supported", hf.position_embedding_type);
    }
    let st: StConfig = d.json("sentence_bert_config.json")?;
    let pooling: PoolingConfig = d.json("1_Pooling/config.json")?;
    let modules: Vec<Module> = d.json("modules.json")?;
    let normalize = modules.iter().any(|m| m.kind.ends_with(".Normalize"));
    let pooling_mode = match (
        pooling.pooling_mode_mean_tokens,
        pooling.pooling_mode_cls_token,
        pooling.pooling_mode_max_tokens || pooling.pooling_mode_mean_sqrt_len_tokens,
    ) {
        (true, false, false) => Pooling::Mean,
        (false, true, false) => Pooling::Cls,
        _ => bail!("1_Pooling/config.json: only mean or CLS pooling alone is supported"),
    };
    if pooling.word_embedding_dimension != hf.hidden_size {
        bail!("pooling dimension {} differs from hidden size {}", pooling.word_embedding_dimension, hf.hidden_size);
    }
    let (tokenizer, vocab) = read_tokenizer(&mut d)?;
    if vocab.len() != hf.vocab_size as usize {
        bail!("tokenizer.json has {} tokens, config.json says {}", vocab.len(), hf.vocab_size);
    }
    let (kind, tensors) = match weights {
        Weights::Safetensors => {
            // The checkpoint becomes a graph and takes the same road through tract as an export.
            let checkpoint = read_safetensors(&d.read("model.safetensors")?)?;
            let config = bert_config(&hf);
            let proto = crate::graph::bert_graph(&config, &checkpoint)?;
            let model = tract_onnx::onnx().model_for_proto_model(&proto).context("tract rejects the generated graph")?;
            let mut tensors = crate::onnx::read_graph(model)?;
            for (name, want) in &checkpoint {
                match tensors.get(name) {
                    // The round trip through the graph must give the checkpoint back exactly.
                    Some(got) if got.shape != want.shape || got.data != want.data => {
                        bail!("{name} changed on its way through the graph: a model-prep bug")
                    }
                    Some(_) => {}
                    // tract folds away what has no effect on the graph (a LayerNorm scale of
                    // exactly 1, say): the checkpoint still has it.
                    None => {
                        tensors.insert(name.clone(), Array { shape: want.shape.clone(), data: want.data.clone() });
                    }
                }
            }
            ("sentence-transformers", tensors)
        }
        Weights::Onnx(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            d.files.push((file, hex(&Sha256::digest(&bytes))));
            d.bytes += bytes.len() as u64;
            ("onnx", crate::onnx::read_onnx(&bytes)?)
        }
    };
    d.files.sort();
    Ok(SourceModel {
        name: name.to_owned(),
        kind,
        files: d.files,
        source_bytes: d.bytes,
        config: bert_config(&hf),
        embedding: EmbeddingSettings {
            max_seq_length: st.max_seq_length,
            pooling: pooling_mode,
            normalize,
            dimensions: hf.hidden_size,
        },
        tokenizer,
        vocab,
        tensors,
    })
}

fn bert_config(hf: &HfConfig) -> BertConfig {
    BertConfig {
        vocab_size: hf.vocab_size,
        hidden_size: hf.hidden_size,
        num_hidden_layers: hf.num_hidden_layers,
        num_attention_heads: hf.num_attention_heads,
        intermediate_size: hf.intermediate_size,
        max_position_embeddings: hf.max_position_embeddings,
        type_vocab_size: hf.type_vocab_size,
        layer_norm_eps: hf.layer_norm_eps,
    }
}

fn read_safetensors(raw: &[u8]) -> Result<BTreeMap<String, Array>> {
    let st_file = safetensors::SafeTensors::deserialize(raw).context("model.safetensors is not a safetensors file")?;
    let mut tensors = BTreeMap::new();
    for (tname, view) in st_file.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            continue; // e.g. the int64 position_ids buffer
        }
        let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        tensors.insert(checkpoint_name(&tname).to_owned(), Array { shape: view.shape().to_vec(), data });
    }
    Ok(tensors)
}

/// The BERT module path of a tensor name: exports prefix it ("bert.", "inner.", "model.").
pub fn checkpoint_name(name: &str) -> &str {
    ["embeddings.", "encoder.", "pooler."]
        .iter()
        .filter_map(|root| name.find(root).map(|at| &name[at..]))
        .next()
        .unwrap_or(name)
}

#[derive(Deserialize)]
struct TokenizerJson {
    normalizer: Option<NormalizerJson>,
    pre_tokenizer: Option<TypeOnly>,
    model: WordPieceJson,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct NormalizerJson {
    #[serde(rename = "type")]
    kind: String,
    clean_text: bool,
    handle_chinese_chars: bool,
    strip_accents: Option<bool>,
    lowercase: bool,
}

#[derive(Deserialize)]
struct WordPieceJson {
    #[serde(rename = "type")]
    kind: String,
    unk_token: String,
    continuing_subword_prefix: String,
    max_input_chars_per_word: u32,
    vocab: BTreeMap<String, u32>,
}

#[derive(Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
    #[serde(default)]
    normalized: bool,
}

/// Reads a BERT WordPiece tokenizer.json into the snapshot's settings and a vocabulary by id.
/// Truncation and padding in the file are ignored: sentence-transformers overrides them.
pub(crate) fn read_tokenizer_file(bytes: &[u8]) -> Result<(TokenizerSettings, Vec<String>)> {
    let t: TokenizerJson = serde_json::from_slice(bytes).context("tokenizer.json is not a tokenizers file")?;
    let norm = t.normalizer.context("tokenizer.json has no normalizer (a BertNormalizer is expected)")?;
    if norm.kind != "BertNormalizer" {
        bail!("normalizer {} is not supported (BertNormalizer only)", norm.kind);
    }
    match t.pre_tokenizer {
        Some(p) if p.kind == "BertPreTokenizer" => {}
        _ => bail!("only the BertPreTokenizer pre-tokenizer is supported"),
    }
    if t.model.kind != "WordPiece" {
        bail!("tokenizer model {} is not supported (WordPiece only)", t.model.kind);
    }
    let mut vocab = vec![String::new(); t.model.vocab.len()];
    for (tok, id) in &t.model.vocab {
        let slot = vocab.get_mut(*id as usize).context("tokenizer.json vocabulary ids are not 0..n")?;
        if tok.contains('\n') {
            bail!("vocabulary token {tok:?} contains a newline");
        }
        *slot = tok.clone();
    }
    let id = |tok: &str| t.model.vocab.get(tok).copied().with_context(|| format!("the vocabulary has no {tok}"));
    let special_tokens = t.added_tokens.iter().filter(|a| !a.normalized).map(|a| (a.content.clone(), a.id)).collect();
    let settings = TokenizerSettings {
        clean_text: norm.clean_text,
        handle_chinese_chars: norm.handle_chinese_chars,
        // HF: strip_accents unset follows lowercase.
        strip_accents: norm.strip_accents.unwrap_or(norm.lowercase),
        lowercase: norm.lowercase,
        continuing_subword_prefix: t.model.continuing_subword_prefix.clone(),
        max_input_chars_per_word: t.model.max_input_chars_per_word,
        unk_id: id(&t.model.unk_token)?,
        cls_id: id("[CLS]")?,
        sep_id: id("[SEP]")?,
        pad_id: id("[PAD]")?,
        special_tokens,
    };
    Ok((settings, vocab))
}

fn read_tokenizer(d: &mut Digests) -> Result<(TokenizerSettings, Vec<String>)> {
    let bytes = d.read("tokenizer.json")?;
    read_tokenizer_file(&bytes)
}
