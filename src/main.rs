//! The `snapembed` binary: `serve` (HTTP on $PORT, or AWS Lambda when `AWS_LAMBDA_RUNTIME_API`
//! is set; also what runs with no arguments, as Lambda's `bootstrap`), `embed` (stdin or --text →
//! one JSON array per line) and `info`.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use snapembed::config::{available_cpus, KernelArg, LogFormat, ServeConfig};
use snapembed::http::AppState;
use snapembed::memory::MemoryGuard;
use snapembed::{EmbedOptions, Embedder};

#[cfg(not(feature = "embedded-snapshot"))]
const DEFAULT_SNAPSHOT: &str = "artifacts/all-MiniLM-L6-v2.snap";

#[derive(Parser)]
#[command(name = "snapembed", version, about = "Text embeddings from a pre-built int8 snapshot")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API on $PORT, or as an AWS Lambda function when AWS_LAMBDA_RUNTIME_API is set.
    Serve(ServeConfig),
    /// Embed texts: one per line on stdin, or --text arguments; one JSON array per line out.
    Embed(EmbedArgs),
    /// Print the snapshot's header (model, settings, plan, tensors) as JSON.
    Info(InfoArgs),
    /// Time embedding in this process (used by bench/): texts from a file, one per line.
    #[command(hide = true)]
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    snapshot: SnapshotArgs,
    /// Texts, one per line.
    #[arg(long)]
    texts: PathBuf,
    /// Texts per call.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Passes over the file (after one warm-up call).
    #[arg(long, default_value_t = 1)]
    passes: usize,
    /// Write the vectors of the last pass here (one JSON array per line).
    #[arg(long)]
    vectors: Option<PathBuf>,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(Args)]
struct InfoArgs {
    #[command(flatten)]
    snapshot: SnapshotArgs,
    #[command(flatten)]
    kernels: KernelArg,
}

#[derive(Args)]
struct SnapshotArgs {
    /// Snapshot file to map [default: the embedded snapshot if this binary has one, else
    /// artifacts/all-MiniLM-L6-v2.snap].
    #[arg(long, env = "SNAPEMBED_SNAPSHOT")]
    snapshot: Option<PathBuf>,
}

#[derive(Args)]
struct EmbedArgs {
    #[command(flatten)]
    snapshot: SnapshotArgs,
    /// Text to embed (repeatable); without it, texts are read from stdin, one per line.
    #[arg(long)]
    text: Vec<String>,
    /// Return vectors without L2 normalization.
    #[arg(long)]
    no_normalize: bool,
    /// Fail on a text over the model's maximum length instead of truncating it.
    #[arg(long)]
    no_truncate: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(Args)]
struct ComputeArgs {
    /// Worker threads [default: the CPUs this process may use, cgroup CPU quota included].
    #[arg(long, env = "SNAPEMBED_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(flatten)]
    kernels: KernelArg,
}

impl ComputeArgs {
    fn apply(&self, e: Embedder) -> anyhow::Result<Embedder> {
        let e = self.kernels.apply(e).map_err(anyhow::Error::msg)?;
        Ok(match self.threads {
            Some(n) => e.with_threads(n as usize),
            None => e,
        })
    }
}

fn main() -> ExitCode {
    // Lambda starts `bootstrap` with no arguments: that means `serve`, configured from the environment.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 1 {
        args.push("serve".into());
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Serve(config) => serve(config),
        Command::Embed(args) => embed(args),
        Command::Info(args) => info(args),
        Command::Bench(args) => bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snapembed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    config.validate().map_err(anyhow::Error::msg)?;
    init_logging(config.log_format);
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let model = load_model(&config);
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
    let threads = config.threads.unwrap_or_else(available_cpus);
    let memory = MemoryGuard::new(config.memory_limit_mb);
    tracing::info!(threads, memory_limit = memory.budget().limit_bytes, limit_source = memory.budget().source, lambda, "configured");
    let state = AppState::new(model, config.limits, threads, memory);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    tracing::info!(startup_ms = started.elapsed().as_secs_f64() * 1e3, "ready");
    runtime.block_on(async {
        if lambda {
            snapembed::lambda::run(state).await.map_err(|e| anyhow::anyhow!(e))
        } else {
            snapembed::server::serve(state, config.addr()).await.map_err(anyhow::Error::from)
        }
    })
}

fn load_model(config: &ServeConfig) -> Result<Embedder, String> {
    let embedder = open_snapshot(config.snapshot.as_deref()).map_err(|e| format!("{e:#}"))?;
    config.kernels.apply(embedder).map_err(|e| format!("{e:#}"))
}

/// The snapshot named by --snapshot, else the one compiled in, else the default path.
fn open_snapshot(path: Option<&std::path::Path>) -> Result<Embedder, snapembed::EmbedError> {
    match path {
        Some(path) => Embedder::from_snapshot(path),
        #[cfg(feature = "embedded-snapshot")]
        None => Embedder::from_static(snapembed::embedded_snapshot()),
        #[cfg(not(feature = "embedded-snapshot"))]
        None => Embedder::from_snapshot(std::path::Path::new(DEFAULT_SNAPSHOT)),
    }
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

fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    let embedder = args.compute.apply(open_snapshot(args.snapshot.snapshot.as_deref())?)?;
    let texts: Vec<String> = if args.text.is_empty() {
        std::io::stdin().lock().lines().collect::<Result<_, _>>()?
    } else {
        args.text
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let options = EmbedOptions { normalize: args.no_normalize.then_some(false), truncate: !args.no_truncate, ..Default::default() };
    let vectors = embedder.embed_with(&refs, options)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for v in vectors {
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Per-call times (ms) and throughput, as one JSON object on stdout.
fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let embedder = args.compute.apply(open_snapshot(args.snapshot.snapshot.as_deref())?)?;
    let texts: Vec<String> = std::fs::read_to_string(&args.texts)?.lines().map(str::to_owned).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    anyhow::ensure!(!refs.is_empty() && args.batch > 0, "no texts");
    embedder.embed(&refs[..args.batch.min(refs.len())])?;
    let mut calls = Vec::new();
    let mut last = Vec::new();
    let start = Instant::now();
    for _ in 0..args.passes.max(1) {
        last.clear();
        for chunk in refs.chunks(args.batch) {
            let t = Instant::now();
            last.extend(embedder.embed(chunk)?);
            calls.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let total = start.elapsed().as_secs_f64();
    if let Some(path) = args.vectors {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for v in &last {
            serde_json::to_writer(&mut out, v)?;
            writeln!(out)?;
        }
    }
    let mut sorted = calls.clone();
    sorted.sort_by(f64::total_cmp);
    let pct = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let report = serde_json::json!({
        "calls": calls.len(), "median_ms": pct(0.5), "p99_ms": pct(0.99),
        "texts_per_s": (refs.len() * args.passes.max(1)) as f64 / total,
        "threads": embedder.threads(),
        "rss_mb": snapembed::memory::process_rss() as f64 / 1048576.0,
    });
    println!("{report}");
    Ok(())
}

fn info(args: InfoArgs) -> anyhow::Result<()> {
    let embedder = args.kernels.apply(open_snapshot(args.snapshot.snapshot.as_deref())?).map_err(anyhow::Error::msg)?;
    let header = embedder.header();
    let times = embedder.load_times();
    let info = serde_json::json!({
        "file": embedder.snapshot().source(),
        "bytes": embedder.snapshot().len(),
        "format_version": snapembed::snapshot::FORMAT_VERSION,
        "kernels": embedder.isa().name(),
        "kernels_available": snapembed::kernels::Isa::available().into_iter().map(|i| i.name()).collect::<Vec<_>>(),
        "load_ms": {
            "open": times.open.as_secs_f64() * 1e3,
            "tokenizer": times.tokenizer.as_secs_f64() * 1e3,
            "model": times.model.as_secs_f64() * 1e3,
        },
        "header": header,
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &info)?;
    writeln!(out)?;
    Ok(())
}
