//! snapembed: text embeddings from a pre-built int8 snapshot.
//!
//! Crate map, in layers (each uses only the ones above it):
//! - [`engine`]: text → vectors. The snapshot format, the tokenizer, the numeric kernels, BERT,
//!   pooling and [`Embedder`], the one API the rest calls. Knows nothing of HTTP.
//! - [`search`]: corpora: the mapped index (writer, validating reader), the scan kernel,
//!   chunked documents, and the [`search::Search`] trait a database backend can implement too.
//! - [`tally`]: the Tally form webhook as a feature: signature, payload, answers → query text,
//!   forwarding, idempotency. Knows nothing of axum.
//! - [`service`]: the HTTP API (`app(state) -> Router`), shared by the server, the Lambda
//!   adapter and the tests; its configuration, memory guard and metrics.
//! - [`scorer`]: resumes against a job description, requirement by requirement, and resume
//!   text from PDFs, contained (uses the engine through [`Embedder`]; knows nothing of HTTP).

pub mod engine;
pub mod scorer;
pub mod search;
pub mod service;
pub mod tally;

pub use engine::embedder::{EmbedError, EmbedOptions, Embedder, LoadTimes};

/// The snapshot compiled into the binary (feature `embedded-snapshot`), 64-byte aligned.
#[cfg(feature = "embedded-snapshot")]
pub fn embedded_snapshot() -> &'static [u8] {
    #[repr(C, align(64))]
    struct Aligned<T: ?Sized>(T);
    static BYTES: &Aligned<[u8]> =
        &Aligned(*include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/artifacts/all-MiniLM-L6-v2.snap")));
    &BYTES.0
}

/// The corpus index compiled into the binary (feature `embedded-corpus`, when
/// artifacts/corpus.idx existed at build time; build.rs checks), 64-byte aligned.
pub fn embedded_corpus() -> Option<&'static [u8]> {
    #[cfg(all(feature = "embedded-corpus", snapembed_corpus_idx))]
    {
        #[repr(C, align(64))]
        struct Aligned<T: ?Sized>(T);
        static BYTES: &Aligned<[u8]> =
            &Aligned(*include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/artifacts/corpus.idx")));
        Some(&BYTES.0)
    }
    #[cfg(not(all(feature = "embedded-corpus", snapembed_corpus_idx)))]
    None
}
