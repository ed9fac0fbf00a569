//! snapembed: text embeddings from a pre-built int8 snapshot.
//!
//! Crate map, in layers (each uses only the ones above it):
//! - [`engine`]: text → vectors. The snapshot format, the tokenizer, the numeric kernels, BERT,
//!   pooling and [`Embedder`], the one API the rest calls. Knows nothing of HTTP.
//! - [`service`]: the HTTP API (`app(state) -> Router`), shared by the server, the Lambda
//!   adapter and the tests; its configuration, memory guard and metrics.

pub mod engine;
pub mod service;

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
