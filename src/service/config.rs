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
    #[command(flatten)]
    pub search_db: crate::search::postgres::PgArgs,
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
    /// Embeddings kept in the LRU cache in front of the model (0 disables it).
    #[arg(long, env = "SNAPEMBED_EMBED_CACHE_ENTRIES", default_value_t = crate::engine::cache::DEFAULT_ENTRIES)]
    pub embed_cache_entries: usize,
    #[command(flatten)]
    pub memory: crate::service::memory::MemoryArgs,
    #[arg(long, env = "SNAPEMBED_LOG_FORMAT", value_enum, default_value = "plain")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub tally: TallyArgs,
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
        self.tally.settings(&self.limits)?;
        self.memory.thresholds().map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The Tally webhook (`POST /webhook/tally`).
#[derive(Debug, Clone, Args)]
pub struct TallyArgs {
    /// The signing secret set on the webhook in Tally; deliveries must then carry a valid
    /// Tally-Signature. Unset: unsigned deliveries are accepted (a warning is logged at start).
    #[arg(long, env = "TALLY_SIGNING_SECRET", hide_env_values = true)]
    pub tally_signing_secret: Option<String>,
    /// Fields whose answers are searched, by key or label, comma-separated [default: every
    /// text-like answer, each prefixed with its label].
    #[arg(long, env = "SNAPEMBED_TALLY_FIELDS", value_delimiter = ',')]
    pub tally_fields: Vec<String>,
    /// Matches returned (and forwarded) per submission.
    #[arg(long, env = "SNAPEMBED_TALLY_TOP_K", default_value_t = 5)]
    pub tally_top_k: usize,
    /// POST each enriched submission here, with Idempotency-Key: <eventId>.
    #[arg(long, env = "SNAPEMBED_FORWARD_URL")]
    pub forward_url: Option<String>,
    /// One forward attempt's timeout.
    #[arg(long, env = "SNAPEMBED_FORWARD_TIMEOUT_MS", default_value_t = 3000)]
    pub forward_timeout_ms: u64,
    /// Forward attempts after the first (connection errors, timeouts, 408, 429, 5xx).
    #[arg(long, env = "SNAPEMBED_FORWARD_RETRIES", default_value_t = 2)]
    pub forward_retries: u32,
    /// Wait before the first retry, doubled after each.
    #[arg(long, env = "SNAPEMBED_FORWARD_BACKOFF_MS", default_value_t = 200)]
    pub forward_backoff_ms: u64,
    /// Answer 200 when the forward failed, so Tally does not redeliver [default: 502, so it does].
    #[arg(long, env = "SNAPEMBED_FORWARD_FAILURE_ACK", default_value_t = false, action = clap::ArgAction::Set)]
    pub forward_failure_ack: bool,
    /// Time from a delivery's arrival to its answer, forwarding included (Tally waits 10 s).
    #[arg(long, env = "SNAPEMBED_TALLY_BUDGET_MS", default_value_t = 8000)]
    pub tally_budget_ms: u64,
    /// Deliveries remembered per instance, so a redelivered eventId is answered the same and
    /// not forwarded again.
    #[arg(long, env = "SNAPEMBED_TALLY_REMEMBER", default_value_t = 4096)]
    pub tally_remember: usize,
}

impl TallyArgs {
    pub fn settings(&self, limits: &Limits) -> Result<crate::tally::Settings, String> {
        use std::time::Duration;
        let ms = Duration::from_millis;
        if self.tally_top_k == 0 || self.tally_top_k > 100 {
            return Err("--tally-top-k must be between 1 and 100".into());
        }
        if self.tally_budget_ms == 0 || self.tally_budget_ms > 30_000 {
            return Err("--tally-budget-ms must be between 1 and 30000 (Tally gives up after 10000)".into());
        }
        if self.forward_timeout_ms == 0 {
            return Err("--forward-timeout-ms must be positive".into());
        }
        let remember = std::num::NonZeroUsize::new(self.tally_remember).ok_or("--tally-remember must be at least 1")?;
        let forward = match self.forward_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => Some(crate::tally::ForwardSettings {
                url: crate::tally::ForwardSettings::parse_url(url).map_err(|e| e.to_string())?,
                timeout: ms(self.forward_timeout_ms),
                retries: self.forward_retries,
                backoff: ms(self.forward_backoff_ms),
            }),
        };
        Ok(crate::tally::Settings {
            // Trimmed: a secret pasted into a dashboard often brings a newline, and Tally's have
            // no blanks.
            secret: self.tally_signing_secret.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()),
            fields: crate::tally::QueryFields::from_names(&self.tally_fields),
            top_k: self.tally_top_k,
            max_query_chars: limits.max_text_chars,
            forward,
            ack_failed_forward: self.forward_failure_ack,
            budget: ms(self.tally_budget_ms),
            remember,
        })
    }
}

/// Which matmul kernels to run.
#[derive(Debug, Clone, Args)]
pub struct KernelArg {
    /// Matmul kernels: auto (the fastest this CPU runs), exact (the fastest with f32
    /// activations), or by name: avx512vnni, avxvnni, avx2-int8 (int8 activations), avx2-int7
    /// (7-bit activations), avx512f, avx2+fma, portable [default: auto].
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
