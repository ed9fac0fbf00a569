//! Writes the seed corpora (`seeds DIR`: DIR/<target>/<name>) from the project's own files, and
//! turns a fuzzer input into the file a reader saw (`seeds file snapshot|index INPUT OUT`), which
//! is what a regression test under tests/data/fuzz/ keeps.

use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{Hmac, Mac};
use snapembed::search::format::ModelRef;
use snapembed::search::writer::{write, DocEntry};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn put(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let d = dir.join(target);
    std::fs::create_dir_all(&d)?;
    std::fs::write(d.join(name), bytes)
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![mode];
    v.extend_from_slice(bytes);
    v
}

/// A small index: three documents (one with two chunks), metadata with strings, a number and a
/// list, 8 dimensions.
fn small_index() -> Vec<u8> {
    let meta = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
    let (m0, m1, m2) = (
        meta(serde_json::json!({"lang": "en", "year": 2024, "tags": ["a", "b"]})),
        meta(serde_json::json!({"lang": "fr"})),
        meta(serde_json::json!({})),
    );
    let docs = [
        DocEntry { id: "d0", text: "alpha beta gamma delta", metadata: &m0, spans: vec![(0, 10), (6, 22)] },
        DocEntry { id: "d1", text: "ünïcödé text", metadata: &m1, spans: vec![(0, 14)] },
        DocEntry { id: "d2", text: "", metadata: &m2, spans: vec![(0, 0)] },
    ];
    let vectors: Vec<Vec<f32>> = (0..4).map(|c| (0..8).map(|i| if i == c { 1.0 } else { 0.1 }).collect()).collect();
    let model = ModelRef { name: "fuzz".into(), checksum: 1, dimensions: 8 };
    write(model, &docs, &vectors).unwrap_or_default()
}

fn sign(body: &[u8]) -> String {
    let Ok(mut m) = Hmac::<sha2::Sha256>::new_from_slice(b"fuzz-signing-secret") else { return String::new() };
    m.update(body);
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

fn seeds(dir: &Path) -> std::io::Result<()> {
    // snapshot: the real header in place (modes 1 and 2), and a raw file cut short (mode 0).
    let (header, _) = snapembed_fuzz::real_snapshot_parts();
    put(dir, "snapshot", "real-header", &with_mode(1, header))?;
    put(dir, "snapshot", "real-header-fixed", &with_mode(2, header))?;
    let real = snapembed_fuzz::real_snapshot();
    put(dir, "snapshot", "raw-prefix", &with_mode(0, &real[..(24 + header.len()).min(real.len())]))?;

    let index = small_index();
    put(dir, "index", "small-raw", &with_mode(0, &index))?;
    put(dir, "index", "small-fixed", &with_mode(1, &index))?;

    let cases = std::fs::read_to_string(root().join("tests/data/tokenizer_cases.jsonl"))?;
    for (i, line) in cases.lines().enumerate().step_by(40) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            put(dir, "tokenizer", &format!("case-{i}"), v["text"].as_str().unwrap_or("").as_bytes())?;
        }
    }
    put(dir, "tokenizer", "specials", "[CLS] x[SEP]y [MASK][UNK] [PAD]".as_bytes())?;

    for name in ["support_request", "sparse_answers"] {
        let body = std::fs::read(root().join(format!("tests/data/tally/{name}.json")))?;
        put(dir, "tally", &format!("{name}-signed"), &with_mode(0, &body))?;
        let header = sign(&body);
        let mut v = vec![1, header.len() as u8];
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(&body);
        put(dir, "tally", &format!("{name}-header"), &v)?;
    }

    let bodies: &[(u8, &str)] = &[
        (0, r#"{"inputs":"What is Deep Learning?"}"#),
        (0, r#"{"inputs":["a","b"],"normalize":false,"truncate":false}"#),
        (1, r#"{"input":["hello","world"],"model":"all-MiniLM-L6-v2","encoding_format":"base64","dimensions":384}"#),
        (1, r#"{"input":[[1,2,3]]}"#),
        (2, r#"{"inputs":{"source_sentence":"a cat","sentences":["a dog","a car"]}}"#),
        (3, r#"{"query":"rust programming","top_k":3,"filter":{"lang":["en","fr"]},"min_score":0.1}"#),
        (4, r#"{"resume":"Rust and Python developer, 5 years of Kubernetes","job_description":"Must have: Rust. Nice to have: Kafka","weights":{"requirements":0.6,"skills":0.3,"similarity":0.1}}"#),
        (5, r#"{"job_description":"Senior engineer: Python, PostgreSQL","resumes":[{"id":"a","text":"Python dev"},{"id":"b","text":"Chef"}]}"#),
    ];
    for (i, (route, body)) in bodies.iter().enumerate() {
        put(dir, "json", &format!("body-{i}"), body.as_bytes())?;
        let mut v = vec![*route, 0];
        v.extend_from_slice(body.as_bytes());
        put(dir, "http", &format!("route-{i}"), &v)?;
    }
    let tally = std::fs::read(root().join("tests/data/tally/sparse_answers.json"))?;
    put(dir, "http", "tally", &[&[6u8, 0][..], &tally].concat())?;

    let multipart = |resume: &[u8], ctype: &str| {
        let mut b = Vec::new();
        b.extend_from_slice(format!("--fuzz\r\nContent-Disposition: form-data; name=\"resume\"; filename=\"cv\"\r\nContent-Type: {ctype}\r\n\r\n").as_bytes());
        b.extend_from_slice(resume);
        b.extend_from_slice(b"\r\n--fuzz\r\nContent-Disposition: form-data; name=\"job_description\"\r\n\r\nRust engineer, PostgreSQL\r\n");
        b.extend_from_slice(b"--fuzz\r\nContent-Disposition: form-data; name=\"weights\"\r\n\r\n{\"skills\":0.5}\r\n--fuzz--\r\n");
        [&[4u8, 5][..], &b].concat()
    };
    put(dir, "http", "score-multipart-text", &multipart(b"Rust developer with PostgreSQL", "text/plain"))?;
    if let Ok(pdf) = std::fs::read(root().join("target/pdf-fixtures/resume_2page.pdf")) {
        put(dir, "http", "score-multipart-pdf", &multipart(&pdf, "application/pdf"))?;
    }

    let fixtures = root().join("target/pdf-fixtures");
    if let Ok(entries) = std::fs::read_dir(&fixtures) {
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path())?;
            if bytes.len() <= 64 << 10 {
                put(dir, "pdf", &e.file_name().to_string_lossy(), &bytes)?;
            }
        }
    } else {
        eprintln!("no {} (tests/run.sh makes them): pdf seeds skipped", fixtures.display());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [dir] => seeds(Path::new(dir))?,
        [cmd, kind, input, out] if cmd == "file" => {
            let input = std::fs::read(input)?;
            let file = match kind.as_str() {
                "snapshot" => snapembed_fuzz::snapshot_file(&input),
                "index" => snapembed_fuzz::index_file(&input),
                other => return Err(format!("no file form for target {other}").into()),
            };
            std::fs::write(out, file.ok_or("the input makes no file (the target returns early)")?)?;
        }
        _ => return Err("usage: seeds DIR | seeds file snapshot|index INPUT OUT".into()),
    }
    Ok(())
}
