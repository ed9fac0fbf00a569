//! Shared by the fuzz targets and the seed writer: turning a fuzzer's input into the file a
//! reader sees (raw, or with the checksums and sizes fixed up so mutations reach the checks
//! behind them), 64-byte-aligned `'static` buffers for the readers' `from_static`, the
//! real model and corpus loaded once, and a current-thread runtime built once per process.
//!
//! Without the fix-ups a mutated header would almost always stop at `HeaderChecksum`: the
//! fuzzer would spend its time proving CRC-32 works.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::{Arc, OnceLock};

use snapembed::engine::snapshot as snap;
use snapembed::search::format as idx;
use snapembed::Embedder;

/// Both formats align their data section (and every table in it) to 64 bytes.
pub const ALIGNMENT: usize = 64;
const PREAMBLE_LEN: usize = 24;

/// Runs `f` on a 64-byte-aligned copy of `bytes` that pretends to be `'static` (what the
/// readers' `from_static` want, as for bytes compiled into the binary), then frees the copy.
///
/// # Safety
/// Nothing returned by `f` may borrow the slice: it is freed when `f` returns.
pub unsafe fn with_static<R>(bytes: &[u8], f: impl FnOnce(&'static [u8]) -> R) -> R {
    let len = bytes.len().max(1);
    let layout = match Layout::from_size_align(len, ALIGNMENT) {
        Ok(l) => l,
        Err(_) => return f(&[]),
    };
    // SAFETY: `layout` has a non-zero size; the pointer is checked for null.
    let ptr = unsafe { alloc_zeroed(layout) };
    assert!(!ptr.is_null(), "out of memory");
    // SAFETY: `ptr` is valid for `len >= bytes.len()` bytes and does not overlap `bytes`.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
    // SAFETY: initialized above; lives until `dealloc` below, after `f` (and everything it
    // borrowed, per this function's contract) is gone.
    let slice: &'static [u8] = unsafe { std::slice::from_raw_parts(ptr, bytes.len()) };
    let r = f(slice);
    // SAFETY: allocated above with this layout.
    unsafe { dealloc(ptr, layout) };
    r
}

fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGNMENT) * ALIGNMENT
}

/// Preamble + header + padding + data, with the header's length and CRC right.
fn assemble(magic: &[u8; 8], header: &[u8], data: &[u8]) -> Vec<u8> {
    let version = if *magic == snap::MAGIC { snap::FORMAT_VERSION } else { idx::FORMAT_VERSION };
    let mut out = Vec::with_capacity(align_up(PREAMBLE_LEN + header.len()) + data.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(header).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(header);
    out.resize(align_up(out.len()), 0);
    out.extend_from_slice(data);
    out
}

/// The header bytes and data bytes of a file laid out as preamble | header | pad | data, as
/// far as the preamble's header length allows (no checks: the fuzzer may have broken it).
pub fn split(file: &[u8]) -> Option<(&[u8], &[u8])> {
    if file.len() < PREAMBLE_LEN {
        return None;
    }
    let header_len = u32::from_le_bytes([file[12], file[13], file[14], file[15]]) as usize;
    let header_end = PREAMBLE_LEN.checked_add(header_len)?;
    let header = file.get(PREAMBLE_LEN..header_end)?;
    let data = file.get(align_up(header_end).min(file.len())..)?;
    Some((header, data))
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The real snapshot compiled into this binary.
pub fn real_snapshot() -> &'static [u8] {
    snapembed::embedded_snapshot()
}

/// The real snapshot's header bytes and its tensor data.
pub fn real_snapshot_parts() -> (&'static [u8], &'static [u8]) {
    split(real_snapshot()).unwrap_or((&[], &[]))
}

/// How a snapshot input becomes a file: the first byte picks the mode.
/// - 0: the rest is the whole file (preamble checks, truncation, anything);
/// - 1: the rest is a header, placed in front of the real tensor data with a correct
///   preamble (the table of contents of the real file, mutated in place);
/// - 2: as 1, and when the header decodes its `data_len`/`data_crc32` are set to the real
///   data's, so the checks behind the checksums (offsets, shapes, the model's tensors) run.
pub fn snapshot_file(input: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = input.split_first()?;
    let (_, data) = real_snapshot_parts();
    match mode % 3 {
        0 => Some(rest.to_vec()),
        1 => Some(assemble(&snap::MAGIC, rest, data)),
        _ => {
            let Ok((mut header, _)) = bincode::serde::decode_from_slice::<snap::Header, _>(rest, bincode_config().with_limit::<{ 1 << 20 }>()) else {
                // Undecodable: still give the reader's decoder these bytes behind a right CRC.
                return Some(assemble(&snap::MAGIC, rest, data));
            };
            header.data_len = data.len() as u64;
            header.data_crc32 = crc32fast::hash(data);
            let bytes = bincode::serde::encode_to_vec(&header, bincode_config()).ok()?;
            Some(assemble(&snap::MAGIC, &bytes, data))
        }
    }
}

/// How an index input becomes a file: the first byte picks the mode.
/// - even: the rest is the whole file;
/// - odd: the rest is a file whose header (when it decodes) gets `data_len` and `data_crc32`
///   of its own data section, and the preamble its right length and CRC.
pub fn index_file(input: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = input.split_first()?;
    if mode % 2 == 0 {
        return Some(rest.to_vec());
    }
    let (header, data) = split(rest)?;
    let Ok((mut header, _)) = bincode::serde::decode_from_slice::<idx::IndexHeader, _>(header, bincode_config().with_limit::<{ 1 << 20 }>()) else {
        // Undecodable: still give the reader's decoder these bytes behind a right CRC.
        return Some(assemble(&idx::MAGIC, header, data));
    };
    header.data_len = data.len() as u64;
    header.data_crc32 = crc32fast::hash(data);
    // Format 2 checks each section's own CRC too.
    for s in &mut header.sections {
        let range = usize::try_from(s.offset).ok().zip(usize::try_from(s.offset.saturating_add(s.nbytes)).ok());
        if let Some(bytes) = range.and_then(|(a, b)| data.get(a..b)) {
            s.crc32 = crc32fast::hash(bytes);
        }
    }
    let bytes = bincode::serde::encode_to_vec(&header, bincode_config()).ok()?;
    Some(assemble(&idx::MAGIC, &bytes, data))
}

/// The real model (embedded snapshot), loaded once, one thread.
pub fn model() -> &'static Embedder {
    static MODEL: OnceLock<Embedder> = OnceLock::new();
    MODEL.get_or_init(|| match Embedder::from_static(real_snapshot()) {
        Ok(m) => m.with_threads(1),
        Err(e) => panic!("the embedded snapshot must load: {e}"),
    })
}

/// The real corpus index (artifacts/corpus.idx), mapped once.
pub fn corpus() -> Arc<snapembed::search::MappedIndex> {
    static CORPUS: OnceLock<Arc<snapembed::search::MappedIndex>> = OnceLock::new();
    CORPUS
        .get_or_init(|| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts/corpus.idx");
            match snapembed::search::MappedIndex::open(&path) {
                Ok(i) => Arc::new(i),
                Err(e) => panic!("{} must open: {e}", path.display()),
            }
        })
        .clone()
}

/// A current-thread runtime, built once per process (spawn_blocking still gets its own threads).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    })
}
