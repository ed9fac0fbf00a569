//! The engine: text → vectors, exactly as sentence-transformers computes them.
//! - [`snapshot`]: the file format (spec, validating reader, deterministic writer)
//! - [`tokenizer`]: sentence-transformers' WordPiece tokenization, from the snapshot's vocabulary
//! - [`kernels`]: the numeric core (panel matmul over int8/f32 weights, GELU, softmax, LayerNorm)
//! - [`model`]: BERT as the snapshot's plan describes it
//! - [`chunk`]: overlapping windows of a long text that each fit the model, with their spans
//! - [`pooling`]: mean/CLS pooling and L2 normalization
//! - [`team`]: helper threads that split one forward pass, with microsecond hand-offs
//! - [`embedder`]: [`Embedder`](embedder::Embedder), the API everything else calls
//! - [`cache`]: the LRU of finished vectors that `Embedder` consults
//!
//! Nothing here knows of HTTP, corpora or resumes.

pub mod cache;
pub mod chunk;
pub mod embedder;
pub mod kernels;
pub mod model;
pub mod pooling;
pub mod snapshot;
pub mod team;
pub mod tokenizer;
