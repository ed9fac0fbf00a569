//! Builds an index: each document's text cut into the model's windows (the engine's chunker),
//! every chunk embedded, the whole laid out by the writer and written atomically.
//!
//! Deterministic: chunks are embedded in document order and a vector does not depend on its
//! batch or thread (the engine's guarantee), so the same corpus gives the same bytes.

use std::io::Write;
use std::path::Path;

use super::corpus::Document;
use super::format::ModelRef;
use super::writer::{self, DocEntry, WriteError};
use crate::{EmbedError, EmbedOptions, Embedder};

/// Chunks per embedding call: large enough to keep every thread's batches full.
const BATCH_CHUNKS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("document {id:?} is too long for an index (spans past 4 GiB)")]
    TooLong { id: String },
    #[error("cannot write the index to {path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Every document's chunk spans (byte ranges in its text) and one unit vector per chunk.
pub struct Embedded {
    pub spans: Vec<Vec<(u32, u32)>>,
    pub vectors: Vec<Vec<f32>>,
}

/// What a chunk's vector is computed from: the document's title (when it has one) gives every
/// chunk its context; the span still points into the text alone.
fn chunk_input(doc: &Document, span: (u32, u32)) -> String {
    let piece = doc.text.get(span.0 as usize..span.1 as usize).unwrap_or("");
    match doc.title() {
        Some(t) if !t.trim().is_empty() => format!("{t}\n{piece}"),
        _ => piece.to_owned(),
    }
}

/// Chunks and embeds every document on `threads` workers, with reproducible kernels (an index
/// is the same bytes whichever CPU builds it); `progress(done, total)` is called with chunks
/// embedded so far.
pub fn embed_documents(model: &Embedder, docs: &[Document], threads: usize, progress: &mut dyn FnMut(usize, usize)) -> Result<Embedded, BuildError> {
    let mut spans = Vec::with_capacity(docs.len());
    for d in docs {
        let s: Option<Vec<(u32, u32)>> =
            super::chunk_spans(model, &d.text).into_iter().map(|r| Some((u32::try_from(r.start).ok()?, u32::try_from(r.end).ok()?))).collect();
        let mut s = s.ok_or_else(|| BuildError::TooLong { id: d.id.clone() })?;
        if s.is_empty() {
            s.push((0, u32::try_from(d.text.len()).map_err(|_| BuildError::TooLong { id: d.id.clone() })?));
        }
        spans.push(s);
    }
    let inputs: Vec<String> = docs.iter().zip(&spans).flat_map(|(d, s)| s.iter().map(|&sp| chunk_input(d, sp))).collect();
    let options = EmbedOptions { normalize: Some(true), truncate: true, threads: Some(threads.max(1)), reproducible: true, ..Default::default() };
    let mut vectors = Vec::with_capacity(inputs.len());
    progress(0, inputs.len());
    for batch in inputs.chunks(BATCH_CHUNKS) {
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        vectors.extend(model.embed_with(&refs, options)?);
        progress(vectors.len(), inputs.len());
    }
    Ok(Embedded { spans, vectors })
}

/// The model reference an index records.
pub fn model_ref(model: &Embedder) -> ModelRef {
    let h = model.header();
    ModelRef { name: h.model.name.clone(), checksum: h.data_crc32, dimensions: model.dimensions() as u32 }
}

/// Lays out the index bytes for documents and their embedded chunks.
pub fn index_bytes(model: ModelRef, docs: &[Document], embedded: &Embedded) -> Result<Vec<u8>, BuildError> {
    let entries: Vec<DocEntry<'_>> = docs
        .iter()
        .zip(&embedded.spans)
        .map(|(d, s)| DocEntry { id: &d.id, text: &d.text, metadata: &d.metadata, spans: s.clone() })
        .collect();
    Ok(writer::write(model, &entries, &embedded.vectors)?)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`: a
/// reader sees the old file or the new one, and a failure leaves nothing behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let io_err = |source| BuildError::Io { path: path.to_owned(), source };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".snapembed-index-").suffix(".tmp").tempfile_in(dir).map_err(io_err)?;
    tmp.write_all(bytes).map_err(io_err)?;
    // Temporary files are private (0600); an index is meant to be read by a server's user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(io_err)?;
    }
    tmp.as_file().sync_all().map_err(io_err)?;
    // On failure `persist` hands the file back, and dropping it deletes it.
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    Ok(())
}
