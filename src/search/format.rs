//! The corpus index file format: plain data shared by the writer and the validating reader.
//!
//! Same shape as the model snapshot (`engine/snapshot/format.rs`):
//!
//! ```text
//! offset 0   MAGIC (8 bytes) | FORMAT_VERSION u32 LE | header_len u32 LE | header_crc32 u32 LE | 0u32
//! offset 24  header: `IndexHeader`, bincode 2 (standard config)
//!            zero padding up to a multiple of ALIGNMENT
//! data_start sections; every section starts at a multiple of ALIGNMENT from data_start
//! ```
//!
//! Sections (all little-endian; `D` documents, `C` chunks, `N` dimensions, `T` filter terms):
//!
//! | name | type | what |
//! |---|---|---|
//! | `docs.chunks` | u32 × (D+1) | document d owns chunks `[docs.chunks[d], docs.chunks[d+1])` |
//! | `docs.id_offsets`, `docs.ids` | u64 × (D+1), UTF-8 | ids |
//! | `docs.text_offsets`, `docs.text` | u64 × (D+1), UTF-8 | the original text (snippets and spans) |
//! | `docs.meta_offsets`, `docs.meta` | u64 × (D+1), UTF-8 | metadata, one JSON object each |
//! | `chunks.spans` | u32 × 2C | byte start/end of each chunk in its document's text |
//! | `vectors.i8` | i8 × C·N | the scan vectors: each chunk's unit vector · 127 / max\|x\| |
//! | `vectors.scale` | f32 × C | each chunk's max\|x\| / 127 |
//! | `vectors.f16` | f16 × C·N | the rescoring vectors (IEEE half) |
//! | `vectors.mean` | f32 × N | the mean of every chunk vector (all zeros for an empty corpus) |
//! | `vectors.bits` | u64 × C·⌈N/64⌉ | bit i of a chunk: its vector minus the mean is > 0 at i |
//! | `filter.term_offsets`, `filter.terms` | u64 × (T+1), UTF-8 | sorted terms `["key",value]` (JSON) |
//! | `filter.posting_offsets`, `filter.postings` | u64 × (T+1), u32 | ascending documents per term |
//!
//! Every section carries its own CRC-32, so a reader can verify the few bytes a search needs
//! first and the rest later. `FORMAT_VERSION` is bumped for structural changes; a reader
//! rejects versions other than its own with a message to rebuild (version 1 had no sign bits
//! and one checksum for all the data).

use serde::{Deserialize, Serialize};

pub const MAGIC: [u8; 8] = *b"SNAPIDX\0";
pub const FORMAT_VERSION: u32 = 2;
/// Every section's offset is a multiple of this (a cache line; typed slices cast without copies).
pub const ALIGNMENT: usize = 64;
/// Magic, version, header length, header checksum, reserved.
pub const PREAMBLE_LEN: usize = 24;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexHeader {
    /// What wrote the file, e.g. `snapembed 0.1.0`.
    pub created_by: String,
    pub model: ModelRef,
    pub documents: u64,
    pub chunks: u64,
    /// Human-readable vector scheme, shown by `/model-status`.
    pub scheme: String,
    pub sections: Vec<SectionInfo>,
    /// Bytes of section data after the header's padding.
    pub data_len: u64,
    /// CRC-32 (IEEE) of all the section data: the index's identity, shown by `/health`.
    pub data_crc32: u32,
}

/// The model snapshot whose vectors the index holds: a query must be embedded by the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    /// The snapshot's data checksum (`Header::data_crc32`), which changes with any weight.
    pub checksum: u32,
    pub dimensions: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionInfo {
    pub name: String,
    /// From the start of the data section; a multiple of `ALIGNMENT`.
    pub offset: u64,
    pub nbytes: u64,
    /// CRC-32 (IEEE) of the section's bytes.
    pub crc32: u32,
}

/// The scheme string written by this version.
pub const SCHEME: &str = "sign-bit prefilter (centred), int8 scan (per-chunk scale), f16 rescoring of the top candidates";

pub mod section {
    pub const DOC_CHUNKS: &str = "docs.chunks";
    pub const ID_OFFSETS: &str = "docs.id_offsets";
    pub const IDS: &str = "docs.ids";
    pub const TEXT_OFFSETS: &str = "docs.text_offsets";
    pub const TEXT: &str = "docs.text";
    pub const META_OFFSETS: &str = "docs.meta_offsets";
    pub const META: &str = "docs.meta";
    pub const SPANS: &str = "chunks.spans";
    pub const VECTORS_I8: &str = "vectors.i8";
    pub const VECTORS_SCALE: &str = "vectors.scale";
    pub const VECTORS_F16: &str = "vectors.f16";
    pub const VECTORS_MEAN: &str = "vectors.mean";
    pub const VECTORS_BITS: &str = "vectors.bits";
    pub const TERM_OFFSETS: &str = "filter.term_offsets";
    pub const TERMS: &str = "filter.terms";
    pub const POSTING_OFFSETS: &str = "filter.posting_offsets";
    pub const POSTINGS: &str = "filter.postings";
    /// In the order the writer lays them out.
    pub const ALL: [&str; 17] = [
        DOC_CHUNKS, ID_OFFSETS, IDS, TEXT_OFFSETS, TEXT, META_OFFSETS, META, SPANS, VECTORS_I8, VECTORS_SCALE,
        VECTORS_F16, VECTORS_MEAN, VECTORS_BITS, TERM_OFFSETS, TERMS, POSTING_OFFSETS, POSTINGS,
    ];
}

/// u64 words of one chunk's sign bits.
pub fn bit_words(dims: usize) -> usize {
    dims.div_ceil(64)
}

/// Rounds `n` up to the next multiple of `ALIGNMENT`.
pub(crate) fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGNMENT) * ALIGNMENT
}

/// A filter term: the JSON array `["key", value]`, so keys and values cannot run together.
pub fn term(key: &str, value: &serde_json::Value) -> String {
    serde_json::Value::Array(vec![serde_json::Value::String(key.to_owned()), value.clone()]).to_string()
}
