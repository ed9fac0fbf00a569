//! `Embedder`: the one API everything else calls. Opens a snapshot, tokenizes, batches texts
//! into packed chunks, runs the encoder, pools and normalizes. Immutable after load, so one
//! `Embedder` is shared by every request (`Send + Sync`).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::engine::cache::{CacheKey, CacheStats, Cached, EmbedCache};
use crate::engine::chunk::{chunk_spans, ChunkSpan, DEFAULT_OVERLAP};
use crate::engine::kernels::Isa;
use crate::engine::model::{Bert, InputMaxima, ModelError, Scratch};
use crate::engine::pooling;
use crate::engine::snapshot::{Header, Snapshot, SnapshotError, VOCAB_TENSOR};
use crate::engine::tokenizer::{Encoding, Tokenizer, TokenizerError};

/// Tokens per forward pass: bounds activation memory (~15 KB of buffers per token, ~16 MB here)
/// whatever the request size, while keeping matmuls large enough to run at full speed.
pub const MAX_CHUNK_TOKENS: usize = 1024;

/// The server's limit on a scratch kept for the next call (`with_pooled_scratch_limit`): what a
/// [`POOLED_CHUNK_TOKENS`] pass needs (~7.9 MB, and ~0.3 MB of attention buffers per thread), so
/// a server's passes reuse two kept scratches instead of mapping and unmapping fresh ones. A
/// bigger pass (a caller's own `chunk_tokens`) is freed when it ends: kept, scratches grew to the
/// largest chunk they ran, and a server's RSS climbed for minutes as rarer, longer requests
/// arrived (bench/soak.sh: +15 MB between 10 s and 60 s). Batch work (the CLI, index builds,
/// benchmarks) keeps every scratch by default.
pub const MAX_POOLED_SCRATCH_BYTES: usize = 9 << 20;

/// Tokens per forward pass on a server: the largest pass whose buffers fit
/// [`MAX_POOLED_SCRATCH_BYTES`]. With 1,024-token passes, each long request mapped and freed
/// ~16 MB, and RSS swung between 69 and 83 MB from one second to the next under bench/soak.sh;
/// at 512 it rose smoothly. /embed of 32 corpus texts on one thread took the same time either
/// way within this host's noise (medians 722 and 740 ms over four alternating rounds).
pub const POOLED_CHUNK_TOKENS: usize = 512;

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
    /// Worker threads for this call (`None`: the embedder's setting).
    pub threads: Option<usize>,
    /// Compute with kernels whose bits every CPU reproduces (`Isa::reproducible`), bypassing
    /// the cache: for vectors that are stored, such as an index's.
    pub reproducible: bool,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions { normalize: None, truncate: true, chunk_tokens: MAX_CHUNK_TOKENS, threads: None, reproducible: false }
    }
}

/// Smallest chunk worth a thread: below ~64 rows the matmuls lose their efficiency.
const MIN_PARALLEL_CHUNK_TOKENS: usize = 64;

/// How many workers to run, and what decided it (logged at start, shown in `/model-status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workers {
    pub count: usize,
    pub source: String,
}

impl From<usize> for Workers {
    /// A count given explicitly (`--threads`).
    fn from(count: usize) -> Workers {
        Workers { count: count.max(1), source: "--threads".into() }
    }
}

/// Lambda shows 2 vCPUs at every memory size but gives a function CPU time in proportion to its
/// memory: one full vCPU at 1,769 MB (AWS's documented figure). Below that a second worker only
/// contends for the same share.
const LAMBDA_MB_PER_VCPU: f64 = 1769.0;

/// The default worker count: the CPUs this process may use, cut down to whole CPUs of the
/// cgroup v2 quota (`cpu.max`) and of Lambda's memory-proportional share. A fraction of a CPU
/// is not worth a worker, so shares round down (to at least one).
pub fn default_workers() -> Workers {
    let affinity = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cpu_max = std::fs::read_to_string("/sys/fs/cgroup/cpu.max").ok();
    let lambda_mb = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok();
    workers_for(affinity, cpu_max.as_deref(), lambda_mb.as_deref())
}

/// CPUs this process may use (`default_workers().count`).
pub fn available_cpus() -> usize {
    default_workers().count
}

fn workers_for(affinity: usize, cpu_max: Option<&str>, lambda_mb: Option<&str>) -> Workers {
    let mut best = Workers { count: affinity.max(1), source: format!("{affinity} CPUs in the affinity mask") };
    let whole = |cpus: f64| (cpus.floor() as usize).max(1);
    // cgroup v2 `cpu.max` is "QUOTA PERIOD" in µs, or "max PERIOD" for no limit (does not parse).
    let quota = cpu_max.and_then(|s| {
        let mut it = s.split_whitespace();
        let (q, p): (f64, f64) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?);
        (q > 0.0 && p > 0.0).then(|| (q / p, format!("cgroup cpu.max {q} {p} ({:.2} CPUs)", q / p)))
    });
    let lambda = lambda_mb.and_then(|mb| mb.trim().parse::<f64>().ok()).filter(|&mb| mb > 0.0).map(|mb| {
        let share = mb / LAMBDA_MB_PER_VCPU;
        (share, format!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE={mb} MB ({share:.2} vCPU at 1,769 MB per vCPU)"))
    });
    for (cpus, source) in [quota, lambda].into_iter().flatten() {
        if whole(cpus) < best.count {
            best = Workers { count: whole(cpus), source };
        }
    }
    best
}

pub struct Embedder {
    snapshot: Snapshot,
    tokenizer: Tokenizer,
    model: Bert,
    isa: Isa,
    threads: usize,
    load_times: LoadTimes,
    /// Scratch buffers of finished calls, reused by the next ones: a fresh 128-token forward
    /// spent ~5% of its time in page faults on newly mapped buffers. At most one per worker
    /// thread is kept, each of at most `scratch_limit` bytes.
    scratch: Mutex<Vec<Scratch>>,
    scratch_limit: usize,
    /// Finished vectors by text; off unless `with_cache` sets a size (the service does).
    cache: EmbedCache,
}

/// Vectors and what they cost.
#[derive(Debug, Clone, Default)]
pub struct Embedded {
    /// One per text, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens of all the texts, special tokens included (cache hits too).
    pub tokens: usize,
    /// Texts answered from the cache.
    pub cache_hits: usize,
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
        let threads = available_cpus();
        Ok(Embedder { snapshot, tokenizer, model, isa: Isa::detect(), threads, load_times, scratch: Mutex::default(), scratch_limit: usize::MAX, cache: EmbedCache::new(0) })
    }

    /// Sets the worker threads a call may use (default: the CPUs this process may use).
    pub fn with_threads(mut self, threads: usize) -> Embedder {
        self.threads = threads.max(1);
        self
    }

    /// Runs the matmuls on `isa` (default: `Isa::detect()`), which must come from
    /// `Isa::available()`.
    pub fn with_isa(mut self, isa: Isa) -> Embedder {
        assert!(Isa::available().contains(&isa), "{isa:?} is not available on this CPU");
        self.isa = isa;
        self
    }

    /// Keeps up to `entries` finished vectors (0: none, the default). Off by default so that
    /// one-shot CLI runs and the engine benchmarks, which repeat their texts, compute every
    /// vector; the service turns it on (`--embed-cache-entries`, default 2,000).
    pub fn with_cache(mut self, entries: usize) -> Embedder {
        self.cache = EmbedCache::new(entries);
        self
    }

    /// Frees, instead of keeping for the next call, scratch buffers over `bytes` (the server
    /// uses [`MAX_POOLED_SCRATCH_BYTES`]); by default every one is kept.
    pub fn with_pooled_scratch_limit(mut self, bytes: usize) -> Embedder {
        self.scratch_limit = bytes;
        self
    }

    /// Bytes of the forward-pass buffers kept for the next call, and the size over which one is
    /// freed instead (`None`: every one is kept).
    pub fn pooled_scratch(&self) -> (usize, Option<usize>) {
        let kept = self.scratch.lock().unwrap_or_else(|e| e.into_inner()).iter().map(Scratch::bytes).sum();
        (kept, (self.scratch_limit != usize::MAX).then_some(self.scratch_limit))
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Drops the least recently used half of the cache (the memory guard's standard level);
    /// returns the entries dropped.
    pub fn shrink_cache_to_half(&self) -> usize {
        self.cache.shrink_to_half()
    }

    /// Empties the cache; returns the entries dropped.
    pub fn clear_cache(&self) -> usize {
        self.cache.clear()
    }

    pub fn threads(&self) -> usize {
        self.threads
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

    /// Tokenizes as the model does (`[CLS] … [SEP]`, truncated).
    pub fn tokenize(&self, text: &str) -> Encoding {
        self.tokenizer.encode(text)
    }

    /// Overlapping windows of `text` that each fit the model untruncated (see [`crate::engine::chunk`]).
    pub fn chunk(&self, text: &str) -> Vec<ChunkSpan> {
        let window = self.tokenizer.max_len() - 2; // [CLS] and [SEP]
        chunk_spans(&self.tokenizer, text, window, DEFAULT_OVERLAP)
    }

    /// Embeds texts with the model's own settings; one vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with(texts, EmbedOptions::default())
    }

    pub fn embed_with(&self, texts: &[&str], options: EmbedOptions) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(self.embed_counted(texts, options)?.vectors)
    }

    /// Embeds texts through the cache: hits are copied, only the misses are tokenized and run.
    /// Also counts the tokens (what OpenAI's `usage` reports).
    pub fn embed_counted(&self, texts: &[&str], options: EmbedOptions) -> Result<Embedded, EmbedError> {
        if !self.cache.enabled() || options.reproducible {
            let encodings = self.encode_all(texts, options.truncate)?;
            let tokens = encodings.iter().map(|e| e.ids.len()).sum();
            return Ok(Embedded { vectors: self.embed_encoded(&encodings, options), tokens, cache_hits: 0 });
        }
        let normalize = options.normalize.unwrap_or(self.header().embedding.normalize);
        let keys: Vec<CacheKey> = texts.iter().map(|t| self.cache.key(t, normalize, options.truncate)).collect();
        let found = self.cache.get_many(&keys);
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| found[i].is_none()).collect();
        let miss_texts: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
        let encodings = self.encode_all(&miss_texts, options.truncate).map_err(|e| match e {
            EmbedError::TooLong { index, tokens, max } => EmbedError::TooLong { index: missing[index], tokens, max },
            e => e,
        })?;
        let computed = self.embed_encoded(&encodings, options);
        let fresh: Vec<Cached> = computed
            .iter()
            .zip(&encodings)
            .map(|(v, e)| Cached { vector: Arc::from(v.as_slice()), tokens: e.ids.len() as u32 })
            .collect();
        self.cache.insert_many(missing.iter().map(|&i| keys[i]).zip(fresh));
        let cache_hits = texts.len() - missing.len();
        let mut tokens = encodings.iter().map(|e| e.ids.len()).sum::<usize>();
        let mut computed = computed.into_iter();
        let vectors = found
            .into_iter()
            .map(|hit| match hit {
                Some(c) => {
                    tokens += c.tokens as usize;
                    c.vector.to_vec()
                }
                None => computed.next().unwrap_or_default(),
            })
            .collect();
        Ok(Embedded { vectors, tokens, cache_hits })
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

    /// Runs the model over already tokenized texts. Texts are packed into chunks of whole texts
    /// (no padding); with several threads, workers take chunks in turn, each with its own
    /// scratch, and a single chunk splits its forward pass among them instead. A text's vector
    /// depends neither on its chunk nor on the split, so results are the same bits whatever the
    /// thread count.
    pub fn embed_encoded(&self, encodings: &[Encoding], options: EmbedOptions) -> Vec<Vec<f32>> {
        let threads = options.threads.unwrap_or(self.threads).max(1);
        let total: usize = encodings.iter().map(|e| e.ids.len()).sum();
        let mut budget = options.chunk_tokens.max(1);
        if threads > 1 {
            // Several chunks per worker, so uneven lengths still balance.
            budget = budget.min(total.div_ceil(threads * 4).max(MIN_PARALLEL_CHUNK_TOKENS));
        }
        let mut chunks: Vec<std::ops::Range<usize>> = Vec::new();
        let (mut start, mut tokens) = (0, 0);
        for (i, enc) in encodings.iter().enumerate() {
            if i > start && tokens + enc.ids.len() > budget {
                chunks.push(start..i);
                (start, tokens) = (i, 0);
            }
            tokens += enc.ids.len();
        }
        if start < encodings.len() {
            chunks.push(start..encodings.len());
        }
        let workers = threads.min(chunks.len());
        if workers <= 1 {
            // One chunk (or one thread): its forward pass splits its rows among the threads.
            let mut scratch = self.take_scratch();
            let vectors = chunks.into_iter().flat_map(|c| self.run_chunk(&encodings[c], options, &mut scratch, threads)).collect();
            self.return_scratch(scratch);
            return vectors;
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut done: Vec<(usize, Vec<Vec<f32>>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    s.spawn(|| {
                        let mut scratch = self.take_scratch();
                        let mut mine = Vec::new();
                        while let Some(c) = chunks.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                            mine.push((c.start, self.run_chunk(&encodings[c.clone()], options, &mut scratch, 1)));
                        }
                        self.return_scratch(scratch);
                        mine
                    })
                })
                .collect();
            // A worker can only panic on a bug; re-raise it here rather than lose vectors.
            handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        });
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().flat_map(|(_, v)| v).collect()
    }

    /// Runs the model over `texts` (each cut at the token limit) on one thread, recording per
    /// channel the largest magnitude each layer's QKV projection and feed-forward read:
    /// model-prep's calibration, on the f32 snapshot.
    pub fn input_maxima(&self, texts: &[&str]) -> InputMaxima {
        let mut maxima = InputMaxima::default();
        let mut scratch = Scratch::default();
        let encodings: Vec<Encoding> = texts.iter().map(|text| self.tokenizer.encode(text)).collect();
        for enc in encodings.chunks(32) {
            let seqs: Vec<&[u32]> = enc.iter().map(|e| e.ids.as_slice()).collect();
            self.model.record_input_maxima(&self.snapshot, self.isa, &seqs, &mut scratch, &mut maxima);
        }
        maxima
    }

    /// Frees the scratch buffers kept from earlier calls (the API does so under memory
    /// pressure); returns the bytes they held.
    pub fn release_scratch(&self) -> usize {
        let pool = std::mem::take(&mut *self.scratch.lock().unwrap_or_else(|e| e.into_inner()));
        pool.iter().map(Scratch::bytes).sum()
    }

    fn take_scratch(&self) -> Scratch {
        self.scratch.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default()
    }

    fn return_scratch(&self, scratch: Scratch) {
        if scratch.bytes() > self.scratch_limit {
            return;
        }
        let mut pool = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < self.threads {
            pool.push(scratch);
        }
    }

    /// One forward pass over a chunk of texts, on up to `threads` threads; one pooled vector per
    /// text.
    fn run_chunk(&self, chunk: &[Encoding], options: EmbedOptions, scratch: &mut Scratch, threads: usize) -> Vec<Vec<f32>> {
        let header = self.snapshot.header();
        let normalize = options.normalize.unwrap_or(header.embedding.normalize);
        let dim = self.dimensions();
        let seqs: Vec<&[u32]> = chunk.iter().map(|e| e.ids.as_slice()).collect();
        let isa = if options.reproducible { self.isa.reproducible() } else { self.isa };
        self.model.forward(&self.snapshot, isa, &seqs, scratch, threads);
        let mut start = 0;
        seqs.iter()
            .map(|seq| {
                let hidden = &scratch.x[start * dim..(start + seq.len()) * dim];
                let mut v = vec![0f32; dim];
                pooling::pool(hidden, dim, header.embedding.pooling, &mut v);
                if normalize {
                    pooling::l2_normalize(&mut v);
                }
                start += seq.len();
                v
            })
            .collect()
    }
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("snapshot", &self.snapshot).field("isa", &self.isa).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_fit_the_cgroup_quota_and_lambdas_cpu_share() {
        let w = workers_for(2, None, None);
        assert_eq!((w.count, w.source.as_str()), (2, "2 CPUs in the affinity mask"));
        assert_eq!(workers_for(2, Some("max 100000\n"), None).count, 2, "\"max\" is no quota");
        let w = workers_for(8, Some("150000 100000\n"), None);
        assert_eq!(w.count, 1, "1.5 CPUs: half a CPU is not worth a worker");
        assert!(w.source.starts_with("cgroup cpu.max"), "{}", w.source);
        assert_eq!(workers_for(8, Some("400000 100000"), None).count, 4);
        assert_eq!(workers_for(8, Some("20000 100000"), None).count, 1, "a fraction still gets one");
        // Lambda: 2 vCPUs visible at every size, one full vCPU at 1,769 MB.
        for (mb, want) in [("128", 1), ("1024", 1), ("1769", 1), ("3008", 1), ("3538", 2), ("10240", 2)] {
            let w = workers_for(2, None, Some(mb));
            assert_eq!(w.count, want, "{mb} MB");
            let from_lambda = w.source.starts_with("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
            assert_eq!(from_lambda, want < 2, "{mb} MB: {}", w.source);
        }
        assert_eq!(workers_for(6, None, Some("10240")).count, 5, "10,240 MB is 5.8 vCPUs");
        assert_eq!(workers_for(2, None, Some("lots")).count, 2, "an unparsable size is ignored");
        assert_eq!(workers_for(4, Some("300000 100000"), Some("1024")).count, 1, "the tightest wins");
    }
}
