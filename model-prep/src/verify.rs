//! The accuracy report: the quantized plan against the same plan in f32, on built-in sentences.

use snapembed::engine::pooling::cosine;
use snapembed::Embedder;

/// A small mix of lengths and kinds (queries, sentences, a paragraph, edge cases).
pub const SENTENCES: &[&str] = &[
    "This is an example sentence.",
    "How do I reset my password?",
    "A man is playing a guitar on a stage in front of a small crowd.",
    "Senior Rust engineer with 7 years of experience building low-latency systems.",
    "We are hiring a backend developer familiar with Kubernetes, PostgreSQL and gRPC.",
    "Café naïve résumé — accents and dashes",
    "東京は日本の首都です。",
    "Emojis 🙂 and symbols ©®™ and numbers 3.14159",
    "",
    "The patient was prescribed 20mg of atorvastatin daily and advised to reduce saturated fat.",
    "Machine learning models can be quantized to int8 to reduce memory and speed up inference \
     on CPUs, but the quantization error must be measured against the original model on real \
     text, because a small average error can hide large errors on particular inputs such as \
     long paragraphs, rare words or text in other languages.",
    "best pizza near me",
    "Ein deutscher Satz über Wetter und Regen.",
    "unbelievably antidisestablishmentarianism",
];

pub struct Accuracy {
    pub mean: f32,
    pub min: f32,
}

pub fn compare(quantized: &Embedder, reference: &Embedder) -> anyhow::Result<Accuracy> {
    let a = quantized.embed(SENTENCES)?;
    let b = reference.embed(SENTENCES)?;
    let cos: Vec<f32> = a.iter().zip(&b).map(|(x, y)| cosine(x, y)).collect();
    Ok(Accuracy {
        mean: cos.iter().sum::<f32>() / cos.len() as f32,
        min: cos.iter().copied().fold(f32::INFINITY, f32::min),
    })
}

/// Times tract's own optimized plan of the same graph against snapembed's, in this process,
/// on one text of `tokens` word pieces: the measurement behind snapembed's own kernels.
pub fn tract_vs_snapembed(
    proto: &tract_onnx::pb::ModelProto,
    embedder: &Embedder,
    tokens: usize,
    runs: usize,
) -> anyhow::Result<(std::time::Duration, std::time::Duration)> {
    use std::time::Instant;
    use tract_onnx::prelude::*;
    let model = tract_onnx::onnx().model_for_proto_model(proto)?;
    let mut model = model;
    for i in 0..3 {
        model = model.with_input_fact(i, i64::fact([1, tokens]).into())?;
    }
    let plan = tract_onnx::tract_core::plan::SimplePlan::new(model.into_optimized()?)?;
    let text = "word ".repeat(tokens - 2);
    let ids: Vec<i64> = embedder.tokenize(&text).ids.iter().map(|&i| i as i64).collect();
    anyhow::ensure!(ids.len() == tokens, "the probe text has {} tokens", ids.len());
    let input = |v: Vec<i64>| -> anyhow::Result<TValue> { Ok(tract_ndarray::Array2::from_shape_vec((1, tokens), v)?.into_tensor().into_tvalue()) };
    let median = |mut xs: Vec<std::time::Duration>| {
        xs.sort();
        xs[xs.len() / 2]
    };
    let mut t_tract = Vec::new();
    for _ in 0..runs {
        let inputs = tvec!(input(ids.clone())?, input(vec![1; tokens])?, input(vec![0; tokens])?);
        let t = Instant::now();
        plan.run(inputs)?;
        t_tract.push(t.elapsed());
    }
    let mut t_snap = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        embedder.embed(&[&text])?;
        t_snap.push(t.elapsed());
    }
    Ok((median(t_tract), median(t_snap)))
}
