//! The tokenizer on any UTF-8 of any length (every text a request carries goes through it):
//! `[CLS] … [SEP]` within `max_tokens`, the untruncated count at least that, piece counting
//! agreeing with encoding, and chunk spans on character boundaries inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let model = snapembed_fuzz::model();
    let enc = model.tokenize(&text);
    let header = &model.header().tokenizer;
    assert!(enc.ids.len() >= 2 && enc.ids.len() <= model.max_tokens(), "{} ids", enc.ids.len());
    assert_eq!(enc.ids.first(), Some(&header.cls_id));
    assert_eq!(enc.ids.last(), Some(&header.sep_id));
    assert!(enc.untruncated_len >= enc.ids.len());
    let vocab = model.header().config.vocab_size;
    assert!(enc.ids.iter().all(|&id| id < vocab), "ids inside the vocabulary");
    for span in model.chunk(&text) {
        let r = span.start..span.end;
        assert!(text.get(r.clone()).is_some(), "chunk span {r:?} is not on char boundaries of a {}-byte text", text.len());
        assert!(span.pieces <= model.max_tokens() - 2, "a chunk of {} pieces does not fit the model", span.pieces);
    }
});
