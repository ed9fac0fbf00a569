//! The corpus-index reader (`--corpus FILE`, `MappedIndex`): validation, then everything a
//! search reads from the mapping (ids, texts, metadata, spans, both vector tables, the filter's
//! terms and postings). Whatever the bytes: an error, or an index whose searches return at most
//! `top_k` hits with spans inside their texts. See `index_file` for raw vs fixed-up inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapembed::search::{FilterValue, MappedIndex, Search, SearchParams};

fuzz_target!(|input: &[u8]| {
    let Some(file) = snapembed_fuzz::index_file(input) else { return };
    // SAFETY: nothing borrowing the buffer outlives the closure (the index is dropped in it).
    unsafe { snapembed_fuzz::with_static(&file, |bytes| exercise(bytes, input)) }
});

fn exercise(bytes: &'static [u8], input: &[u8]) {
    let Ok(index) = MappedIndex::from_static(bytes, "fuzz") else { return };
    let info = index.info();
    assert_eq!(info.documents as usize, index.documents());
    for d in 0..index.documents().min(64) {
        let text = index.text(d);
        let _ = (index.id(d), index.metadata(d));
        for c in index.doc_chunks(d) {
            let span = index.span(c);
            // Spans are checked against the stored bytes; `text` is a lossy view (U+FFFD for a
            // non-UTF-8 text), so only the slicing must not panic.
            let _ = text.get(span);
            let _ = index.vector_f16(c);
        }
    }
    let dims = index.header().model.dimensions as usize;
    if dims == 0 || dims > 4096 {
        return;
    }
    // A query from the input's bytes, and a filter on a term the index holds (so postings run).
    let query: Vec<f32> = (0..dims).map(|i| f32::from(input.get(i % input.len().max(1)).copied().unwrap_or(1)) - 127.5).collect();
    let mut filter = snapembed::search::Filter::new();
    for d in 0..index.documents().min(2) {
        if let Some(map) = index.metadata(d).as_object() {
            for (k, v) in map.iter().take(2) {
                filter.insert(k.clone(), FilterValue::One(v.clone()));
            }
        }
    }
    for params in [
        SearchParams { top_k: Some(3), filter: None, min_score: None },
        SearchParams { top_k: Some(100), filter: Some(filter), min_score: Some(-1.0) },
    ] {
        if let Ok(hits) = index.search(std::slice::from_ref(&query), &params) {
            assert!(hits.len() <= params.top_k());
            for h in &hits {
                assert!(h.span[0] <= h.span[1]);
            }
        }
        assert!(index.search_exhaustive(std::slice::from_ref(&query), &params).len() <= params.top_k());
    }
}
