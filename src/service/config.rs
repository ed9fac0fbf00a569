//! Service configuration: CLI flags with `SNAPEMBED_*` (and `PORT`) environment equivalents,
//! parsed and validated once before anything is loaded.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::engine::kernels::Isa;

/// Request limits; every one is enforced before any model work starts.
#[derive(Debug, Clone, Copy, Args)]
pub struct Limits {
    /// Most texts in one request.
    #[arg(long, env = "SNAPEMBED_MAX_INPUTS", default_value_t = 64)]
    pub max_inputs: usize,
    /// Most characters in one text.
    #[arg(long, env = "SNAPEMBED_MAX_TEXT_CHARS", default_value_t = 50_000)]
    pub max_text_chars: usize,
    /// Largest request body in bytes.
    #[arg(long, env = "SNAPEMBED_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Requests admitted at once (running or waiting); more get 429.
    #[arg(long, env = "SNAPEMBED_MAX_INFLIGHT", default_value_t = 128)]
    pub max_inflight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_inputs: 64, max_text_chars: 50_000, max_body_bytes: 2 * 1024 * 1024, max_inflight: 128 }
    }
}

/// The resume scorer's settings (`/score`, `/rank`).
#[derive(Debug, Clone, Copy, Args)]
pub struct ScoreConfig {
    /// Most resumes in one /rank request; more get 413.
    #[arg(long, env = "SNAPEMBED_MAX_RESUMES", default_value_t = 100)]
    pub max_resumes: usize,
    /// Texts per embedding call when scoring (memory is bounded per forward pass either way).
    #[arg(long, env = "SNAPEMBED_SCORE_BATCH", default_value_t = 32)]
    pub score_batch: usize,
    /// Default score weights, e.g. "requirements=0.6,skills=0.3,similarity=0.1,must=1,nice=0.5"
    /// (the names and formula are in the README; a request's "weights" overrides them).
    #[arg(long, env = "SNAPEMBED_SCORE_WEIGHTS", value_parser = crate::scorer::Weights::parse_pairs)]
    pub score_weights: Option<crate::scorer::Weights>,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig { max_resumes: 100, score_batch: 32, score_weights: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Snapshot file to map (ignored when the binary carries an embedded snapshot and this is unset).
    #[arg(long, env = "SNAPEMBED_SNAPSHOT")]
    pub snapshot: Option<PathBuf>,
    /// Corpus index to map for /search (built by `snapembed index`) [default: the index compiled
    /// into the binary, if any].
    #[arg(long, env = "SNAPEMBED_CORPUS")]
    pub corpus: Option<PathBuf>,
    /// Address to bind.
    #[arg(long, env = "SNAPEMBED_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Port to bind.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Texts embedded at once (default: the whole CPUs this process may use: affinity, cgroup
    /// quota, and on Lambda the vCPU share of its memory).
    #[arg(long, env = "SNAPEMBED_THREADS")]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub kernels: KernelArg,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub scoring: ScoreConfig,
    /// Memory budget in MB (default: the container's limit — cgroup memory.max or Lambda's size).
    #[arg(long, env = "SNAPEMBED_MEMORY_LIMIT_MB")]
    pub memory_limit_mb: Option<u64>,
    /// Embeddings kept in the LRU cache in front of the model (0 disables it).
    #[arg(long, env = "SNAPEMBED_EMBED_CACHE_ENTRIES", default_value_t = crate::engine::cache::DEFAULT_ENTRIES)]
    pub embed_cache_entries: usize,
    #[arg(long, env = "SNAPEMBED_LOG_FORMAT", value_enum, default_value = "plain")]
    pub log_format: LogFormat,
}

impl ServeConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Rejects settings that would make the service unusable.
    pub fn validate(&self) -> Result<(), String> {
        let l = &self.limits;
        if l.max_inputs == 0 || l.max_text_chars == 0 || l.max_body_bytes < 64 || l.max_inflight == 0 {
            return Err("limits must be positive (max body at least 64 bytes)".into());
        }
        if self.scoring.max_resumes == 0 || self.scoring.score_batch == 0 {
            return Err("--max-resumes and --score-batch must be at least 1".into());
        }
        if self.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        self.kernels.resolve()?;
        Ok(())
    }
}

/// Which matmul kernels to run.
#[derive(Debug, Clone, Args)]
pub struct KernelArg {
    /// Matmul kernels: auto (the fastest this CPU runs), exact (the fastest with f32
    /// activations), or by name: avx512vnni (int8 activations), avx512f, avx2+fma, portable
    /// [default: auto].
    #[arg(long, env = "SNAPEMBED_KERNELS")]
    pub kernels: Option<String>,
}

impl KernelArg {
    /// The kernels asked for (`None`: the default); an error names the ones this CPU can run.
    pub fn resolve(&self) -> Result<Option<Isa>, String> {
        let found = match self.kernels.as_deref() {
            None | Some("auto") => return Ok(None),
            Some("exact") => Some(Isa::detect_exact()),
            Some(name) => Isa::by_name(name),
        };
        found.map(Some).ok_or_else(|| {
            let names: Vec<&str> = Isa::available().into_iter().map(Isa::name).collect();
            let name = self.kernels.as_deref().unwrap_or_default();
            format!("kernels {name:?} are not available on this CPU (available: auto, exact, {})", names.join(", "))
        })
    }

    /// Switches `embedder` to the kernels asked for.
    pub fn apply(&self, embedder: crate::Embedder) -> Result<crate::Embedder, String> {
        Ok(match self.resolve()? {
            Some(isa) => embedder.with_isa(isa),
            None => embedder,
        })
    }
}
