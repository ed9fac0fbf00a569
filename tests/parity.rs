//! Vectors against sentence-transformers: the reference goldens, batching, options.

use snapembed::engine::kernels::Isa;
use snapembed::engine::embedder::{MAX_POOLED_SCRATCH_BYTES, POOLED_CHUNK_TOKENS};
use snapembed::{EmbedError, EmbedOptions, Embedder};

use crate::common::{cosine, embedder, goldens, snapshot_path};

/// Every kernel this CPU can run, the default (`auto`) and the exact ones among them: each is
/// bit-exact to its own spec, so a kernel's accuracy is the same on every CPU that runs it.
fn check_goldens(file: &str) {
    for isa in Isa::available() {
        let e = Embedder::from_snapshot(&snapshot_path()).unwrap().with_isa(isa);
        check_goldens_with(&e, file);
    }
}

fn check_goldens_with(e: &Embedder, file: &str) {
    let gs = goldens(file);
    let texts: Vec<&str> = gs.iter().map(|g| g.text.as_str()).collect();
    let got = e.embed(&texts).unwrap();
    assert_eq!(got.len(), gs.len());
    let cos: Vec<f64> = got.iter().zip(&gs).map(|(v, g)| cosine(v, &g.embedding)).collect();
    let mean = cos.iter().sum::<f64>() / cos.len() as f64;
    let (worst, min) = cos.iter().enumerate().fold((0, 1.0), |m, (i, &c)| if c < m.1 { (i, c) } else { m });
    let kernels = e.isa().name();
    eprintln!("{file} on {kernels}: {} texts, cosine to sentence-transformers mean {mean:.6}, min {min:.6}", gs.len());
    assert!(min >= 0.995, "{file} on {kernels}: text {worst} ({:?}) has cosine {min}", gs[worst].text);
    assert!(mean >= 0.999, "{file} on {kernels}: mean cosine {mean}");
    for v in &got {
        let norm: f64 = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "normalized output, norm {norm}");
    }
}

#[test]
fn reference_twenty_edge_cases_match_sentence_transformers() {
    check_goldens("golden_test20.json");
}

#[test]
fn mixed_lengths_and_long_texts_match_the_reference() {
    check_goldens("golden_mixed.json");
}

#[test]
fn batching_does_not_change_a_vector() {
    let gs = goldens("golden_mixed.json");
    let texts: Vec<&str> = gs.iter().map(|g| g.text.as_str()).collect();
    let batched = embedder().embed(&texts).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let single = embedder().embed(&[t]).unwrap();
        let c = cosine(&single[0], &batched[i]);
        assert!(c >= 1.0 - 1e-5, "text {i}: batch vs single cosine {c}");
        assert_eq!(single[0], batched[i], "packed batches give bit-identical vectors");
    }
}

#[test]
fn unnormalized_vectors_point_the_same_way() {
    let e = embedder();
    let opts = EmbedOptions { normalize: Some(false), ..Default::default() };
    let raw = e.embed_with(&["A man is playing a guitar."], opts).unwrap();
    let unit = e.embed(&["A man is playing a guitar."]).unwrap();
    let norm: f32 = raw[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 0.01, "mean-pooled vectors are not unit length (norm {norm})");
    assert!(cosine(&raw[0], &unit[0]) > 0.999_999);
}

#[test]
fn truncation_can_be_refused() {
    let e = embedder();
    let long = "word ".repeat(300);
    let texts = ["short", long.as_str()];
    let err = e.embed_with(&texts, EmbedOptions { truncate: false, ..Default::default() }).unwrap_err();
    match err {
        EmbedError::TooLong { index, tokens, max } => assert_eq!((index, tokens, max), (1, 302, 256)),
        other => panic!("expected TooLong, got {other}"),
    }
    assert_eq!(e.embed(&texts).unwrap().len(), 2, "truncating (the default) embeds both");
}

#[test]
fn empty_input_list_gives_no_vectors() {
    assert!(embedder().embed(&[]).unwrap().is_empty());
}

#[test]
fn similar_texts_score_higher_than_unrelated_ones() {
    let v = embedder().embed(&["How do I reset my password?", "I forgot my password", "Best pizza in Naples"]).unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2);
}

#[test]
fn threads_do_not_change_a_vector() {
    let gs = goldens("golden_mixed.json");
    let texts: Vec<&str> = gs.iter().map(|g| g.text.as_str()).collect();
    let with = |threads| embedder().embed_with(&texts, EmbedOptions { threads: Some(threads), ..Default::default() }).unwrap();
    let one = with(1);
    assert_eq!(one, with(2), "2 threads");
    assert_eq!(one, with(3), "3 threads");
}

#[test]
fn threads_splitting_one_forward_pass_do_not_change_a_vector() {
    // One chunk each: the threads split the forward pass's rows (queries, projections), for
    // one long text, one short text, and several texts whose rows the split cuts mid-sequence.
    let long = "Splitting one forward pass between threads must not change a single bit. ".repeat(12);
    let several = ["a short one", "a second, somewhat longer text about vector search", "third", "and the fourth text"];
    let cases: Vec<Vec<&str>> = vec![vec![long.as_str()], vec!["sixteen tokens or so, in a sentence of modest length here"], several.to_vec()];
    for isa in Isa::available() {
        let e = Embedder::from_snapshot(&snapshot_path()).unwrap().with_isa(isa);
        for texts in &cases {
            let with = |threads| e.embed_with(texts, EmbedOptions { threads: Some(threads), chunk_tokens: 4096, ..Default::default() }).unwrap();
            let one = with(1);
            for threads in [2, 3, 7] {
                assert_eq!(one, with(threads), "{} on {threads} threads, {} texts", isa.name(), texts.len());
            }
        }
    }
}

#[test]
fn scratch_kept_between_calls_can_be_released() {
    let e = Embedder::from_snapshot(&snapshot_path()).unwrap();
    assert_eq!(e.release_scratch(), 0, "nothing kept before the first call");
    let long = "a sentence about embeddings and their many uses. ".repeat(20);
    let first = e.embed(&[long.as_str()]).unwrap();
    let kept = e.release_scratch();
    assert!(kept > 256 * 1536 * 4, "a 256-token forward's buffers are kept: {kept} bytes");
    assert_eq!(e.release_scratch(), 0, "released once");
    assert_eq!(e.embed(&[long.as_str()]).unwrap(), first, "fresh buffers give the same bits");
}

#[test]
fn a_servers_passes_keep_their_buffers_and_grow_them_to_what_they_need_not_twice_it() {
    let long = "a sentence about embeddings and their many uses. ".repeat(30);
    let short = "a sentence about embeddings and their many uses. ".repeat(15);
    let options = EmbedOptions { chunk_tokens: POOLED_CHUNK_TOKENS, ..EmbedOptions::default() };
    for threads in [1, 2] {
        let e = Embedder::from_snapshot(&snapshot_path()).unwrap().with_threads(threads).with_pooled_scratch_limit(MAX_POOLED_SCRATCH_BYTES);
        // ~400 tokens, then 512-token passes: a Vec doubling its capacity would hold 800 tokens'
        // buffers (~12 MB), over the limit, and be freed after all.
        e.embed_with(&[long.as_str(), short.as_str()], options).unwrap();
        e.embed_with(&[long.as_str(); 4], options).unwrap();
        let kept = e.release_scratch();
        assert!(kept > 0 && kept <= MAX_POOLED_SCRATCH_BYTES * threads, "{threads} thread(s): {kept} bytes kept");
    }
}

#[test]
fn under_the_servers_limit_a_long_forward_passes_buffers_are_freed_not_kept() {
    let long = "a sentence about embeddings and their many uses. ".repeat(30);
    // Four 256-token texts: one 1,024-token forward pass, ~16 MB of buffers.
    let four = [long.as_str(); 4];
    let batch = Embedder::from_snapshot(&snapshot_path()).unwrap().with_threads(1);
    batch.embed(&four).unwrap();
    assert!(batch.release_scratch() > MAX_POOLED_SCRATCH_BYTES, "by default a long pass's buffers are kept");
    let e = Embedder::from_snapshot(&snapshot_path()).unwrap().with_threads(1).with_pooled_scratch_limit(MAX_POOLED_SCRATCH_BYTES);
    e.embed(&four).unwrap();
    assert_eq!(e.release_scratch(), 0, "a 1,024-token forward's buffers are over MAX_POOLED_SCRATCH_BYTES");
    e.embed(&[long.as_str()]).unwrap();
    let kept = e.release_scratch();
    assert!(kept > 0 && kept <= MAX_POOLED_SCRATCH_BYTES, "a 256-token forward's buffers are kept: {kept} bytes");
}
