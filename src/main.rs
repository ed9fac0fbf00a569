//! The `snapembed` binary: `embed` (stdin or --text → one JSON array per line) and `info`.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use snapembed::{EmbedOptions, Embedder};

#[derive(Parser)]
#[command(name = "snapembed", version, about = "Text embeddings from a pre-built int8 snapshot")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed texts: one per line on stdin, or --text arguments; one JSON array per line out.
    Embed(EmbedArgs),
    /// Print the snapshot's header (model, settings, plan, tensors) as JSON.
    Info(SnapshotArgs),
}

#[derive(Args)]
struct SnapshotArgs {
    /// Snapshot file to map.
    #[arg(long, env = "SNAPEMBED_SNAPSHOT", default_value = "artifacts/all-MiniLM-L6-v2.snap")]
    snapshot: PathBuf,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(args) => embed(args),
        Command::Info(args) => info(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snapembed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    let embedder = Embedder::from_snapshot(&args.snapshot.snapshot)?;
    let texts: Vec<String> = if args.text.is_empty() {
        std::io::stdin().lock().lines().collect::<Result<_, _>>()?
    } else {
        args.text
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let options = EmbedOptions { normalize: args.no_normalize.then_some(false), truncate: !args.no_truncate };
    let vectors = embedder.embed_with(&refs, options)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for v in vectors {
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn info(args: SnapshotArgs) -> anyhow::Result<()> {
    let embedder = Embedder::from_snapshot(&args.snapshot)?;
    let header = embedder.header();
    let times = embedder.load_times();
    let info = serde_json::json!({
        "file": embedder.snapshot().source(),
        "bytes": embedder.snapshot().len(),
        "format_version": snapembed::snapshot::FORMAT_VERSION,
        "kernels": embedder.isa().name(),
        "load_ms": {
            "open": times.open.as_secs_f64() * 1e3,
            "tokenizer": times.tokenizer.as_secs_f64() * 1e3,
            "model": times.model.as_secs_f64() * 1e3,
        },
        "header": header,
    });
    println!("{}", serde_json::to_string_pretty(&info)?);
    Ok(())
}
