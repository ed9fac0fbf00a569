//! `snapembed index CORPUS --to postgres://… [--table NAME] [--shard I/N] [--delete-missing]`:
//! the corpus into PostgreSQL + pgvector, in batches of documents each written in one
//! transaction. A document whose content hash is already stored is not embedded again, so a
//! re-run after a crash resumes where it stopped, and a re-run of an unchanged corpus writes
//! nothing. N shard writers may run at once on N machines: each embeds only its own documents.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use snapembed::search::corpus::Document;
use snapembed::search::postgres::write::{content_hash, ChunkRow};
use snapembed::search::postgres::{model_id, DocRows, PgArgs, PgOptions, PgSearch, Shard};
use snapembed::search::{builder, index};
use snapembed::Embedder;

/// Documents per transaction: small enough that a crash loses little work, large enough that
/// embedding batches stay full.
const BATCH_DOCS: usize = 64;

pub struct Target<'a> {
    pub url: &'a str,
    pub table: &'a str,
    pub shard: Shard,
    pub delete_missing: bool,
}

pub fn run(target: Target<'_>, docs: &[Document], model: &Embedder, progress: &mut dyn FnMut(usize, usize)) -> anyhow::Result<()> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // A build's statements (an upsert of 64 documents' chunks into an HNSW index) take longer
    // than a search's: a minute each.
    let options = PgOptions { table: target.table.into(), pool_size: 1, timeout: Duration::from_secs(60), ef_search: 40 };
    let pg = PgSearch::new(target.url, options)?;
    let model_name = model_id(model);
    let mut writer = runtime.block_on(pg.writer(&model_name, model.dimensions()))?;
    let mine: Vec<&Document> = docs.iter().filter(|d| target.shard.owns(&d.id)).collect();
    let (mut written, mut chunks, mut unchanged) = (0usize, 0usize, 0usize);
    progress(0, mine.len());
    for (i, batch) in mine.chunks(BATCH_DOCS).enumerate() {
        let hashes: Vec<String> = batch
            .iter()
            .map(|d| content_hash(&model_name, d.title(), &d.text, &serde_json::Value::Object(d.metadata.clone())))
            .collect();
        let ids: Vec<&str> = batch.iter().map(|d| d.id.as_str()).collect();
        let stored = runtime.block_on(writer.hashes(&ids))?;
        let todo: Vec<(Document, String)> = batch
            .iter()
            .zip(hashes)
            .filter(|(d, h)| stored.get(&d.id) != Some(h))
            .map(|(d, h)| ((*d).clone(), h))
            .collect();
        unchanged += batch.len() - todo.len();
        if !todo.is_empty() {
            let todo_docs: Vec<Document> = todo.iter().map(|(d, _)| d.clone()).collect();
            let embedded = builder::embed_documents(model, &todo_docs, model.threads(), &mut |_, _| {})?;
            let mut vectors = embedded.vectors.into_iter();
            let rows: Vec<DocRows> = todo
                .into_iter()
                .zip(embedded.spans)
                .map(|((doc, hash), spans)| {
                    let chunk_rows = spans
                        .into_iter()
                        .map(|(s, e)| {
                            let piece = doc.text.get(s as usize..e as usize).unwrap_or("");
                            // Spans in characters, as the mapped index reports them.
                            let start = doc.text.get(..s as usize).map_or(0, |t| t.chars().count());
                            ChunkRow {
                                span: [start, start + piece.chars().count()],
                                snippet: index::snippet(piece),
                                vector: vectors.next().unwrap_or_default(),
                            }
                        })
                        .collect::<Vec<_>>();
                    chunks += chunk_rows.len();
                    DocRows {
                        id: doc.id,
                        metadata: serde_json::Value::Object(doc.metadata),
                        content_hash: hash,
                        chunks: chunk_rows,
                    }
                })
                .collect();
            written += rows.len();
            runtime.block_on(writer.upsert(&rows))?;
        }
        progress(((i + 1) * BATCH_DOCS).min(mine.len()), mine.len());
    }
    let deleted = if target.delete_missing {
        let keep: HashSet<String> = docs.iter().map(|d| d.id.clone()).collect();
        runtime.block_on(writer.delete_missing(&keep, target.shard))?
    } else {
        0
    };
    eprintln!(
        "indexed shard {} ({} of {} documents): {written} written ({chunks} chunks), {unchanged} unchanged, {deleted} deleted, into table {} at {} in {:.1} s",
        target.shard,
        mine.len(),
        docs.len(),
        pg.table.name(),
        pg.url.redacted,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `snapembed search --search-url`: the table as the search backend.
pub fn backend(args: &PgArgs, model: &Embedder) -> anyhow::Result<Option<snapembed::search::postgres::PgBackend>> {
    match args.open()? {
        Some(pg) => Ok(Some(snapembed::search::postgres::PgBackend::new(pg, model)?)),
        None => Ok(None),
    }
}
