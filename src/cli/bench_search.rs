//! The hidden `bench-search` that bench/search.sh runs: generates a deterministic synthetic
//! corpus of mixed-length documents, writes a real index for it whose vectors are mixtures of
//! really embedded texts (embedding 100,000 documents takes this machine many minutes; the scan
//! does not care where vectors came from), times the scan on one thread, and leaves the
//! vectors for the Python peers (faiss, numpy) and a JSONL slice for timing a real build.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use snapembed::search::corpus::Document;
use snapembed::search::{builder, MappedIndex, Search, SearchParams};

use super::SnapshotArgs;

#[derive(Args)]
pub struct BenchSearchArgs {
    #[command(flatten)]
    snapshot: SnapshotArgs,
    /// Documents in the synthetic corpus.
    #[arg(long, default_value_t = 100_000)]
    docs: usize,
    /// Queries timed.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Documents in the JSONL slice written for a real `snapembed index` run.
    #[arg(long, default_value_t = 300)]
    slice: usize,
    /// Output directory (index, vectors, queries, slice).
    #[arg(long)]
    out: PathBuf,
}

const WORDS: &[&str] = &[
    "account", "password", "billing", "invoice", "refund", "export", "form", "response", "webhook", "integration",
    "workspace", "member", "owner", "editor", "upload", "file", "limit", "plan", "annual", "monthly", "domain",
    "security", "signature", "secret", "payment", "card", "receipt", "data", "privacy", "storage", "region",
    "delete", "restore", "archive", "template", "question", "answer", "logic", "branch", "email", "notification",
    "slack", "calendar", "embed", "website", "redirect", "thank", "page", "hidden", "field", "score", "quiz",
    "language", "translation", "theme", "font", "color", "logo", "team", "seat", "trial", "discount", "tax",
    "the", "a", "to", "and", "of", "in", "your", "you", "can", "is", "for", "on", "with", "when", "how", "what",
];
const CATEGORIES: &[&str] = &["account", "billing", "data", "forms", "integrations", "security", "teams", "payments"];

/// splitmix64: a fixed sequence from a seed.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn text(seed: u64, words: usize) -> String {
    (0..words as u64).map(|i| WORDS[(mix(seed * 7919 + i) % WORDS.len() as u64) as usize]).collect::<Vec<_>>().join(" ")
}

/// Mixed lengths: half short (10–40 words), a third medium (80–200), the rest long (300–1,200).
fn document(i: usize) -> Document {
    let r = mix(i as u64);
    let words = match r % 100 {
        0..50 => 10 + (r >> 8) % 31,
        50..85 => 80 + (r >> 8) % 121,
        _ => 300 + (r >> 8) % 901,
    } as usize;
    let mut metadata = serde_json::Map::new();
    metadata.insert("category".into(), CATEGORIES[(r >> 20) as usize % CATEGORIES.len()].into());
    Document { id: format!("doc-{i:06}"), text: text(i as u64, words), metadata, line: i as u64 + 1 }
}

/// Time this thread has run on a CPU (ns), from the scheduler: on a machine shared with other
/// builds, wall time includes waiting for a core, and this does not.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn unit(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// A mixture of three embedded base texts plus a little noise: neighbours exist, as in a corpus.
fn mixture(base: &[Vec<f32>], seed: u64) -> Vec<f32> {
    let pick = |k: u64| &base[(mix(seed * 31 + k) % base.len() as u64) as usize];
    let (a, b, c) = (pick(1), pick(2), pick(3));
    let mut v: Vec<f32> = (0..a.len())
        .map(|i| a[i] + 0.6 * b[i] + 0.3 * c[i] + 0.02 * ((mix(seed ^ (i as u64) << 20) % 2001) as f32 / 1000.0 - 1.0))
        .collect();
    unit(&mut v);
    v
}

fn write_f32(path: &PathBuf, rows: &[Vec<f32>]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in rows {
        for x in r {
            f.write_all(&x.to_le_bytes())?;
        }
    }
    f.flush()
}

pub fn run(args: BenchSearchArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let model = args.snapshot.open()?.with_threads(1);
    let t = Instant::now();
    let docs: Vec<Document> = (0..args.docs).map(document).collect();
    let mut slice = std::io::BufWriter::new(std::fs::File::create(args.out.join("slice.jsonl"))?);
    for d in docs.iter().take(args.slice) {
        serde_json::to_writer(&mut slice, &serde_json::json!({"id": d.id, "text": d.text, "metadata": d.metadata}))?;
        slice.write_all(b"\n")?;
    }
    slice.flush()?;
    let generate_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let base_texts: Vec<String> = (0..1000).map(|i| text(1_000_000 + i, 12 + (i as usize % 20))).collect();
    let refs: Vec<&str> = base_texts.iter().map(String::as_str).collect();
    let base = model.embed(&refs)?;
    let base_embed_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let spans: Vec<Vec<(u32, u32)>> = docs
        .iter()
        .map(|d| {
            snapembed::search::chunk_spans(&model, &d.text).into_iter().map(|r| (r.start as u32, r.end as u32)).collect()
        })
        .collect();
    let chunk_s = t.elapsed().as_secs_f64();
    let chunks: usize = spans.iter().map(Vec::len).sum();
    let vectors: Vec<Vec<f32>> = (0..chunks as u64).map(|c| mixture(&base, c)).collect();
    let embedded = builder::Embedded { spans, vectors };
    let t = Instant::now();
    let bytes = builder::index_bytes(builder::model_ref(&model), &docs, &embedded)?;
    let index_path = args.out.join("synthetic.idx");
    builder::write_atomically(&index_path, &bytes)?;
    let write_s = t.elapsed().as_secs_f64();
    drop(bytes);

    let t = Instant::now();
    let index = MappedIndex::open(&index_path)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let queries: Vec<Vec<f32>> = (0..args.queries as u64).map(|q| mixture(&base, 9_000_000 + q)).collect();
    write_f32(&args.out.join("vectors.f32"), &embedded.vectors)?;
    write_f32(&args.out.join("queries.f32"), &queries)?;
    let doc_of_chunk: Vec<u8> = embedded.spans.iter().enumerate().flat_map(|(d, s)| s.iter().map(move |_| d as u32)).flat_map(u32::to_le_bytes).collect();
    std::fs::write(args.out.join("chunk_doc.u32"), doc_of_chunk)?;

    let params = SearchParams { top_k: Some(10), ..Default::default() };
    let filtered = SearchParams { filter: serde_json::from_value(serde_json::json!({"category": "billing"}))?, ..params.clone() };
    let mut results = Vec::new();
    let mut cpu_ms = Vec::new();
    let mut time = |p: &SearchParams, keep: bool| -> anyhow::Result<Vec<f64>> {
        index.search(&queries[..1], p)?;
        let mut ms = Vec::new();
        let cpu = thread_cpu_ns();
        for q in &queries {
            let t = Instant::now();
            let hits = index.search(std::slice::from_ref(q), p)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            if keep {
                results.push(hits.into_iter().map(|h| h.id).collect::<Vec<_>>());
            }
        }
        cpu_ms.push((thread_cpu_ns() - cpu) as f64 / 1e6 / queries.len() as f64);
        ms.sort_by(f64::total_cmp);
        Ok(ms)
    };
    let scan = time(&params, true)?;
    let scan_filtered = time(&filtered, false)?;
    let pct = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    // Recall of the fast scan against exhaustive f16 rescoring of every chunk, first 50 queries.
    let mut agree = 0usize;
    let checked = queries.len().min(50);
    for (q, fast) in queries.iter().zip(&results).take(checked) {
        let exact: Vec<String> = index.search_exhaustive(std::slice::from_ref(q), &params).into_iter().map(|h| h.id).collect();
        agree += fast.iter().filter(|id| exact.contains(id)).count();
    }
    std::fs::write(args.out.join("snapembed_top10.json"), serde_json::to_string(&results)?)?;
    let report = serde_json::json!({
        "docs": args.docs, "chunks": chunks, "index_bytes": index.len(),
        "generate_s": generate_s, "base_embed_s": base_embed_s, "chunking_s": chunk_s, "layout_and_write_s": write_s,
        "open_ms": open_ms,
        "scan_ms": {"median": pct(&scan, 0.5), "p99": pct(&scan, 0.99)},
        "scan_filtered_ms": {"median": pct(&scan_filtered, 0.5), "p99": pct(&scan_filtered, 0.99), "filter": "category=billing (1/8 of documents)"},
        "scan_cpu_ms_mean": cpu_ms.first(), "scan_filtered_cpu_ms_mean": cpu_ms.get(1),
        "recall_at_10_vs_exhaustive": agree as f64 / (checked * 10) as f64,
        "queries": queries.len(),
    });
    println!("{report}");
    Ok(())
}
