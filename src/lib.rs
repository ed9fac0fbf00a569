//! snapembed: text embeddings from a pre-built int8 snapshot.
//!
//! Crate map:
//! - [`snapshot`]: the file format (spec, validating reader, deterministic writer)
//! - [`tokenizer`]: sentence-transformers' WordPiece tokenization, from the snapshot's vocabulary
//! - [`kernels`]: the numeric core (panel matmul over int8/f32 weights, GELU, softmax, LayerNorm)
//! - [`model`]: BERT as the snapshot's plan describes it
//! - [`pooling`]: mean/CLS pooling and L2 normalization
//! - [`embedder`]: [`Embedder`], the API everything else calls
//! - [`http`]: the HTTP API (`app(state) -> Router`), shared by [`server`], [`lambda`] and tests
//! - [`config`]: service flags and limits; [`memory`]: the memory guard; [`metrics`]: Prometheus

pub mod config;
pub mod embedder;
pub mod http;
pub mod lambda;
pub mod memory;
pub mod metrics;
pub mod server;
pub mod kernels;
pub mod model;
pub mod pooling;
pub mod snapshot;
pub mod tokenizer;

pub use embedder::{EmbedError, EmbedOptions, Embedder, LoadTimes};

/// The snapshot compiled into the binary (feature `embedded-snapshot`), 64-byte aligned.
#[cfg(feature = "embedded-snapshot")]
pub fn embedded_snapshot() -> &'static [u8] {
    #[repr(C, align(64))]
    struct Aligned<T: ?Sized>(T);
    static BYTES: &Aligned<[u8]> =
        &Aligned(*include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/artifacts/all-MiniLM-L6-v2.snap")));
    &BYTES.0
}
