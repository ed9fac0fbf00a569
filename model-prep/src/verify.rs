//! The accuracy report: the quantized plan against the same plan in f32, on built-in sentences.

use snapembed::pooling::cosine;
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
