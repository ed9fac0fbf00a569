//! model-prep: converts a sentence-transformers BERT model into one snapembed snapshot file.
//!
//! `source` reads the checkpoint, `plan` lays out tensors and the op plan, `calibrate` runs the
//! f32 plan over sample texts, `quantize` does the int8 arithmetic and smoothing, `verify`
//! reports accuracy against the f32 plan. The file is written to a temporary name beside the
//! target and renamed into place, so a failure leaves nothing half-written.

mod calibrate;
mod graph;
mod onnx;
mod plan;
mod quantize;
mod source;
mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use snapembed::Embedder;

use plan::Precision;

#[derive(Parser)]
#[command(name = "model-prep", version, about, args_override_self = true)]
struct Cli {
    /// A sentence-transformers model directory (config.json, model.safetensors, tokenizer.json,
    /// sentence_bert_config.json, 1_Pooling/config.json, modules.json).
    #[arg(long)]
    model_dir: PathBuf,
    /// Take the weights from this ONNX export of the model instead of model.safetensors
    /// (the settings and tokenizer still come from --model-dir).
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// Where to write the snapshot.
    #[arg(long, default_value = "artifacts/all-MiniLM-L6-v2.snap")]
    out: PathBuf,
    /// Model name recorded in the snapshot.
    #[arg(long, default_value = "all-MiniLM-L6-v2")]
    name: String,
    #[arg(long, value_enum, default_value = "int8")]
    precision: Precision,
    /// int8: input rows sharing a weight scale, a multiple of 16 dividing the model's widths.
    #[arg(long, default_value_t = quantize::GROUP, value_parser = parse_group)]
    group: usize,
    /// int8: texts (JSON Lines with a "text" field) the f32 model runs over to find each
    /// channel's range for the smoothing.
    #[arg(long, default_value = "artifacts/sample-corpus.jsonl")]
    calibration: PathBuf,
    /// Skip the accuracy report (the int8 plan's cosine to the f32 plan on built-in sentences).
    #[arg(long)]
    no_verify: bool,
    /// Also time tract's own optimized plan of the model against the snapshot, on 16- and
    /// 128-token texts (single thread, this process).
    #[arg(long)]
    time_tract_plan: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let t = Instant::now();
    let weights = match &cli.onnx {
        Some(path) => source::Weights::Onnx(path),
        None => source::Weights::Safetensors,
    };
    let src = source::read_sentence_transformers(&cli.model_dir, &cli.name, weights)?;
    // The f32 plan: the int8 one is calibrated on it and its accuracy reported against it. Its
    // temporary file is deleted when `reference` drops, whatever happens.
    let f32_plan = plan::build(&src, None)?;
    let (built, reference) = match cli.precision {
        Precision::F32 => (f32_plan, None),
        Precision::Int8 => {
            let texts = calibrate::read_texts(&cli.calibration)?;
            let mut reference = tempfile::Builder::new().prefix("model-prep-f32-").suffix(".snap").tempfile()?;
            reference.write_all(&f32_plan.bytes).and_then(|()| reference.flush()).context("cannot write the f32 plan")?;
            let maxima = calibrate::input_maxima(&calibrate::reference(reference.path())?, &texts);
            (plan::build(&src, Some(&plan::Int8 { group: cli.group, maxima, texts: texts.len() }))?, Some(reference))
        }
    };
    write_atomically(&cli.out, &built.bytes)?;
    let layers = built.plan.len() - 1;
    let from = cli.onnx.as_deref().unwrap_or(&cli.model_dir);
    println!("source:      {} ({}, {:.1} MB read)", from.display(), src.kind, src.source_bytes as f64 / 1e6);
    for (file, sha) in &src.files {
        println!("             {file} sha256 {sha}");
    }
    println!("plan:        Embeddings(word {} + position + token type, LayerNorm) → {layers} × EncoderLayer(QKV, attention {}×{}, output+LayerNorm, GELU FFN {}, output+LayerNorm) → {:?} pooling{}",
        if cli.precision == Precision::Int8 { "int8 rows" } else { "f32" },
        src.config.num_attention_heads, src.config.hidden_size / src.config.num_attention_heads,
        src.config.intermediate_size, src.embedding.pooling,
        if src.embedding.normalize { " → L2 normalize" } else { "" });
    println!("parameters:  {:.2} M", built.params as f64 / 1e6);
    println!("precision:   {:?}", cli.precision);
    println!("size:        {:.1} MB → {:.1} MB ({})", src.source_bytes as f64 / 1e6, built.bytes.len() as f64 / 1e6, cli.out.display());
    if let Some(reference) = reference.filter(|_| !cli.no_verify) {
        let acc = verify::compare(&Embedder::from_snapshot(&cli.out)?, &Embedder::from_snapshot(reference.path())?)?;
        println!(
            "accuracy:    cosine to the f32 plan on {} built-in sentences: mean {:.6}, min {:.6}",
            verify::SENTENCES.len(),
            acc.mean,
            acc.min
        );
    }
    if cli.time_tract_plan {
        let proto = graph::bert_graph(&src.config, &src.tensors)?;
        let embedder = Embedder::from_snapshot(&cli.out)?;
        for tokens in [16, 128] {
            let (tract, ours) = verify::tract_vs_snapembed(&proto, &embedder, tokens, 30)?;
            println!(
                "speed:       {tokens} tokens, median of 30: tract plan (f32, optimized) {:.2} ms, snapembed {:.2} ms ({:.1}×)",
                tract.as_secs_f64() * 1e3,
                ours.as_secs_f64() * 1e3,
                tract.as_secs_f64() / ours.as_secs_f64()
            );
        }
    }
    println!("done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// A group the int8 kernels can run: a positive multiple of 16 (AVX-512's activation vector).
fn parse_group(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(g) if g > 0 && g.is_multiple_of(16) => Ok(g),
        _ => Err(format!("{s:?} is not a positive multiple of 16")),
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes beside the target, then renames: readers never see a partial file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = tmp_path(path);
    let result = std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
