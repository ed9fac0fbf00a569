//! PDF text extraction (`scorer::pdf::extract_text`, the resume upload path). pdf-extract and
//! lopdf panic and loop on bad files; `extract_text` contains them on its own thread. So a panic
//! on that thread is allowed to unwind into its `catch_unwind` (libFuzzer's hook would abort the
//! process on any panic), while one anywhere else is a finding. Every call must come back within
//! its limits: a result, or an error, by the deadline, and text no longer than the limit.
#![no_main]

use std::sync::Once;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use snapembed::scorer::pdf::{extract_text, PdfError, PdfLimits};

const LIMITS: PdfLimits = PdfLimits {
    max_bytes: 1 << 20,
    max_pages: 50,
    timeout: Duration::from_secs(2),
    max_inflated_bytes: 64 << 20,
    max_text_bytes: 1 << 20,
};

fn contain_extractor_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("pdf-extract") {
                return; // caught by extract_text's catch_unwind: Err(Crashed), by design
            }
            fuzzer_hook(info);
        }));
    });
}

fuzz_target!(|input: &[u8]| {
    contain_extractor_panics();
    let t = Instant::now();
    let result = extract_text(input, &LIMITS);
    // The pre-checks are linear in the input; the rest is bounded by the timeout.
    assert!(t.elapsed() < LIMITS.timeout + Duration::from_secs(1), "took {:?}: {result:?}", t.elapsed());
    match result {
        Ok(text) => assert!(text.len() <= LIMITS.max_text_bytes, "{} bytes of text", text.len()),
        Err(PdfError::Spawn(e)) => panic!("could not start the extractor: {e}"),
        Err(_) => {}
    }
});
