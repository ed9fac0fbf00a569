//! Opens an index: maps the file (or borrows bytes compiled into the binary), validates it once,
//! and answers searches from the mapping without copying it. The only `unsafe` is the mapping.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use memmap2::Mmap;

use super::format::*;
use super::scan::{dot_f16, dot_i8, hamming_rows_min, positions_at_most, prefetch, QueryVector};
use super::{CorpusInfo, Search, SearchError, SearchHit, SearchParams};
use crate::Embedder;

/// Snippets are the best chunk's text, cut to about this many characters at a word boundary.
pub const SNIPPET_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot open index {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a snapembed index (bad magic bytes)")]
    BadMagic,
    #[error("index format version {found} is not supported (this build reads version {supported}); rebuild it with `snapembed index`")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("index is truncated: {needed} bytes needed, {len} present")]
    Truncated { needed: u64, len: u64 },
    #[error("index has {extra} unexpected trailing bytes")]
    TrailingBytes { extra: u64 },
    #[error("index header checksum mismatch (file corrupted)")]
    HeaderChecksum,
    #[error("index header cannot be decoded")]
    HeaderDecode(#[source] bincode::error::DecodeError),
    #[error("index section {name} checksum mismatch (file corrupted): expected {expected:#010x}, found {found:#010x}")]
    SectionChecksum { name: String, expected: u32, found: u32 },
    #[error("index section {0} is missing")]
    MissingSection(String),
    #[error("index section {name}: offset {offset} is not a multiple of {ALIGNMENT}")]
    Misaligned { name: String, offset: u64 },
    #[error("index section {name}: bytes {offset}..{end} lie outside the {data_len}-byte data section")]
    OutOfBounds { name: String, offset: u64, end: u64, data_len: u64 },
    #[error("index section {name} is {nbytes} bytes, {expected} expected")]
    SectionSize { name: String, expected: u64, nbytes: u64 },
    #[error("index section {name} is inconsistent: {reason}")]
    BadTable { name: &'static str, reason: &'static str },
    #[error("embedded index bytes are not {ALIGNMENT}-byte aligned")]
    UnalignedStatic,
    #[error(
        "the index was built with model {index_model} (snapshot checksum {index_checksum:#010x}) but the server runs \
         {model} ({checksum:#010x}); rebuild it with `snapembed index` against this model"
    )]
    ModelMismatch { index_model: String, index_checksum: u32, model: String, checksum: u32 },
}

enum Bytes {
    Mapped(Mmap),
    Static(&'static [u8]),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Static(s) => s,
        }
    }
}

/// Byte ranges of every section in the file, resolved once.
struct Sections {
    doc_chunks: Range<usize>,
    id_offsets: Range<usize>,
    ids: Range<usize>,
    text_offsets: Range<usize>,
    text: Range<usize>,
    meta_offsets: Range<usize>,
    meta: Range<usize>,
    spans: Range<usize>,
    v8: Range<usize>,
    scale: Range<usize>,
    v16: Range<usize>,
    mean: Range<usize>,
    bits: Range<usize>,
    term_offsets: Range<usize>,
    terms: Range<usize>,
    posting_offsets: Range<usize>,
    postings: Range<usize>,
}

/// When the checksums of the big sections are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Every section before `open` returns (the CLI, tests).
    Now,
    /// Every section but [`DEFERRED`] before `open` returns; those by [`MappedIndex::verify_deferred`],
    /// which the server runs on a thread of its own right after start. A search before it ends
    /// reads bytes not yet checked (every read is bounds-checked, so at worst a wrong score);
    /// one after a mismatch is refused.
    Deferred,
}

/// The sections a search reads only a few rows of, and most of the file: checking them at
/// open cost 68 ms of the exec → first answer at 100,000 documents (bench/results/search.md).
pub const DEFERRED: [&str; 3] = [section::VECTORS_I8, section::VECTORS_F16, section::TEXT];

const PENDING: u8 = 0;
const VERIFIED: u8 = 1;
const DAMAGED: u8 = 2;

/// A validated, mapped index.
pub struct MappedIndex {
    bytes: Bytes,
    header: IndexHeader,
    s: Sections,
    source: String,
    load_ms: f64,
    data_start: usize,
    /// `PENDING` until the deferred sections are checked, then `VERIFIED` or `DAMAGED`.
    state: std::sync::atomic::AtomicU8,
    /// The first mismatch the deferred check found: (section, expected, found).
    damage: std::sync::OnceLock<(String, u32, u32)>,
}

impl MappedIndex {
    /// Maps `path` and validates it, including every section's checksum.
    pub fn open(path: &Path) -> Result<MappedIndex, IndexError> {
        Self::open_with(path, Verify::Now)
    }

    /// Maps `path` and validates it, checking the big sections now or later (see [`Verify`]).
    pub fn open_with(path: &Path, verify: Verify) -> Result<MappedIndex, IndexError> {
        let t = Instant::now();
        let open_err = |source| IndexError::Open { path: path.to_owned(), source };
        let file = File::open(path).map_err(open_err)?;
        // SAFETY: read-only mapping of an immutable build artifact (written to a temporary file
        // and renamed into place, never rewritten); a file truncated by another process while
        // mapped would fault, the documented limit of memory-mapping, as for the snapshot.
        let map = unsafe { Mmap::map(&file) }.map_err(open_err)?;
        Self::validate(Bytes::Mapped(map), path.display().to_string(), t, verify)
    }

    /// Validates bytes that live for the whole program (an index compiled into the binary),
    /// starting at an `ALIGNMENT`-aligned address.
    pub fn from_static(bytes: &'static [u8], source: &str) -> Result<MappedIndex, IndexError> {
        Self::from_static_with(bytes, source, Verify::Now)
    }

    /// [`MappedIndex::from_static`], checking the big sections now or later (see [`Verify`]).
    pub fn from_static_with(bytes: &'static [u8], source: &str, verify: Verify) -> Result<MappedIndex, IndexError> {
        let t = Instant::now();
        if !(bytes.as_ptr() as usize).is_multiple_of(ALIGNMENT) {
            return Err(IndexError::UnalignedStatic);
        }
        Self::validate(Bytes::Static(bytes), source.to_owned(), t, verify)
    }

    fn validate(bytes: Bytes, source: String, started: Instant, verify: Verify) -> Result<MappedIndex, IndexError> {
        let (header, data_start) = parse_header(&bytes)?;
        let s = resolve_sections(&header, data_start)?;
        let index = MappedIndex {
            bytes,
            header,
            s,
            source,
            load_ms: 0.0,
            data_start,
            state: std::sync::atomic::AtomicU8::new(PENDING),
            damage: std::sync::OnceLock::new(),
        };
        index.check_sections(|name| verify == Verify::Now || !DEFERRED.contains(&name))?;
        index.check_tables()?;
        if verify == Verify::Now {
            index.state.store(VERIFIED, std::sync::atomic::Ordering::Release);
        }
        Ok(MappedIndex { load_ms: started.elapsed().as_secs_f64() * 1e3, ..index })
    }

    /// The checksums of the sections `which` selects.
    fn check_sections(&self, which: impl Fn(&str) -> bool) -> Result<(), IndexError> {
        for info in self.header.sections.iter().filter(|i| which(&i.name)) {
            let start = self.data_start + info.offset as usize;
            let found = crc32fast::hash(&self.bytes[start..start + info.nbytes as usize]);
            if found != info.crc32 {
                return Err(IndexError::SectionChecksum { name: info.name.clone(), expected: info.crc32, found });
            }
        }
        Ok(())
    }

    /// Checks the sections [`Verify::Deferred`] left; after a mismatch every search is refused
    /// with it. Returns how long it took, in milliseconds.
    pub fn verify_deferred(&self) -> Result<f64, IndexError> {
        let t = Instant::now();
        let result = self.check_sections(|name| DEFERRED.contains(&name));
        let state = match &result {
            Ok(()) => VERIFIED,
            Err(IndexError::SectionChecksum { name, expected, found }) => {
                let _ = self.damage.set((name.clone(), *expected, *found));
                DAMAGED
            }
            Err(_) => DAMAGED,
        };
        self.state.store(state, std::sync::atomic::Ordering::Release);
        result.map(|()| t.elapsed().as_secs_f64() * 1e3)
    }

    /// Whether every section's checksum has been checked and matched.
    pub fn verified(&self) -> bool {
        self.state.load(std::sync::atomic::Ordering::Acquire) == VERIFIED
    }

    /// The mismatch the deferred check found, as the error a search returns.
    fn damaged(&self) -> Option<IndexError> {
        if self.state.load(std::sync::atomic::Ordering::Acquire) != DAMAGED {
            return None;
        }
        let (name, expected, found) = self.damage.get().cloned().unwrap_or_default();
        Some(IndexError::SectionChecksum { name, expected, found })
    }

    pub fn header(&self) -> &IndexHeader {
        &self.header
    }

    pub fn documents(&self) -> usize {
        self.header.documents as usize
    }

    pub fn chunks(&self) -> usize {
        self.header.chunks as usize
    }

    fn dims(&self) -> usize {
        self.header.model.dimensions as usize
    }

    /// Size of the whole file in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    fn u32s(&self, r: &Range<usize>) -> &[u32] {
        // Sections start at multiples of ALIGNMENT from a page-aligned (or 64-byte-aligned
        // static) base and their sizes were checked, so the casts cannot fail.
        bytemuck::cast_slice(&self.bytes[r.clone()])
    }

    fn u64s(&self, r: &Range<usize>) -> &[u64] {
        bytemuck::cast_slice(&self.bytes[r.clone()])
    }

    fn blob(&self, offsets: &Range<usize>, blob: &Range<usize>, i: usize) -> &[u8] {
        let off = self.u64s(offsets);
        &self.bytes[blob.clone()][off[i] as usize..off[i + 1] as usize]
    }

    fn str_at(&self, offsets: &Range<usize>, blob: &Range<usize>, i: usize) -> &str {
        // The writer stores only `str`s and the checksum matched; a lossy view keeps a forged
        // file from failing a request.
        std::str::from_utf8(self.blob(offsets, blob, i)).unwrap_or("\u{fffd}")
    }

    pub fn id(&self, doc: usize) -> &str {
        self.str_at(&self.s.id_offsets, &self.s.ids, doc)
    }

    pub fn text(&self, doc: usize) -> &str {
        self.str_at(&self.s.text_offsets, &self.s.text, doc)
    }

    pub fn metadata(&self, doc: usize) -> serde_json::Value {
        serde_json::from_slice(self.blob(&self.s.meta_offsets, &self.s.meta, doc)).unwrap_or(serde_json::Value::Null)
    }

    /// The chunks of document `doc`.
    pub fn doc_chunks(&self, doc: usize) -> Range<usize> {
        let c = self.u32s(&self.s.doc_chunks);
        c[doc] as usize..c[doc + 1] as usize
    }

    /// Byte span of chunk `chunk` in its document's text.
    pub fn span(&self, chunk: usize) -> Range<usize> {
        let s = self.u32s(&self.s.spans);
        s[2 * chunk] as usize..s[2 * chunk + 1] as usize
    }

    fn v8(&self) -> &[i8] {
        bytemuck::cast_slice(&self.bytes[self.s.v8.clone()])
    }

    fn scales(&self) -> &[f32] {
        bytemuck::cast_slice(&self.bytes[self.s.scale.clone()])
    }

    fn mean(&self) -> &[f32] {
        bytemuck::cast_slice(&self.bytes[self.s.mean.clone()])
    }

    fn bits(&self) -> &[u64] {
        bytemuck::cast_slice(&self.bytes[self.s.bits.clone()])
    }

    /// The prefilter: the `keep` chunks (or a few more, at equal distance) whose sign bits are
    /// nearest any query's, among the documents the mask lets through; ascending chunk order.
    /// Distances are at most the dimension count, so a histogram finds the cut in one pass.
    fn prefilter(&self, qs: &[QueryVector], mask: Option<&[bool]>, keep: usize) -> Vec<u32> {
        let words = bit_words(self.dims());
        // Distances are capped at `cap` (padding bits of a forged file could add more), so
        // u16::MAX marks a chunk the mask left out, counted in the histogram's last bin.
        let cap = self.dims().min(u16::MAX as usize - 2);
        let bits = self.bits();
        let mut dist = vec![u16::MAX; self.chunks()];
        let mut measure = |chunks: Range<usize>| {
            for q in qs {
                hamming_rows_min(&q.bits, &bits[chunks.start * words..chunks.end * words], cap as u16, &mut dist[chunks.clone()]);
            }
        };
        match mask {
            None => measure(0..self.chunks()),
            Some(m) => (0..self.documents()).filter(|&d| m[d]).for_each(|d| measure(self.doc_chunks(d))),
        }
        let mut hist = vec![0usize; cap + 2];
        for &h in &dist {
            hist[(h as usize).min(cap + 1)] += 1;
        }
        let (mut seen, mut cut) = (0, 0);
        while cut < cap + 1 && seen + hist[cut] < keep {
            seen += hist[cut];
            cut += 1;
        }
        positions_at_most(&dist, cut as u16)
    }

    /// The rescoring vector of a chunk.
    pub fn vector_f16(&self, chunk: usize) -> &[half::f16] {
        let all: &[u16] = bytemuck::cast_slice(&self.bytes[self.s.v16.clone()]);
        let row = &all[chunk * self.dims()..(chunk + 1) * self.dims()];
        // SAFETY: `half::f16` is `repr(transparent)` over `u16`, so the slices have one layout.
        unsafe { std::slice::from_raw_parts(row.as_ptr().cast::<half::f16>(), row.len()) }
    }

    /// Documents whose metadata passes `filter` (`None`: no filter).
    fn filter_mask(&self, params: &SearchParams) -> Option<Vec<bool>> {
        let filter = params.filter.as_ref().filter(|f| !f.is_empty())?;
        let mut mask = vec![true; self.documents()];
        let term_off = self.u64s(&self.s.term_offsets);
        let terms = term_off.len() - 1;
        let post_off = self.u64s(&self.s.posting_offsets);
        let postings = self.u32s(&self.s.postings);
        for (key, value) in filter {
            let mut any = vec![false; self.documents()];
            for v in value.values() {
                let wanted = term(key, v);
                let found = binary_search(terms, |i| self.blob(&self.s.term_offsets, &self.s.terms, i).cmp(wanted.as_bytes()));
                if let Some(t) = found {
                    for &d in &postings[post_off[t] as usize..post_off[t + 1] as usize] {
                        any[d as usize] = true;
                    }
                }
            }
            mask.iter_mut().zip(any).for_each(|(m, a)| *m &= a);
        }
        Some(mask)
    }

    /// Every table's internal consistency: what the checksum cannot promise for a forged file.
    fn check_tables(&self) -> Result<(), IndexError> {
        let (docs, chunks) = (self.documents(), self.chunks());
        let bad = |name, reason| Err(IndexError::BadTable { name, reason });
        let dc = self.u32s(&self.s.doc_chunks);
        if dc[0] != 0 || dc[docs] as usize != chunks || dc.windows(2).any(|w| w[0] >= w[1]) {
            return bad(section::DOC_CHUNKS, "chunk ranges must start at 0, grow, and end at the chunk count");
        }
        for (name, off, blob) in [
            (section::ID_OFFSETS, &self.s.id_offsets, &self.s.ids),
            (section::TEXT_OFFSETS, &self.s.text_offsets, &self.s.text),
            (section::META_OFFSETS, &self.s.meta_offsets, &self.s.meta),
            (section::TERM_OFFSETS, &self.s.term_offsets, &self.s.terms),
        ] {
            let o = self.u64s(off);
            if o.first() != Some(&0) || o.last().copied() != Some(blob.len() as u64) || o.windows(2).any(|w| w[0] > w[1]) {
                return bad(name, "offsets must start at 0, not decrease, and end at the blob's size");
            }
        }
        let text_off = self.u64s(&self.s.text_offsets);
        for d in 0..docs {
            let len = (text_off[d + 1] - text_off[d]) as usize;
            if self.doc_chunks(d).any(|c| {
                let r = self.span(c);
                r.start > r.end || r.end > len
            }) {
                return bad(section::SPANS, "a chunk span lies outside its document's text");
            }
        }
        let po = self.u64s(&self.s.posting_offsets);
        let postings = self.u32s(&self.s.postings);
        if po.len() != self.u64s(&self.s.term_offsets).len()
            || po.first() != Some(&0)
            || po.last().copied() != Some(postings.len() as u64)
            || po.windows(2).any(|w| w[0] > w[1])
        {
            return bad(section::POSTING_OFFSETS, "one posting list per term, offsets within the postings");
        }
        if postings.iter().any(|&d| d as usize >= docs) {
            return bad(section::POSTINGS, "a posting names a document that does not exist");
        }
        Ok(())
    }

    fn hit(&self, doc: usize, chunk: usize, score: f32) -> SearchHit {
        let text = self.text(doc);
        let r = self.span(chunk);
        // Spans were checked against the text's length; a forged one off a char boundary
        // yields an empty snippet rather than a panic.
        let chunk_text = text.get(r.clone()).unwrap_or("");
        let start = text.get(..r.start).map_or(0, |t| t.chars().count());
        let end = start + chunk_text.chars().count();
        SearchHit { id: self.id(doc).to_owned(), score, snippet: snippet(chunk_text), span: [start, end], metadata: self.metadata(doc) }
    }

    /// Exact search from the f16 vectors only (every chunk rescored): the reference the fast
    /// path is measured against.
    pub fn search_exhaustive(&self, queries: &[Vec<f32>], params: &SearchParams) -> Vec<SearchHit> {
        let mask = self.filter_mask(params);
        let docs: Vec<usize> = (0..self.documents()).filter(|&d| mask.as_ref().is_none_or(|m| m[d])).collect();
        self.rescore(queries, &docs, params)
    }

    /// Exact scores of `docs`' chunks; the best `top_k` documents above `min_score`.
    fn rescore(&self, queries: &[Vec<f32>], docs: &[usize], params: &SearchParams) -> Vec<SearchHit> {
        let mut scored: Vec<(f32, usize, usize)> = docs
            .iter()
            .map(|&d| {
                let mut best = (f32::NEG_INFINITY, d, usize::MAX);
                for c in self.doc_chunks(d) {
                    let row = self.vector_f16(c);
                    for q in queries {
                        let s = dot_f16(q, row);
                        if s > best.0 {
                            best = (s, d, c);
                        }
                    }
                }
                best
            })
            // A document none of whose chunks scored (NaN vectors in a forged file) has no hit:
            // its chunk would be usize::MAX (bench/fuzz.sh's index target found the panic).
            .filter(|(_, _, c)| *c != usize::MAX)
            .filter(|(s, _, _)| params.min_score.is_none_or(|m| *s >= m))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(params.top_k());
        scored.into_iter().map(|(s, d, c)| self.hit(d, c, s)).collect()
    }
}

/// Candidate documents re-ranked exactly per search: `RESCORE_FACTOR · top_k + RESCORE_EXTRA`.
/// The int8 score is within ~0.01 of the exact one; on the labelled queries this many
/// candidates give the exact top 10 (tests/search.rs measures recall against exact search).
const RESCORE_FACTOR: usize = 4;
const RESCORE_EXTRA: usize = 16;
/// From this many chunks up, the sign-bit prefilter picks the rows the int8 pass reads: below
/// it, reading every int8 row is already fast (20,000 rows: ~8 MB, about 1 ms).
const PREFILTER_MIN_CHUNKS: usize = 20_000;
/// Chunks the prefilter keeps: this many per document to rescore, and at least
/// `PREFILTER_MIN_KEEP`. Measured by `bench/search.sh` (recall of the fast scan against exact
/// search at 100,000 documents; bench/results/search.md).
const PREFILTER_FACTOR: usize = 32;
const PREFILTER_MIN_KEEP: usize = 2_048;
/// How many candidate rows ahead the int8 pass asks for: enough misses in flight to hide
/// memory latency, few enough that the rows are still cached when reached.
const PREFETCH_AHEAD: usize = 16;
/// Below `min_score` by more than this, an int8 score cannot belong to a passing document.
const QUANT_MARGIN: f32 = 0.05;

impl Search for MappedIndex {
    fn info(&self) -> CorpusInfo {
        CorpusInfo {
            documents: self.header.documents,
            chunks: self.header.chunks,
            checksum: format!("crc32:{:08x}", self.header.data_crc32),
            source: self.source.clone(),
            bytes: self.len() as u64,
            load_ms: self.load_ms,
            model: self.header.model.name.clone(),
            scheme: self.header.scheme.clone(),
        }
    }

    /// Answerable unless the check after start found a damaged section (then /health is degraded).
    fn reachable(&self) -> Result<(), SearchError> {
        self.damaged().map_or(Ok(()), |e| Err(e.into()))
    }

    fn check_model(&self, model: &Embedder) -> Result<(), SearchError> {
        let h = model.header();
        let m = &self.header.model;
        if m.name != h.model.name || m.checksum != h.data_crc32 || m.dimensions as usize != model.dimensions() {
            return Err(IndexError::ModelMismatch {
                index_model: m.name.clone(),
                index_checksum: m.checksum,
                model: h.model.name.clone(),
                checksum: h.data_crc32,
            }
            .into());
        }
        Ok(())
    }

    fn search(&self, queries: &[Vec<f32>], params: &SearchParams) -> Result<Vec<SearchHit>, SearchError> {
        if let Some(e) = self.damaged() {
            return Err(e.into());
        }
        let dims = self.dims();
        if let Some(q) = queries.iter().find(|q| q.len() != dims) {
            return Err(SearchError::InvalidParam { field: "query".into(), reason: format!("vector has {} dimensions, the index {dims}", q.len()) });
        }
        let mean = (self.chunks() >= PREFILTER_MIN_CHUNKS).then(|| self.mean());
        let qs: Vec<QueryVector> = queries.iter().map(|q| QueryVector::new(q, mean)).collect();
        let mask = self.filter_mask(params);
        let (v8, scales) = (self.v8(), self.scales());
        let dc = self.u32s(&self.s.doc_chunks);
        let int8 = |c: usize| {
            let row = &v8[c * dims..(c + 1) * dims];
            qs.iter().map(|q| dot_i8(&q.q8, row) as f32 * (q.scale * scales[c])).fold(f32::NEG_INFINITY, f32::max)
        };
        let keep = RESCORE_FACTOR * params.top_k() + RESCORE_EXTRA;
        // The int8 pass: each document's best chunk score, over every chunk of a small index
        // and over the prefilter's candidates of a large one.
        let mut approx: Vec<(f32, u32)> = Vec::with_capacity(self.documents().min(PREFILTER_FACTOR * keep));
        if mean.is_some() {
            let candidates = self.prefilter(&qs, mask.as_deref(), (PREFILTER_FACTOR * keep).max(PREFILTER_MIN_KEEP));
            let mut d = 0;
            for (i, &c) in candidates.iter().enumerate() {
                // Candidates are scattered rows: without a prefetch each one waits for a cache
                // (and TLB) miss, which made this loop a third of the scan.
                if let Some(&ahead) = candidates.get(i + PREFETCH_AHEAD) {
                    let ahead = ahead as usize;
                    prefetch(bytemuck::cast_slice(&v8[ahead * dims..(ahead + 1) * dims]));
                    prefetch(bytemuck::bytes_of(&scales[ahead]));
                }
                while dc[d + 1] <= c {
                    d += 1;
                }
                let score = int8(c as usize);
                match approx.last_mut() {
                    Some((best, doc)) if *doc == d as u32 => *best = best.max(score),
                    _ => approx.push((score, d as u32)),
                }
            }
        } else {
            for d in 0..self.documents() {
                if mask.as_ref().is_some_and(|m| !m[d]) {
                    continue;
                }
                let best = (dc[d] as usize..dc[d + 1] as usize).map(int8).fold(f32::NEG_INFINITY, f32::max);
                approx.push((best, d as u32));
            }
        }
        if let Some(m) = params.min_score {
            approx.retain(|(s, _)| *s >= m - QUANT_MARGIN);
        }
        let keep = keep.min(approx.len());
        if keep < approx.len() {
            approx.select_nth_unstable_by(keep, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            approx.truncate(keep);
        }
        let docs: Vec<usize> = approx.iter().map(|(_, d)| *d as usize).collect();
        Ok(self.rescore(queries, &docs, params))
    }
}

/// The chunk's text, cut at a word boundary near `SNIPPET_CHARS` with an ellipsis.
pub fn snippet(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(SNIPPET_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => {
            let head = &text[..cut];
            let head = head.rfind(char::is_whitespace).map_or(head, |i| &head[..i]);
            format!("{}…", head.trim_end())
        }
    }
}

fn binary_search(n: usize, cmp: impl Fn(usize) -> std::cmp::Ordering) -> Option<usize> {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        match cmp(mid) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(mid),
        }
    }
    None
}

/// Most bytes the header's strings and lists may claim while decoding. Without a limit bincode
/// allocates a string's declared length before reading it: a forged length (CRC fixed up) made
/// `--corpus` abort on a 2^56-byte allocation (found by bench/fuzz.sh). Real headers are < 1 KB.
pub const HEADER_DECODE_LIMIT: usize = 1 << 20;

fn parse_header(all: &[u8]) -> Result<(IndexHeader, usize), IndexError> {
    let len = all.len() as u64;
    if all.len() >= MAGIC.len() && all[..MAGIC.len()] != MAGIC {
        return Err(IndexError::BadMagic);
    }
    if all.len() < PREAMBLE_LEN {
        return Err(IndexError::Truncated { needed: PREAMBLE_LEN as u64, len });
    }
    let word = |i: usize| u32::from_le_bytes([all[i], all[i + 1], all[i + 2], all[i + 3]]);
    let version = word(8);
    if version != FORMAT_VERSION {
        return Err(IndexError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let header_end = PREAMBLE_LEN + word(12) as usize;
    if all.len() < header_end {
        return Err(IndexError::Truncated { needed: header_end as u64, len });
    }
    let header_bytes = &all[PREAMBLE_LEN..header_end];
    if crc32fast::hash(header_bytes) != word(16) {
        return Err(IndexError::HeaderChecksum);
    }
    let (header, _): (IndexHeader, usize) =
        bincode::serde::decode_from_slice(header_bytes, bincode::config::standard().with_limit::<HEADER_DECODE_LIMIT>())
            .map_err(IndexError::HeaderDecode)?;
    let data_start = align_up(header_end);
    let needed = (data_start as u64).saturating_add(header.data_len);
    if len < needed {
        return Err(IndexError::Truncated { needed, len });
    }
    if len > needed {
        return Err(IndexError::TrailingBytes { extra: len - needed });
    }
    Ok((header, data_start))
}

fn resolve_sections(h: &IndexHeader, data_start: usize) -> Result<Sections, IndexError> {
    let (docs, chunks, dims) = (h.documents, h.chunks, h.model.dimensions as u64);
    let find = |name: &'static str, expected: Option<u64>, unit: u64| -> Result<Range<usize>, IndexError> {
        let s = h.sections.iter().find(|s| s.name == name).ok_or_else(|| IndexError::MissingSection(name.to_owned()))?;
        if !s.offset.is_multiple_of(ALIGNMENT as u64) {
            return Err(IndexError::Misaligned { name: name.to_owned(), offset: s.offset });
        }
        let end = s.offset.saturating_add(s.nbytes);
        if end > h.data_len {
            return Err(IndexError::OutOfBounds { name: name.to_owned(), offset: s.offset, end, data_len: h.data_len });
        }
        let size_ok = match expected {
            Some(e) => s.nbytes == e,
            None => s.nbytes.is_multiple_of(unit) && s.nbytes >= unit,
        };
        if !size_ok {
            return Err(IndexError::SectionSize { name: name.to_owned(), expected: expected.unwrap_or(unit), nbytes: s.nbytes });
        }
        Ok(data_start + s.offset as usize..data_start + end as usize)
    };
    let offsets = Some(8 * (docs + 1));
    let blob = |name| find(name, None, 1).or_else(|e| match e {
        // An empty blob (say, no metadata at all) is a valid zero-length section.
        IndexError::SectionSize { nbytes: 0, .. } => Ok(0..0),
        e => Err(e),
    });
    let term_offsets = find(section::TERM_OFFSETS, None, 8)?;
    let terms = (term_offsets.len() / 8) as u64;
    Ok(Sections {
        doc_chunks: find(section::DOC_CHUNKS, Some(4 * (docs + 1)), 4)?,
        id_offsets: find(section::ID_OFFSETS, offsets, 8)?,
        ids: blob(section::IDS)?,
        text_offsets: find(section::TEXT_OFFSETS, offsets, 8)?,
        text: blob(section::TEXT)?,
        meta_offsets: find(section::META_OFFSETS, offsets, 8)?,
        meta: blob(section::META)?,
        spans: find(section::SPANS, Some(8 * chunks), 8)?,
        v8: find(section::VECTORS_I8, Some(chunks * dims), 1)?,
        scale: find(section::VECTORS_SCALE, Some(4 * chunks), 4)?,
        v16: find(section::VECTORS_F16, Some(2 * chunks * dims), 2)?,
        mean: find(section::VECTORS_MEAN, Some(4 * dims), 4)?,
        bits: find(section::VECTORS_BITS, Some(8 * chunks * bit_words(dims as usize) as u64), 8)?,
        term_offsets,
        terms: blob(section::TERMS)?,
        posting_offsets: find(section::POSTING_OFFSETS, Some(8 * terms), 8)?,
        postings: find(section::POSTINGS, None, 4).or_else(|e| match e {
            IndexError::SectionSize { nbytes: 0, .. } => Ok(0..0),
            e => Err(e),
        })?,
    })
}

impl std::fmt::Debug for MappedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedIndex").field("source", &self.source).field("documents", &self.header.documents).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors in clusters, like embeddings of related texts (a xorshift stream: no dependency).
    fn clustered(n: usize, clusters: usize, noise: f32, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        };
        // A shared direction, as MiniLM's vectors have, so the centring is exercised.
        let common: Vec<f32> = (0..384).map(|_| next()).collect();
        let centres: Vec<Vec<f32>> = (0..clusters).map(|_| (0..384).map(|i| next() + common[i]).collect()).collect();
        (0..n)
            .map(|i| {
                let mut v: Vec<f32> = centres[i % clusters].iter().map(|c| c + noise * next()).collect();
                crate::engine::pooling::l2_normalize(&mut v);
                v
            })
            .collect()
    }

    #[test]
    fn the_prefilter_keeps_the_exact_top_results_of_a_large_index() {
        use crate::search::writer::{write, DocEntry};
        let n = PREFILTER_MIN_CHUNKS + 4_000;
        // The queries are 60 more draws from the same clusters.
        let mut vectors = clustered(n + 60, 400, 1.2, 7);
        let queries = vectors.split_off(n);
        let ids: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
        let meta: Vec<serde_json::Map<String, serde_json::Value>> =
            (0..n).map(|i| serde_json::json!({"group": i % 8}).as_object().cloned().unwrap_or_default()).collect();
        let docs: Vec<DocEntry> =
            ids.iter().zip(&meta).map(|(id, metadata)| DocEntry { id, text: "t", metadata, spans: vec![(0, 1)] }).collect();
        let model = ModelRef { name: "test".into(), checksum: 1, dimensions: 384 };
        let bytes: &'static [u8] = Vec::leak(write(model, &docs, &vectors).unwrap());
        // Vec<u8> is not 64-byte aligned: copy into an aligned home.
        let aligned: &'static mut [u64] = Vec::leak(vec![0u64; bytes.len().div_ceil(8) + 8]);
        let base: &'static mut [u8] = bytemuck::cast_slice_mut(aligned);
        let skip = base.as_ptr().align_offset(ALIGNMENT);
        base[skip..skip + bytes.len()].copy_from_slice(bytes);
        let index = MappedIndex::from_static(&base[skip..skip + bytes.len()], "test").unwrap();
        assert!(index.chunks() >= PREFILTER_MIN_CHUNKS);
        let (mut found, mut wanted) = (0, 0);
        let one_in_eight: crate::search::Filter = serde_json::from_value(serde_json::json!({"group": 3})).unwrap();
        for (i, q) in queries.iter().enumerate() {
            // Every other query with a 1-in-8 filter: the prefilter ranks only what passes it.
            let filter = (i % 2 == 1).then(|| one_in_eight.clone());
            let params = SearchParams { top_k: Some(10), filter, ..Default::default() };
            let fast = index.search(std::slice::from_ref(q), &params).unwrap();
            let exact = index.search_exhaustive(std::slice::from_ref(q), &params);
            assert_eq!(exact.len(), 10);
            assert!(params.filter.is_none() || fast.iter().all(|h| h.metadata["group"] == 3));
            wanted += exact.len();
            found += exact.iter().filter(|e| fast.iter().any(|f| f.id == e.id)).count();
        }
        let recall = found as f64 / wanted as f64;
        assert!(recall >= 0.99, "recall@10 of the prefiltered scan against exact search: {recall}");
    }

    #[test]
    fn snippets_cut_at_a_word_boundary() {
        assert_eq!(snippet("  short text "), "short text");
        let long = "word ".repeat(100);
        let s = snippet(&long);
        assert!(s.ends_with("word…") && s.chars().count() <= SNIPPET_CHARS + 1, "{s}");
    }
}
