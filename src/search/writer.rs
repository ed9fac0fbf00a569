//! Lays out an index file: preamble, header, then each section padded to `ALIGNMENT`.
//! Deterministic: the bytes depend only on the documents, their chunk vectors and the model.

use std::collections::BTreeMap;

use super::format::*;
use super::scan::{quantize, sign_bits};

/// One document as the index stores it.
pub struct DocEntry<'a> {
    pub id: &'a str,
    pub text: &'a str,
    /// A JSON object.
    pub metadata: &'a serde_json::Map<String, serde_json::Value>,
    /// Byte spans of its chunks in `text`, in order; at least one.
    pub spans: Vec<(u32, u32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{vectors} vectors given for {chunks} chunks")]
    VectorCount { vectors: usize, chunks: usize },
    #[error("chunk {chunk} has {found} dimensions, the model gives {expected}")]
    Dimensions { chunk: usize, found: usize, expected: usize },
    #[error("the corpus has {0} chunks, more than an index holds (2^32 - 1)")]
    TooManyChunks(usize),
    #[error("the index header cannot be encoded")]
    Encode(#[source] bincode::error::EncodeError),
}

/// Serializes documents and their chunk vectors (unit vectors, in document then chunk order).
pub fn write(model: ModelRef, docs: &[DocEntry<'_>], vectors: &[Vec<f32>]) -> Result<Vec<u8>, WriteError> {
    let dims = model.dimensions as usize;
    let chunks: usize = docs.iter().map(|d| d.spans.len()).sum();
    if vectors.len() != chunks {
        return Err(WriteError::VectorCount { vectors: vectors.len(), chunks });
    }
    if u32::try_from(chunks).is_err() {
        return Err(WriteError::TooManyChunks(chunks));
    }
    let mut sections: Vec<(&str, Vec<u8>)> = Vec::new();

    let mut doc_chunks = Vec::with_capacity(4 * (docs.len() + 1));
    let mut n = 0u32;
    doc_chunks.extend_from_slice(&n.to_le_bytes());
    for d in docs {
        n += d.spans.len() as u32;
        doc_chunks.extend_from_slice(&n.to_le_bytes());
    }
    sections.push((section::DOC_CHUNKS, doc_chunks));
    let (off, blob) = strings(docs.iter().map(|d| d.id.as_bytes().to_vec()));
    sections.push((section::ID_OFFSETS, off));
    sections.push((section::IDS, blob));
    let (off, blob) = strings(docs.iter().map(|d| d.text.as_bytes().to_vec()));
    sections.push((section::TEXT_OFFSETS, off));
    sections.push((section::TEXT, blob));
    let (off, blob) = strings(docs.iter().map(|d| serde_json::Value::Object(d.metadata.clone()).to_string().into_bytes()));
    sections.push((section::META_OFFSETS, off));
    sections.push((section::META, blob));
    let spans: Vec<u8> = docs.iter().flat_map(|d| d.spans.iter()).flat_map(|(s, e)| [s.to_le_bytes(), e.to_le_bytes()]).flatten().collect();
    sections.push((section::SPANS, spans));

    let mut v8 = vec![0i8; chunks * dims];
    let mut scales = Vec::with_capacity(4 * chunks);
    let mut v16 = Vec::with_capacity(2 * chunks * dims);
    for (c, v) in vectors.iter().enumerate() {
        if v.len() != dims {
            return Err(WriteError::Dimensions { chunk: c, found: v.len(), expected: dims });
        }
        scales.extend_from_slice(&quantize(v, &mut v8[c * dims..(c + 1) * dims]).to_le_bytes());
        v16.extend(v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()));
    }
    sections.push((section::VECTORS_I8, v8.into_iter().map(|x| x as u8).collect()));
    sections.push((section::VECTORS_SCALE, scales));
    sections.push((section::VECTORS_F16, v16));
    // The prefilter's sign bits, centred on the corpus mean (summed in f64 in chunk order: the
    // same bytes for the same vectors).
    let mut sum = vec![0f64; dims];
    for v in vectors {
        sum.iter_mut().zip(v).for_each(|(s, x)| *s += f64::from(*x));
    }
    let mean: Vec<f32> = sum.iter().map(|s| if chunks == 0 { 0.0 } else { (s / chunks as f64) as f32 }).collect();
    let words = bit_words(dims);
    let mut bits = vec![0u64; chunks * words];
    for (c, v) in vectors.iter().enumerate() {
        sign_bits(v, &mean, &mut bits[c * words..(c + 1) * words]);
    }
    sections.push((section::VECTORS_MEAN, mean.iter().flat_map(|x| x.to_le_bytes()).collect()));
    sections.push((section::VECTORS_BITS, bits.iter().flat_map(|w| w.to_le_bytes()).collect()));

    // Inverted lists: every scalar metadata value (and every scalar in a list value) is a term.
    let mut postings: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (i, d) in docs.iter().enumerate() {
        for (key, value) in d.metadata {
            let values = match value {
                serde_json::Value::Array(items) => items.iter().collect(),
                v => vec![v],
            };
            for v in values.into_iter().filter(|v| !v.is_array() && !v.is_object()) {
                let list = postings.entry(term(key, v)).or_default();
                if list.last() != Some(&(i as u32)) {
                    list.push(i as u32);
                }
            }
        }
    }
    let (off, blob) = strings(postings.keys().map(|t| t.as_bytes().to_vec()));
    sections.push((section::TERM_OFFSETS, off));
    sections.push((section::TERMS, blob));
    let mut off = Vec::with_capacity(8 * (postings.len() + 1));
    let mut blob = Vec::new();
    let mut count = 0u64;
    off.extend_from_slice(&count.to_le_bytes());
    for list in postings.values() {
        blob.extend(list.iter().flat_map(|d| d.to_le_bytes()));
        count += list.len() as u64;
        off.extend_from_slice(&count.to_le_bytes());
    }
    sections.push((section::POSTING_OFFSETS, off));
    sections.push((section::POSTINGS, blob));

    let mut data = Vec::new();
    let mut infos = Vec::with_capacity(sections.len());
    for (name, bytes) in sections {
        let offset = align_up(data.len());
        data.resize(offset, 0);
        data.extend_from_slice(&bytes);
        infos.push(SectionInfo { name: name.to_owned(), offset: offset as u64, nbytes: bytes.len() as u64, crc32: crc32fast::hash(&bytes) });
    }
    let header = IndexHeader {
        created_by: format!("snapembed {}", env!("CARGO_PKG_VERSION")),
        model,
        documents: docs.len() as u64,
        chunks: chunks as u64,
        scheme: SCHEME.to_owned(),
        sections: infos,
        data_len: data.len() as u64,
        data_crc32: crc32fast::hash(&data),
    };
    let header_bytes = bincode::serde::encode_to_vec(&header, bincode::config::standard()).map_err(WriteError::Encode)?;
    let mut out = Vec::with_capacity(align_up(PREAMBLE_LEN + header_bytes.len()) + data.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&header_bytes).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&header_bytes);
    out.resize(align_up(out.len()), 0);
    out.extend_from_slice(&data);
    Ok(out)
}

/// u64 offsets (one more than items) and the concatenated bytes.
fn strings(items: impl Iterator<Item = Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    let mut off = 0u64.to_le_bytes().to_vec();
    let mut blob = Vec::new();
    for item in items {
        blob.extend_from_slice(&item);
        off.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    }
    (off, blob)
}
