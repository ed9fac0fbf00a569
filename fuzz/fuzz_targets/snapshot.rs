//! The snapshot reader (`--snapshot FILE`): `Embedder::from_static` validates the file, builds
//! the tokenizer from its vocabulary tensor and BERT from its plan and tensor table. Whatever
//! the bytes, it must return an error or a model that embeds a text into `dimensions()` floats.
//! See `snapshot_file` for the three ways an input becomes a file (raw, the real file's header
//! replaced, the same with its data size and checksum fixed up).
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapembed::Embedder;

fuzz_target!(|input: &[u8]| {
    let Some(file) = snapembed_fuzz::snapshot_file(input) else { return };
    // SAFETY: nothing borrowing the buffer outlives the closure (the model is dropped in it).
    unsafe {
        snapembed_fuzz::with_static(&file, |bytes| {
            let Ok(model) = Embedder::from_static(bytes) else { return };
            let model = model.with_threads(1);
            let texts = ["hello world", "ünïcödé 漢字 [SEP] [MASK]", ""];
            if let Ok(vectors) = model.embed(&texts) {
                assert_eq!(vectors.len(), texts.len());
                assert!(vectors.iter().all(|v| v.len() == model.dimensions()), "vectors of the announced width");
            }
            let enc = model.tokenize("a b c");
            assert!(enc.ids.len() <= model.max_tokens().max(2));
        })
    }
});
