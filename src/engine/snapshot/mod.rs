//! The snapshot: one file holding the op plan, packed weights, tokenizer and settings.
//!
//! `format` is the spec (plain data), `reader` validates and borrows from a mapping, `writer`
//! (feature `write`, used by model-prep) lays a file out deterministically.

pub mod format;
mod reader;
#[cfg(feature = "write")]
mod writer;

pub use format::*;
pub use reader::{Snapshot, SnapshotError, TensorId, TensorView};
#[cfg(feature = "write")]
pub use writer::{SnapshotWriter, TensorData};

/// Rounds `n` up to the next multiple of `ALIGNMENT`.
pub(crate) fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGNMENT) * ALIGNMENT
}

/// bincode 2's standard configuration: little-endian, variable-length integers.
pub(crate) fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}
