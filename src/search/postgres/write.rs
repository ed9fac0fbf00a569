//! Writing a corpus into the tables: upserts by document id, one transaction per batch, so a
//! re-run is idempotent and a crash loses nothing already committed; `--delete-missing`; and
//! the shard a document belongs to, so N writers on N machines split a corpus with the database
//! as the only coordinator (each document has exactly one writer; the rows they touch are disjoint).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_postgres::types::{ToSql, Type};

use super::query::run;
use super::schema::{self, Layout};
use super::{PgError, PgSearch};

/// `--shard I/N`: this writer takes the documents whose id hashes to I (1-based, like
/// `--shard 1/4` … `4/4` in test runners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// The shard of `id`: the first 8 bytes of SHA-256(id), big-endian, mod N, plus one. Fixed
    /// here for good: writers on different machines and versions must agree.
    pub fn of(id: &str, count: u32) -> u32 {
        let h = Sha256::digest(id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&h[..8]);
        (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32 + 1
    }

    pub fn owns(&self, id: &str) -> bool {
        self.count <= 1 || Shard::of(id, self.count) == self.index
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard takes I/N with 1 <= I <= N (e.g. 2/4), not {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One embedded window of a document.
#[derive(Debug, Clone)]
pub struct ChunkRow {
    pub span: [usize; 2],
    pub snippet: String,
    pub vector: Vec<f32>,
}

/// One document ready to write.
#[derive(Debug, Clone)]
pub struct DocRows {
    pub id: String,
    pub metadata: Value,
    /// From [`content_hash`]: a document whose hash is unchanged is not embedded again.
    pub content_hash: String,
    pub chunks: Vec<ChunkRow>,
}

/// The hash a re-run compares: everything that decides a document's rows (its text, title and
/// metadata) and the model that embedded it.
pub fn content_hash(model: &str, title: Option<&str>, text: &str, metadata: &Value) -> String {
    let mut h = Sha256::new();
    for part in [model, title.unwrap_or(""), text, &metadata.to_string()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes into one table over one connection.
pub struct PgWriter<'a> {
    search: &'a PgSearch,
    client: deadpool_postgres::Object,
    layout: Layout,
}

impl PgSearch {
    /// Creates the extension, tables and indexes when missing, checks the table's model, and
    /// holds one connection for writing.
    pub async fn writer(&self, model: &str, dims: usize) -> Result<PgWriter<'_>, PgError> {
        let mut client = self.client().await?;
        let layout = schema::ensure(&mut client, &self.table, model, dims).await.map_err(|e| self.error(e))??;
        Ok(PgWriter { search: self, client, layout })
    }
}

impl PgWriter<'_> {
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The stored hashes of those of `ids` already in the table.
    pub async fn hashes(&self, ids: &[&str]) -> Result<HashMap<String, String>, PgError> {
        let sql = format!("SELECT id, content_hash FROM {} WHERE id = ANY($1::text[])", self.search.table.documents());
        let ids: Vec<&str> = ids.to_vec();
        let rows = self
            .client
            .query_typed(&sql, &[(&ids, Type::TEXT_ARRAY)])
            .await
            .map_err(|e| self.search.error(e))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(PgError::Query)
    }

    /// Replaces these documents and their chunks, all or nothing.
    pub async fn upsert(&mut self, docs: &[DocRows]) -> Result<(), PgError> {
        if docs.is_empty() {
            return Ok(());
        }
        let dims = self.layout.dimensions;
        let (d, c, vt) = (self.search.table.documents(), self.search.table.chunks(), self.layout.sql_type());
        let ids: Vec<&str> = docs.iter().map(|x| x.id.as_str()).collect();
        let hashes: Vec<&str> = docs.iter().map(|x| x.content_hash.as_str()).collect();
        let metas: Vec<&Value> = docs.iter().map(|x| &x.metadata).collect();
        let counts: Vec<i32> = docs.iter().map(|x| x.chunks.len() as i32).collect();
        let (mut c_ids, mut c_nums, mut c_starts, mut c_ends, mut c_snips, mut c_metas, mut c_vecs) =
            (vec![], vec![], vec![], vec![], vec![], vec![], Vec::<f32>::new());
        for doc in docs {
            for (i, chunk) in doc.chunks.iter().enumerate() {
                if chunk.vector.len() != dims {
                    return Err(PgError::Dimensions {
                        table: self.search.table.name().into(),
                        found: chunk.vector.len(),
                        expected: dims,
                    });
                }
                c_ids.push(doc.id.as_str());
                c_nums.push(i as i32);
                c_starts.push(chunk.span[0] as i32);
                c_ends.push(chunk.span[1] as i32);
                c_snips.push(chunk.snippet.as_str());
                c_metas.push(&doc.metadata);
                c_vecs.extend_from_slice(&chunk.vector);
            }
        }
        let upsert_docs = format!(
            "INSERT INTO {d} (id, content_hash, metadata, chunks)
             SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::int4[])
             ON CONFLICT (id) DO UPDATE SET content_hash = EXCLUDED.content_hash,
                 metadata = EXCLUDED.metadata, chunks = EXCLUDED.chunks, updated_at = now()"
        );
        let delete_chunks = format!("DELETE FROM {c} WHERE doc_id = ANY($1::text[])");
        // The vectors travel as one flat float4[]; row k takes its slice and casts it.
        let insert_chunks = format!(
            "INSERT INTO {c} (doc_id, chunk, span_start, span_end, snippet, metadata, embedding)
             SELECT u.doc_id, u.chunk, u.s, u.e, u.snippet, u.metadata,
                    ($7::real[])[(u.k - 1) * {dims} + 1 : u.k * {dims}]::{vt}
             FROM unnest($1::text[], $2::int4[], $3::int4[], $4::int4[], $5::text[], $6::jsonb[])
                  WITH ORDINALITY AS u(doc_id, chunk, s, e, snippet, metadata, k)"
        );
        let pgbouncer = self.search.url.pgbouncer;
        let timeout_ms = (self.search.options.timeout.as_millis() * 30).max(60_000);
        let search = self.search;
        let tx = self.client.transaction().await.map_err(|e| search.error(e))?;
        tx.batch_execute(&format!("SET LOCAL statement_timeout = {timeout_ms}")).await.map_err(|e| search.error(e))?;
        let p: [(&(dyn ToSql + Sync), Type); 4] = [
            (&ids, Type::TEXT_ARRAY),
            (&hashes, Type::TEXT_ARRAY),
            (&metas, Type::JSONB_ARRAY),
            (&counts, Type::INT4_ARRAY),
        ];
        run(&tx, pgbouncer, &upsert_docs, &p).await.map_err(|e| search.error(e))?;
        run(&tx, pgbouncer, &delete_chunks, &[(&ids, Type::TEXT_ARRAY)]).await.map_err(|e| search.error(e))?;
        let p: [(&(dyn ToSql + Sync), Type); 7] = [
            (&c_ids, Type::TEXT_ARRAY),
            (&c_nums, Type::INT4_ARRAY),
            (&c_starts, Type::INT4_ARRAY),
            (&c_ends, Type::INT4_ARRAY),
            (&c_snips, Type::TEXT_ARRAY),
            (&c_metas, Type::JSONB_ARRAY),
            (&c_vecs, Type::FLOAT4_ARRAY),
        ];
        run(&tx, pgbouncer, &insert_chunks, &p).await.map_err(|e| search.error(e))?;
        tx.commit().await.map_err(|e| search.error(e))
    }

    /// Deletes this shard's documents whose ids are not in `keep` (their chunks follow by
    /// cascade). Returns how many went.
    pub async fn delete_missing(&mut self, keep: &HashSet<String>, shard: Shard) -> Result<u64, PgError> {
        let search = self.search;
        let sql = format!("SELECT id FROM {}", search.table.documents());
        let rows = self.client.simple_query(&sql).await.map_err(|e| search.error(e))?;
        let gone: Vec<String> = rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.try_get(0).ok().flatten().map(str::to_owned),
                _ => None,
            })
            .filter(|id| shard.owns(id) && !keep.contains(id))
            .collect();
        let mut deleted = 0;
        for batch in gone.chunks(1000) {
            let sql = format!("DELETE FROM {} WHERE id = ANY($1::text[])", search.table.documents());
            let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
            let tx = self.client.transaction().await.map_err(|e| search.error(e))?;
            let n = tx.execute_typed(&sql, &[(&batch, Type::TEXT_ARRAY)]).await.map_err(|e| search.error(e))?;
            tx.commit().await.map_err(|e| search.error(e))?;
            deleted += n;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_one_based_and_cover_every_id_once() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, count: 4 });
        for bad in ["0/4", "5/4", "1", "a/b", "1/0", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (1..=4).map(|i| Shard { index: i, count: 4 }).collect();
        let mut sizes = [0usize; 4];
        for n in 0..4000 {
            let id = format!("doc-{n}");
            let owners: Vec<usize> = (0..4).filter(|&s| shards[s].owns(&id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            sizes[owners[0]] += 1;
        }
        // A fair hash: each shard within 10 % of a quarter.
        assert!(sizes.iter().all(|&s| (900..=1100).contains(&s)), "{sizes:?}");
        // Fixed for good: a change would make writers of two versions disagree.
        // (values from Python's hashlib: int.from_bytes(sha256(id)[:8], "big") % N + 1)
        assert_eq!((Shard::of("kb-0001", 4), Shard::of("d1", 4), Shard::of("d1", 8)), (4, 3, 7));
        assert!(Shard::ALL.owns("anything"));
    }

    #[test]
    fn content_hash_sees_every_part() {
        let m = serde_json::json!({"category": "billing"});
        let base = content_hash("crc32:1", Some("t"), "text", &m);
        assert_ne!(base, content_hash("crc32:2", Some("t"), "text", &m));
        assert_ne!(base, content_hash("crc32:1", None, "text", &m));
        assert_ne!(base, content_hash("crc32:1", Some("t"), "text!", &m));
        assert_ne!(base, content_hash("crc32:1", Some("t"), "text", &serde_json::json!({})));
        assert_eq!(base, content_hash("crc32:1", Some("t"), "text", &m));
    }
}
