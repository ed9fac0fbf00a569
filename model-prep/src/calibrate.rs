//! Calibration for the int8 snapshot's smoothing: reads the calibration texts and runs the f32
//! snapshot over them, recording per channel the largest magnitudes each layer's QKV projection
//! and feed-forward read (`quantize::smoothing` turns them into factors).
//!
//! The f32 pass runs on the best f32-activation kernels the CPU has, which give the same bits
//! on every CPU with AVX2 (`kernels`' tests check the matmuls with their GELU; the rest is
//! plain Rust float code, built for x86-64-v3 everywhere), and the factors are powers of two,
//! which a last-bit difference in a maximum almost never moves. model-prep's test rebuilds the
//! committed snapshot byte for byte.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use snapembed::engine::kernels::Isa;
use snapembed::engine::model::InputMaxima;
use snapembed::Embedder;

/// The `text` field of each line of a JSON Lines file (`artifacts/sample-corpus.jsonl`'s shape).
pub fn read_texts(path: &Path) -> Result<Vec<String>> {
    let raw = std::fs::read_to_string(path).with_context(|| format!("cannot read the calibration texts {}", path.display()))?;
    let texts = raw
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let doc: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
            doc.get("text")
                .and_then(|t| t.as_str())
                .map(|t| t.trim().to_owned())
                .with_context(|| format!("{} line {}: no \"text\" string", path.display(), i + 1))
        })
        .collect::<Result<Vec<_>>>()?;
    ensure!(!texts.is_empty(), "{} holds no calibration texts", path.display());
    Ok(texts)
}

/// Opens the f32 snapshot at `path` on the kernels calibration runs on.
pub fn reference(path: &Path) -> Result<Embedder> {
    Ok(Embedder::from_snapshot(path)?.with_isa(Isa::detect_exact()))
}

/// The input maxima of the f32 snapshot `reference` over `texts`, each cut at the token limit.
pub fn input_maxima(reference: &Embedder, texts: &[String]) -> InputMaxima {
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    reference.input_maxima(&texts)
}
