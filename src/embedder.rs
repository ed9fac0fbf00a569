//! `Embedder`: the one API everything else calls. Opens a snapshot, tokenizes, batches texts
//! into packed chunks, runs the encoder, pools and normalizes. Immutable after load, so one
//! `Embedder` is shared by every request (`Send + Sync`).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::kernels::Isa;
use crate::model::{Bert, ModelError, Scratch};
use crate::pooling;
use crate::snapshot::{Header, Snapshot, SnapshotError, VOCAB_TENSOR};
use crate::tokenizer::{Encoding, Tokenizer, TokenizerError};

/// Tokens per forward pass: bounds activation memory (~15 KB of buffers per token, ~16 MB here)
/// whatever the request size, while keeping matmuls large enough to run at full speed.
pub const MAX_CHUNK_TOKENS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("snapshot tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("input {index} has {tokens} tokens, more than the model's maximum of {max}")]
    TooLong { index: usize, tokens: usize, max: usize },
}

/// How long each start-up phase took.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTimes {
    /// Mapping the file and checking its header, table and checksum.
    pub open: Duration,
    /// Indexing the vocabulary.
    pub tokenizer: Duration,
    /// Resolving and checking the plan's tensors.
    pub model: Duration,
}

impl LoadTimes {
    pub fn total(&self) -> Duration {
        self.open + self.tokenizer + self.model
    }
}

/// Per-call choices; `Default` follows the snapshot's own pipeline.
#[derive(Debug, Clone, Copy)]
pub struct EmbedOptions {
    /// L2-normalize (`None`: as the model's pipeline does).
    pub normalize: Option<bool>,
    /// Cut texts longer than the maximum; `false` makes them an error.
    pub truncate: bool,
    /// Tokens per forward pass (activation memory is ~15 KB per token); smaller under memory
    /// pressure.
    pub chunk_tokens: usize,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions { normalize: None, truncate: true, chunk_tokens: MAX_CHUNK_TOKENS }
    }
}

pub struct Embedder {
    snapshot: Snapshot,
    tokenizer: Tokenizer,
    model: Bert,
    isa: Isa,
    load_times: LoadTimes,
}

impl Embedder {
    /// Maps and validates a snapshot file.
    pub fn from_snapshot(path: &Path) -> Result<Embedder, EmbedError> {
        let t = Instant::now();
        let snapshot = Snapshot::open(path)?;
        Self::with_snapshot(snapshot, t.elapsed())
    }

    /// Uses a snapshot compiled into the binary (64-byte aligned).
    pub fn from_static(bytes: &'static [u8]) -> Result<Embedder, EmbedError> {
        let t = Instant::now();
        let snapshot = Snapshot::from_static(bytes, "embedded")?;
        Self::with_snapshot(snapshot, t.elapsed())
    }

    fn with_snapshot(snapshot: Snapshot, open: Duration) -> Result<Embedder, EmbedError> {
        let header = snapshot.header();
        let t = Instant::now();
        let vocab = snapshot.tensor(VOCAB_TENSOR)?.bytes;
        let tokenizer = Tokenizer::new(
            vocab,
            header.config.vocab_size as usize,
            header.tokenizer.clone(),
            header.embedding.max_seq_length as usize,
        )?;
        let tokenizer_time = t.elapsed();
        let t = Instant::now();
        let model = Bert::load(&snapshot)?;
        let load_times = LoadTimes { open, tokenizer: tokenizer_time, model: t.elapsed() };
        Ok(Embedder { snapshot, tokenizer, model, isa: Isa::detect(), load_times })
    }

    pub fn header(&self) -> &Header {
        self.snapshot.header()
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn load_times(&self) -> LoadTimes {
        self.load_times
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    pub fn dimensions(&self) -> usize {
        self.model.dims.hidden
    }

    pub fn max_tokens(&self) -> usize {
        self.tokenizer.max_len()
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Tokenizes as the model does (`[CLS] … [SEP]`, truncated).
    pub fn tokenize(&self, text: &str) -> Encoding {
        self.tokenizer.encode(text)
    }

    /// Embeds texts with the model's own settings; one vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with(texts, EmbedOptions::default())
    }

    pub fn embed_with(&self, texts: &[&str], options: EmbedOptions) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self.encode_all(texts, options.truncate)?;
        Ok(self.embed_encoded(&encodings, options))
    }

    /// Tokenizes every text; with `truncate == false` a text over the limit is an error.
    pub fn encode_all(&self, texts: &[&str], truncate: bool) -> Result<Vec<Encoding>, EmbedError> {
        texts
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let enc = self.tokenizer.encode(text);
                if !truncate && enc.truncated() {
                    return Err(EmbedError::TooLong { index, tokens: enc.untruncated_len, max: self.max_tokens() });
                }
                Ok(enc)
            })
            .collect()
    }

    /// Runs the model over already tokenized texts.
    pub fn embed_encoded(&self, encodings: &[Encoding], options: EmbedOptions) -> Vec<Vec<f32>> {
        let header = self.snapshot.header();
        let normalize = options.normalize.unwrap_or(header.embedding.normalize);
        let dim = self.dimensions();
        let mut out = Vec::with_capacity(encodings.len());
        let mut scratch = Scratch::default();
        let mut chunk: Vec<&[u32]> = Vec::new();
        let mut chunk_tokens = 0;
        let mut flush = |chunk: &mut Vec<&[u32]>, out: &mut Vec<Vec<f32>>| {
            if chunk.is_empty() {
                return;
            }
            self.model.forward(&self.snapshot, self.isa, chunk, &mut scratch);
            let mut start = 0;
            for seq in chunk.iter() {
                let hidden = &scratch.x[start * dim..(start + seq.len()) * dim];
                let mut v = vec![0f32; dim];
                pooling::pool(hidden, dim, header.embedding.pooling, &mut v);
                if normalize {
                    pooling::l2_normalize(&mut v);
                }
                out.push(v);
                start += seq.len();
            }
            chunk.clear();
        };
        for enc in encodings {
            if chunk_tokens + enc.ids.len() > options.chunk_tokens.max(1) {
                flush(&mut chunk, &mut out);
                chunk_tokens = 0;
            }
            chunk.push(&enc.ids);
            chunk_tokens += enc.ids.len();
        }
        flush(&mut chunk, &mut out);
        out
    }
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("snapshot", &self.snapshot).field("isa", &self.isa).finish()
    }
}
