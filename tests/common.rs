//! Shared fixtures: the committed snapshot, one `Embedder` for all tests, the golden files.

use std::path::PathBuf;
use std::sync::OnceLock;

use snapembed::Embedder;

pub fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts/all-MiniLM-L6-v2.snap")
}

pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

pub fn embedder() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| Embedder::from_snapshot(&snapshot_path()).expect("the committed snapshot loads"))
}

pub struct Golden {
    pub text: String,
    pub embedding: Vec<f32>,
}

/// Reads `items[].text` / `items[].embedding` from a golden JSON file.
pub fn goldens(name: &str) -> Vec<Golden> {
    let raw = std::fs::read_to_string(data_path(name)).expect("golden file");
    let v: serde_json::Value = serde_json::from_str(&raw).expect("golden JSON");
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|it| Golden {
            text: it["text"].as_str().expect("text").to_owned(),
            embedding: it["embedding"].as_array().expect("embedding").iter().map(|x| x.as_f64().expect("f") as f32).collect(),
        })
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}
