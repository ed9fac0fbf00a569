//! Tells the crate whether artifacts/corpus.idx exists, so the `embedded-corpus` feature
//! compiles it in when it is there and the crate still builds when it is not.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(snapembed_corpus_idx)");
    // A directory is watched recursively: adding or rebuilding the index re-runs this script.
    println!("cargo::rerun-if-changed=artifacts");
    if std::path::Path::new("artifacts/corpus.idx").is_file() {
        println!("cargo::rustc-cfg=snapembed_corpus_idx");
    }
}
