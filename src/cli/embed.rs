//! `snapembed embed` (texts → one JSON array per line) and the hidden `bench` that bench/ times.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use snapembed::EmbedOptions;

use super::{ComputeArgs, SnapshotArgs};

#[derive(Args)]
pub struct EmbedArgs {
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
pub struct BenchArgs {
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
    /// Wait for a line on stdin before each timed call, and print that call's CPU seconds as a
    /// JSON line (bench/lockstep.py takes turns between programs, call by call).
    #[arg(long)]
    lockstep: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let embedder = args.compute.apply(args.snapshot.open()?)?;
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

/// Per-call times (ms), throughput and the CPU time of the timed loop, as one JSON object on
/// stdout. `cpu_s` counts every thread of the process during the loop, as the ONNX Runtime
/// peer's `time.process_time()` does (bench/peer_bench.py): start-up, the warm-up call and
/// writing `--vectors` are outside it on both sides.
pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let embedder = args.compute.apply(args.snapshot.open()?)?;
    let texts: Vec<String> = std::fs::read_to_string(&args.texts)?.lines().map(str::to_owned).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    anyhow::ensure!(!refs.is_empty() && args.batch > 0, "no texts");
    embedder.embed(&refs[..args.batch.min(refs.len())])?;
    let mut calls = Vec::new();
    let mut last = Vec::new();
    let mut turns = std::io::stdin().lock().lines();
    let (start, cpu) = (Instant::now(), process_cpu_s());
    for _ in 0..args.passes.max(1) {
        last.clear();
        for chunk in refs.chunks(args.batch) {
            if args.lockstep {
                anyhow::ensure!(turns.next().transpose()?.is_some(), "--lockstep: stdin closed before the last call");
            }
            let (t, call_cpu) = (Instant::now(), process_cpu_s());
            last.extend(embedder.embed(chunk)?);
            calls.push(t.elapsed().as_secs_f64() * 1e3);
            if args.lockstep {
                println!("{}", serde_json::json!({ "cpu_s": process_cpu_s() - call_cpu }));
                std::io::stdout().flush()?;
            }
        }
    }
    let (total, cpu) = (start.elapsed().as_secs_f64(), process_cpu_s() - cpu);
    if let Some(path) = args.vectors {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
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
        "threads": embedder.threads(), "cpu_s": cpu,
        "rss_mb": snapembed::service::memory::process_rss() as f64 / 1048576.0,
    });
    println!("{report}");
    Ok(())
}

/// CPU seconds this process has used so far, all threads (`CLOCK_PROCESS_CPUTIME_ID`).
fn process_cpu_s() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    if rc != 0 {
        return f64::NAN;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}
