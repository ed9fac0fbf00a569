//! `snapembed serve`: load the model, then run the HTTP server on $PORT, or the Lambda runtime
//! loop when `AWS_LAMBDA_RUNTIME_API` is set.

use std::sync::Arc;
use std::time::Instant;

use snapembed::engine::embedder::{default_workers, Workers};
use snapembed::service::config::{LogFormat, ServeConfig};
use snapembed::service::AppState;
use snapembed::search::index::Verify;
use snapembed::search::postgres::PgBackend;
use snapembed::search::{MappedIndex, Search};
use snapembed::Embedder;

pub fn run(config: ServeConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    config.validate().map_err(anyhow::Error::msg)?;
    init_logging(config.log_format);
    let tuned = snapembed::service::memory::tune_allocator_for_a_server(snapembed::engine::embedder::available_cpus());
    if tuned.mmap_threshold_bytes.is_none() || tuned.arena_max.is_none() {
        tracing::warn!(?tuned, "the allocator kept some of its defaults: freed memory may stay resident");
    }
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    // The corpus index maps and checks its header while the snapshot maps and the tokenizer
    // builds: each takes ~3 ms, mostly waiting on the kernel and the page cache. With a
    // 100k-document index, ready came at 6.4 ms instead of 10.8 (medians of 5 starts,
    // 2026-12-01). No thread to spare: one after the other.
    let (model, index) = std::thread::scope(|s| {
        let index = std::thread::Builder::new().name("open-corpus".into()).spawn_scoped(s, || open_corpus(&config));
        let model = load_model(&config);
        let index = match index {
            Ok(handle) => handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => open_corpus(&config),
        };
        (model, index)
    });
    match &model {
        Ok(m) => {
            let t = m.load_times();
            tracing::info!(
                source = m.snapshot().source(),
                open_ms = t.open.as_secs_f64() * 1e3,
                tokenizer_ms = t.tokenizer.as_secs_f64() * 1e3,
                model_ms = t.model.as_secs_f64() * 1e3,
                kernels = m.isa().name(),
                "snapshot loaded"
            );
        }
        Err(e) => tracing::error!(error = %e, "the model failed to load; serving as unhealthy"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let corpus = match open_postgres(&config, model.as_ref().ok(), &runtime, lambda)? {
        Some(pg) => Some(pg),
        None => load_corpus(index?, model.as_ref().ok())?,
    };
    let workers = config.threads.map_or_else(default_workers, Workers::from);
    let memory = config.memory.guard()?;
    tracing::info!(
        threads = workers.count,
        threads_source = %workers.source,
        memory_limit = memory.budget().limit_bytes,
        limit_source = memory.budget().source,
        lambda,
        "configured"
    );
    let tally = snapembed::tally::Webhook::new(config.tally.settings(&config.limits).map_err(anyhow::Error::msg)?)?;
    if tally.settings().secret.is_none() {
        tracing::warn!("TALLY_SIGNING_SECRET is not set: /webhook/tally accepts unsigned deliveries from anyone");
    }
    let mut state = AppState::new(model, config.limits, workers, memory).with_scoring(config.scoring).with_tally(tally);
    if let Some(corpus) = corpus {
        state = state.with_corpus(corpus);
    }
    tracing::info!(startup_ms = started.elapsed().as_secs_f64() * 1e3, "ready");
    runtime.block_on(async {
        if lambda {
            snapembed::service::lambda::run(state).await.map_err(|e| anyhow::anyhow!(e))
        } else {
            let period = config.memory.memory_check_secs;
            let memory_check = (period > 0).then(|| std::time::Duration::from_secs(period));
            snapembed::service::server::serve(state, config.addr(), memory_check).await.map_err(anyhow::Error::from)
        }
    })
}

fn load_model(config: &ServeConfig) -> Result<Embedder, String> {
    let embedder = super::open_snapshot(config.snapshot.as_deref()).map_err(|e| format!("{e:#}"))?;
    let embedder = config.kernels.apply(embedder).map_err(|e| format!("{e:#}"))?;
    Ok(embedder.with_cache(config.embed_cache_entries).with_pooled_scratch_limit(snapembed::engine::embedder::MAX_POOLED_SCRATCH_BYTES))
}

/// Search on PostgreSQL when --search-url (or DATABASE_URL) is set. A bad URL stops the start.
/// A server then connects once, within 3 s: a wrong password, a missing database or table, or a
/// table of another model stop the start with the reason; a database that is down only warns
/// (search answers 503 until it is up, /embed works). On Lambda nothing connects before the
/// first search, so a cold start stays in milliseconds.
fn open_postgres(
    config: &ServeConfig,
    model: Option<&Embedder>,
    runtime: &tokio::runtime::Runtime,
    lambda: bool,
) -> anyhow::Result<Option<Arc<dyn Search>>> {
    let Some(pg) = config.search_db.open()? else { return Ok(None) };
    if config.corpus.is_some() {
        anyhow::bail!("--corpus and --search-url both name a corpus: give one");
    }
    let Some(model) = model else {
        tracing::error!("no model: search on PostgreSQL needs it to embed queries");
        return Ok(None);
    };
    let _enter = runtime.enter();
    let backend = PgBackend::new(pg, model)?;
    let (url, table) = (backend.pg.url.redacted.clone(), backend.pg.table.name().to_owned());
    if !lambda {
        match runtime.block_on(backend.probe_within(std::time::Duration::from_secs(3))) {
            Ok(()) => {
                let info = backend.info();
                tracing::info!(url, table, documents = info.documents, chunks = info.chunks, "search on PostgreSQL");
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(url, table, error = %e, "the search database is not answering; /search gives 503 until it does")
            }
            Err(e) => anyhow::bail!("search database: {e}"),
        }
    }
    Ok(Some(Arc::new(backend)))
}

/// A corpus index opened for `load_corpus`, and whether --corpus named it.
struct OpenedCorpus {
    index: MappedIndex,
    explicit: bool,
}

/// Maps the index named by --corpus, else the one compiled in; `None` when there is neither.
fn open_corpus(config: &ServeConfig) -> anyhow::Result<Option<OpenedCorpus>> {
    Ok(match (&config.corpus, snapembed::embedded_corpus()) {
        (Some(path), _) => Some(OpenedCorpus {
            index: MappedIndex::open_with(path, Verify::Deferred).map_err(|e| anyhow::anyhow!("corpus: {e}"))?,
            explicit: true,
        }),
        (None, Some(bytes)) => Some(OpenedCorpus {
            index: MappedIndex::from_static_with(bytes, "embedded", Verify::Deferred)
                .map_err(|e| anyhow::anyhow!("embedded corpus: {e}"))?,
            explicit: false,
        }),
        (None, None) => None,
    })
}

/// The corpus `open_corpus` found: a --corpus index must belong to the model (any defect or a
/// mismatch stops the start); the compiled-in one is skipped with a warning when it belongs to
/// another model than --snapshot's.
fn load_corpus(opened: Option<OpenedCorpus>, model: Option<&Embedder>) -> anyhow::Result<Option<Arc<dyn Search>>> {
    let Some(OpenedCorpus { index, explicit }) = opened else {
        tracing::info!("no corpus: /search answers 503 until the server starts with --corpus FILE");
        return Ok(None);
    };
    if let Some(model) = model {
        if let Err(e) = index.check_model(model) {
            if explicit {
                anyhow::bail!("corpus {}: {e}", index.info().source);
            }
            tracing::warn!(error = %e, "the embedded corpus belongs to another model; serving without a corpus");
            return Ok(None);
        }
    }
    let info = index.info();
    tracing::info!(source = info.source, documents = info.documents, chunks = info.chunks, load_ms = info.load_ms, "corpus loaded");
    let index = Arc::new(index);
    // The big sections' checksums, off the start's path (see `Verify::Deferred`).
    let checked = index.clone();
    let spawned = std::thread::Builder::new().name("verify-corpus".into()).spawn(move || match checked.verify_deferred() {
        Ok(ms) => tracing::info!(verify_ms = ms, "corpus checksums verified"),
        Err(e) => tracing::error!(error = %e, "corpus damaged: /search refuses until the index is rebuilt"),
    });
    if let Err(e) = spawned {
        // No thread to spare: check before serving instead.
        tracing::warn!(error = %e, "verifying the corpus before serving");
        index.verify_deferred().map_err(|e| anyhow::anyhow!("corpus: {e}"))?;
    }
    Ok(Some(index))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
