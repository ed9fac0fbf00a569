//! The `snapembed` binary as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{cosine, embedder, snapshot_path};

fn snapembed() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snapembed"));
    c.env("SNAPEMBED_SNAPSHOT", snapshot_path());
    c
}

#[test]
fn embed_reads_stdin_and_writes_one_json_array_per_line_in_order() {
    let texts = ["A man is playing a guitar.", "", "東京は日本の首都です。", "A woman is slicing an onion."];
    let mut child = snapembed().arg("embed").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(texts.join("\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Vec<f32>> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), texts.len());
    let want = embedder().embed(&texts).unwrap();
    for (got, want) in lines.iter().zip(&want) {
        assert_eq!(got.len(), 384);
        assert!(cosine(got, want) > 0.999_999);
    }
}

#[test]
fn embed_text_flags_and_no_normalize() {
    let out = snapembed().args(["embed", "--no-normalize", "--text", "one", "--text", "two"]).output().unwrap();
    assert!(out.status.success());
    let vs: Vec<Vec<f32>> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(vs.len(), 2);
    let norm: f32 = vs[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 0.01);
}

#[test]
fn info_prints_the_header() {
    let out = snapembed().arg("info").output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["header"]["model"]["name"], "all-MiniLM-L6-v2");
    assert_eq!(v["header"]["embedding"]["max_seq_length"], 256);
    assert_eq!(v["header"]["config"]["num_hidden_layers"], 6);
}

#[test]
fn a_missing_snapshot_is_a_clear_error() {
    let out = snapembed().args(["embed", "--snapshot", "/nonexistent.snap", "--text", "x"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot open snapshot /nonexistent.snap"), "{err}");
}

#[test]
fn too_long_text_without_truncation_fails_naming_the_input() {
    let long = "word ".repeat(300);
    let out = snapembed().args(["embed", "--no-truncate", "--text", "ok", "--text", &long]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("input 1 has 302 tokens"), "{err}");
}

/// The hidden `bench` that bench/ times: its report has the calls of the timed loop (the warm-up
/// not among them) and a CPU time for it (`cpu_s`, which bench.py compares with the peer's
/// `time.process_time()`), and its vectors are `embed`'s. That `cpu_s` leaves out start-up is
/// not asserted: a test cannot tell it apart from the loop's on so short a run.
#[test]
fn bench_reports_the_timed_loops_cpu_and_writes_the_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let texts = ["A man is playing a guitar.", "A woman is slicing an onion.", "東京は日本の首都です。"];
    let (file, vectors) = (dir.path().join("texts.txt"), dir.path().join("vectors.jsonl"));
    std::fs::write(&file, texts.join("\n")).unwrap();
    let out = snapembed()
        .args(["bench", "--batch", "2", "--passes", "3", "--texts"])
        .arg(&file)
        .arg("--vectors")
        .arg(&vectors)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["calls"], 6, "2 calls per pass, 3 passes, the warm-up not counted: {r}");
    let cpu = r["cpu_s"].as_f64().unwrap();
    assert!(cpu > 0.0 && cpu < 60.0, "{r}");
    let got: Vec<Vec<f32>> =
        std::fs::read_to_string(&vectors).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let want = embedder().embed(&texts).unwrap();
    assert_eq!(got.len(), texts.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(cosine(g, w) > 0.999_999);
    }
}

/// `bench --lockstep` (bench/lockstep.py) makes one call per line it reads and answers each
/// with that call's CPU, one JSON line, before the usual report; with too few lines it fails
/// rather than report a loop it did not run.
#[test]
fn bench_in_lockstep_makes_a_call_per_line_and_reports_each() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("texts.txt");
    std::fs::write(&file, "one\ntwo\nthree").unwrap();
    let run = |turns: &str| {
        let mut child = snapembed()
            .args(["bench", "--lockstep", "--batch", "2", "--passes", "2", "--texts"])
            .arg(&file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(turns.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run("\n\n\n\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5, "4 calls, then the report: {lines:?}");
    for call in &lines[..4] {
        assert!(call["cpu_s"].as_f64().unwrap() > 0.0, "{call}");
    }
    assert_eq!(lines[4]["calls"], 4);
    let short = run("\n\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("stdin closed"), "{}", String::from_utf8_lossy(&short.stderr));
}

#[test]
fn threads_flag_is_validated_and_used() {
    let out = snapembed().args(["embed", "--threads", "0", "--text", "x"]).output().unwrap();
    assert!(!out.status.success(), "zero threads is refused");
    let one = snapembed().args(["embed", "--threads", "1", "--text", "a b c", "--text", "d e"]).output().unwrap();
    let two = snapembed().args(["embed", "--text", "a b c", "--text", "d e"]).env("SNAPEMBED_THREADS", "2").output().unwrap();
    assert!(one.status.success() && two.status.success());
    assert_eq!(one.stdout, two.stdout);
}

#[test]
fn kernels_flag_selects_the_matmul_kernels_or_names_the_choices() {
    let out = snapembed().args(["embed", "--kernels", "sse9", "--text", "x"]).output().unwrap();
    assert!(!out.status.success(), "unknown kernels are refused");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("\"sse9\"") && err.contains("portable"), "{err}");

    let info = |env: Option<&str>| {
        let mut c = snapembed();
        c.args(["info"]);
        if let Some(k) = env {
            c.env("SNAPEMBED_KERNELS", k);
        }
        let out = c.output().unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["kernels"].as_str().unwrap().to_owned()
    };
    assert_eq!(info(Some("portable")), "portable");
    assert_eq!(info(Some("auto")), info(None));
    assert_ne!(info(Some("exact")), "avx512vnni", "exact kernels keep f32 activations");
    let portable = snapembed().args(["embed", "--kernels", "portable", "--text", "a b c"]).output().unwrap();
    let default = snapembed().args(["embed", "--text", "a b c"]).output().unwrap();
    assert!(portable.status.success() && default.status.success());
    let parse = |b: &[u8]| serde_json::from_slice::<Vec<f32>>(b).unwrap();
    let (p, d) = (parse(&portable.stdout), parse(&default.stdout));
    let cos: f32 = p.iter().zip(&d).map(|(a, b)| a * b).sum();
    assert!(cos > 0.998, "portable and default kernels agree: cosine {cos}");
}

#[test]
fn int8_arithmetic_on_avx2_is_listed_chosen_by_auto_and_kept_out_of_exact() {
    let info = |kernels: &str| -> serde_json::Value {
        let out = snapembed().args(["info", "--kernels", kernels]).output().unwrap();
        assert!(out.status.success(), "{kernels}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let auto = info("auto");
    let available: Vec<&str> = auto["kernels_available"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    if !available.contains(&"avx2-int8") {
        eprintln!("skipped: this CPU has no AVX2 ({available:?})");
        return;
    }
    let int8 = ["avx2-int8", "avx2-int7", "avxvnni", "avx512vnni"];
    assert!(int8.contains(&auto["kernels"].as_str().unwrap()), "auto picks int8 arithmetic: {}", auto["kernels"]);
    assert!(available.contains(&"avx2-int7"), "7-bit activations on every AVX2 CPU: {available:?}");
    assert_eq!(info("avx2-int7")["kernels"], "avx2-int7");
    assert_eq!(info("avx2-int8")["kernels"], "avx2-int8");
    assert!(!int8.contains(&info("exact")["kernels"].as_str().unwrap()), "exact keeps f32 activations");
    let embed = |kernels: &str| {
        let out = snapembed().args(["embed", "--kernels", kernels, "--text", "Lambda runs on AVX2."]).output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Vec<f32>>(&out.stdout).unwrap()
    };
    let (q, e) = (embed("avx2-int8"), embed("exact"));
    let cos: f32 = q.iter().zip(&e).map(|(a, b)| a * b).sum();
    assert!(cos > 0.998 && cos < 1.0, "int8 and f32 activations agree closely but not exactly: cosine {cos}");
}
