//! Shared by the fuzz targets and the seed writer: turning a fuzzer's input into the file a
//! reader sees (raw, or with the checksums and sizes fixed up so mutations reach the checks
//! behind them), 64-byte-aligned `'static` buffers for the readers' `from_static`, the
//! real model and corpus loaded once, and a current-thread runtime built once per process.
//!
//! Without the fix-ups a mutated header would almost always stop at `HeaderChecksum`: the
//! fuzzer would spend its time proving CRC-32 works.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::{Arc, OnceLock};

use snapembed::Embedder;


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

mod files;

pub use files::{http_request, index_file, split, ALIGNMENT};

/// The real snapshot compiled into this binary.
pub fn real_snapshot() -> &'static [u8] {
    snapembed::embedded_snapshot()
}

/// The real snapshot's header bytes and its tensor data.
pub fn real_snapshot_parts() -> (&'static [u8], &'static [u8]) {
    split(real_snapshot()).unwrap_or((&[], &[]))
}

/// How a snapshot input becomes a file, in front of the real snapshot's tensor data (see
/// `files::snapshot_file`).
pub fn snapshot_file(input: &[u8]) -> Option<Vec<u8>> {
    files::snapshot_file(input, real_snapshot_parts().1)
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
