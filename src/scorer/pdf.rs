//! Resume text from a PDF, contained. `pdf-extract` (measured the best of the small pure-Rust
//! extractors on generated resumes) has open panic issues and can loop, and lopdf inflates
//! streams without a bound, so [`extract_text`] never runs them on the caller's thread:
//! - size, the `%PDF-` header and the total inflated size of the Flate streams are checked
//!   first (a 10 MB upload can inflate ~1000×);
//! - lopdf then loads the document on a dedicated thread under `catch_unwind`, where the
//!   encryption and the page count are checked before pdf-extract runs;
//! - XObjects are walked before pdf-extract runs them: it recurses into `Do` without a depth
//!   limit (a self-drawing form overflows the stack, which aborts the process), and it parses
//!   images as content streams (panics, wasted time), so form cycles, deep nesting and fan-out
//!   are refused and non-form XObjects are emptied;
//! - the caller waits at most `timeout`. An extraction that overruns is abandoned: its thread
//!   stops at the next character it emits (the output writer checks the deadline), but one stuck
//!   in a loop that emits nothing keeps a core busy until it ends. Threads cannot be killed, so
//!   while [`MAX_ABANDONED`] such threads live, new PDFs get [`PdfError::Busy`] (503) instead
//!   of pinning more cores; and at most [`MAX_RUNNING`] extractions run at once.
//!
//! The text is normalized for the scorer: ligatures spelled out, words hyphenated across line
//! ends joined, wrapped lines of one sentence joined, whitespace collapsed. What the text means
//! is the scorer's business, not this module's.

use std::cell::Cell;
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use pdf_extract::{ConvertToFmt, OutputError, PlainTextOutput};

/// Abandoned (timed-out) extractor threads tolerated before PDFs are refused. Each one that loops
/// costs a core until it ends: on the 2-core hosts we run on, two already take the whole CPU
/// from the embedding work, so past that the service stops taking PDFs rather than the rest.
pub const MAX_ABANDONED: usize = 2;

/// Extractions running at once (abandoned ones included): each holds its input and its output
/// text, and more than the cores gain nothing.
pub const MAX_RUNNING: usize = 8;

/// Extractor thread stack: lopdf's parser recurses per nesting level (capped at 100 levels) and
/// pdf-extract per Form XObject; only the pages touched are committed.
const EXTRACTOR_STACK_BYTES: usize = 16 << 20;

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static ABANDONED: AtomicUsize = AtomicUsize::new(0);

/// An extraction's state, shared by the caller and its thread: whoever moves it off `LIVE`
/// first decides whether the thread counts as abandoned.
const LIVE: u8 = 0;
const FINISHED: u8 = 1;
const GAVE_UP: u8 = 2;

/// Bounds on one extraction.
#[derive(Debug, Clone, Copy)]
pub struct PdfLimits {
    /// Largest PDF accepted, in bytes.
    pub max_bytes: usize,
    /// Most pages.
    pub max_pages: usize,
    /// Longest the caller waits for the text.
    pub timeout: Duration,
    /// Most bytes all Flate streams may inflate to, together.
    pub max_inflated_bytes: usize,
    /// Most bytes of extracted text (before normalization).
    pub max_text_bytes: usize,
}

impl Default for PdfLimits {
    fn default() -> Self {
        PdfLimits {
            max_bytes: 10 << 20,
            max_pages: 50,
            timeout: Duration::from_secs(5),
            max_inflated_bytes: 200 << 20,
            max_text_bytes: 4 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the PDF is {bytes} bytes, more than the limit of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("the PDF's streams inflate to more than {max} bytes")]
    InflatesTooLarge { max: usize },
    #[error("the PDF has {pages} pages, more than the limit of {max}")]
    TooManyPages { pages: usize, max: usize },
    #[error("the PDF's text is longer than {max} bytes")]
    TextTooLong { max: usize },
    #[error("no text was found in the PDF: it may be scanned (images only) or empty; send its text instead")]
    NoText,
    #[error("the PDF is encrypted (password-protected); send an unprotected copy or its text")]
    Encrypted,
    #[error("the file is not a PDF (it does not start with %PDF-)")]
    NotPdf,
    #[error("the PDF is corrupt or unreadable: {0}")]
    Corrupt(#[source] pdf_extract::Error),
    #[error("the PDF's content could not be read: {0}")]
    Unreadable(#[source] OutputError),
    #[error("the PDF's forms refer to themselves or nest more than {MAX_FORM_DEPTH} deep")]
    NestedForms,
    #[error("reading the PDF took longer than {0:?}")]
    TimedOut(Duration),
    /// The extractor panicked; `message` is logged, not shown to callers.
    #[error("the PDF extractor failed on this file")]
    Crashed { message: String },
    #[error("the PDF reader is busy ({running} running, {abandoned} past their deadline); retry shortly")]
    Busy { running: usize, abandoned: usize },
    #[error("could not start the PDF extractor thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Extracts and normalizes the text of a PDF; see the module doc for how it is contained.
/// Blocks for at most `limits.timeout` (plus the pre-checks, linear in the input).
pub fn extract_text(bytes: &[u8], limits: &PdfLimits) -> Result<String, PdfError> {
    if bytes.len() > limits.max_bytes {
        return Err(PdfError::TooLarge { bytes: bytes.len(), max: limits.max_bytes });
    }
    if !looks_like_pdf(bytes) {
        return Err(PdfError::NotPdf);
    }
    check_inflated_size(bytes, limits.max_inflated_bytes)?;
    let slot = Slot::acquire()?;
    let state = slot.state.clone();
    let deadline = Instant::now() + limits.timeout;
    let (tx, rx) = mpsc::sync_channel(1);
    // The thread may outlive this call, so it owns its copy of the input.
    let data = bytes.to_vec();
    let limits = *limits;
    std::thread::Builder::new()
        .name("pdf-extract".into())
        .stack_size(EXTRACTOR_STACK_BYTES)
        .spawn(move || {
            let _slot = slot;
            let result = panic::catch_unwind(AssertUnwindSafe(|| extract_contained(&data, &limits, deadline)));
            let _ = tx.send(result);
        })
        .map_err(PdfError::Spawn)?;
    let received = match rx.recv_timeout(limits.timeout) {
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Counted before the state moves, so the thread's decrement can never come first.
            ABANDONED.fetch_add(1, Ordering::AcqRel);
            if state.compare_exchange(LIVE, GAVE_UP, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                tracing::warn!(timeout = ?limits.timeout, "PDF extraction abandoned at its deadline");
                return Err(PdfError::TimedOut(limits.timeout));
            }
            // It finished just now: its result is there.
            ABANDONED.fetch_sub(1, Ordering::AcqRel);
            rx.try_recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
        }
        other => other,
    };
    match received {
        Ok(Ok(result)) => result,
        Ok(Err(payload)) => {
            let message = panic_message(payload.as_ref());
            tracing::warn!(%message, "the PDF extractor panicked");
            Err(PdfError::Crashed { message })
        }
        Err(_) => Err(PdfError::Crashed { message: "the extractor ended without a result".into() }),
    }
}

/// Extractor threads alive now, and how many of them their callers gave up on.
pub fn extractors() -> (usize, usize) {
    (RUNNING.load(Ordering::Acquire), ABANDONED.load(Ordering::Acquire))
}

/// A place among the [`MAX_RUNNING`], held by the extractor thread until it ends.
struct Slot {
    state: Arc<AtomicU8>,
}

impl Slot {
    fn acquire() -> Result<Slot, PdfError> {
        let busy = || {
            let (running, abandoned) = extractors();
            PdfError::Busy { running, abandoned }
        };
        if ABANDONED.load(Ordering::Acquire) >= MAX_ABANDONED {
            return Err(busy());
        }
        RUNNING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_RUNNING).then_some(n + 1))
            .map_err(|_| busy())?;
        Ok(Slot { state: Arc::new(AtomicU8::new(LIVE)) })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.state.compare_exchange(LIVE, FINISHED, Ordering::AcqRel, Ordering::Acquire).is_err() {
            ABANDONED.fetch_sub(1, Ordering::AcqRel);
        }
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    // pdf-extract's messages can quote whole objects of the file.
    text.chars().take(200).collect()
}

/// PDF readers accept the header anywhere in the first 1024 bytes.
fn looks_like_pdf(bytes: &[u8]) -> bool {
    find(&bytes[..bytes.len().min(1024)], b"%PDF-", 0).is_some()
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// Inflates every `stream … endstream` that zlib accepts, counting its output without keeping
/// it, and fails once the total passes `max`. Runs on the raw bytes, before lopdf, because
/// lopdf inflates object streams while loading, into memory and without a bound.
fn check_inflated_size(bytes: &[u8], max: usize) -> Result<(), PdfError> {
    let mut total = 0usize;
    let mut at = 0;
    while let Some(kw) = find(bytes, b"stream", at) {
        at = kw + 6;
        if kw >= 3 && &bytes[kw - 3..kw] == b"end" {
            continue;
        }
        let start = match bytes.get(at..at + 2) {
            Some(b"\r\n") => at + 2,
            Some([b'\n', _]) | Some([b'\r', _]) => at + 1,
            _ => continue,
        };
        let end = find(bytes, b"endstream", start).unwrap_or(bytes.len());
        let budget = (max - total) as u64 + 1;
        let mut decoder = flate2::read::ZlibDecoder::new(&bytes[start..end]).take(budget);
        // Not zlib, or truncated: lopdf will judge it; only the bytes it yields count.
        let n = std::io::copy(&mut decoder, &mut std::io::sink()).unwrap_or_else(|_| decoder.limit().abs_diff(budget));
        total = total.saturating_add(n as usize);
        if total > max {
            return Err(PdfError::InflatesTooLarge { max });
        }
        at = end;
    }
    Ok(())
}

/// Runs on the extractor thread.
fn extract_contained(data: &[u8], limits: &PdfLimits, deadline: Instant) -> Result<String, PdfError> {
    let mut doc = match pdf_extract::Document::load_mem(data) {
        Ok(doc) => doc,
        Err(e @ (pdf_extract::Error::Decryption(_) | pdf_extract::Error::InvalidPassword)) => {
            tracing::debug!(error = %e, "encrypted PDF");
            return Err(PdfError::Encrypted);
        }
        Err(e) => return Err(PdfError::Corrupt(e)),
    };
    // Owner-password-only PDFs open for anyone with the empty user password, as viewers do.
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(PdfError::Encrypted);
    }
    let pages = doc.get_pages().len();
    if pages > limits.max_pages {
        return Err(PdfError::TooManyPages { pages, max: limits.max_pages });
    }
    if pages == 0 {
        return Err(PdfError::NoText);
    }
    for id in check_xobjects(&doc)? {
        if let Ok(pdf_extract::Object::Stream(s)) = doc.get_object_mut(id) {
            s.set_plain_content(Vec::new());
        }
    }
    let stop = Cell::new(None);
    let mut raw = String::new();
    let result = {
        let mut out = PlainTextOutput::new(Capped { out: &mut raw, max: limits.max_text_bytes, deadline, stop: &stop, writes: 0 });
        pdf_extract::output_doc(&doc, &mut out)
    };
    match (result, stop.get()) {
        (_, Some(Stop::TooLong)) => return Err(PdfError::TextTooLong { max: limits.max_text_bytes }),
        (_, Some(Stop::Deadline)) => return Err(PdfError::TimedOut(limits.timeout)),
        (Err(e), None) => return Err(PdfError::Unreadable(e)),
        (Ok(()), None) => {}
    }
    let text = normalize(&raw);
    if !has_text(&text) {
        return Err(PdfError::NoText);
    }
    Ok(text)
}

/// pdf-extract runs a `Do` by recursing into the XObject's content with no depth limit: a form
/// that draws itself overflows the stack, which aborts the process (no unwinding). Real resumes
/// nest a form or two.
const MAX_FORM_DEPTH: usize = 12;

/// XObject uses walked in all, so a DAG of forms that each draw the next ten times (a "billion
/// laughs") is refused instead of expanded.
const MAX_FORM_VISITS: usize = 10_000;

/// Walks every page's XObjects the way pdf-extract will run them (a form without /Resources
/// uses its parent's), refusing form cycles, depth past [`MAX_FORM_DEPTH`] and more than
/// [`MAX_FORM_VISITS`] uses. Returns the XObjects that are not forms (images, mostly): they hold
/// no text, yet pdf-extract would inflate and parse them as content, so the caller empties them.
fn check_xobjects(doc: &pdf_extract::Document) -> Result<Vec<pdf_extract::ObjectId>, PdfError> {
    let (mut visits, mut leaves) = (0, Vec::new());
    for page in doc.get_pages().into_values() {
        let Ok((own, inherited)) = doc.get_page_resources(page) else { continue };
        let inherited = inherited.into_iter().filter_map(|id| doc.get_dictionary(id).ok());
        for resources in own.into_iter().chain(inherited) {
            walk_xobjects(doc, resources, &mut Vec::new(), &mut visits, &mut leaves)?;
        }
    }
    Ok(leaves)
}

fn walk_xobjects(
    doc: &pdf_extract::Document,
    resources: &pdf_extract::Dictionary,
    path: &mut Vec<pdf_extract::ObjectId>,
    visits: &mut usize,
    leaves: &mut Vec<pdf_extract::ObjectId>,
) -> Result<(), PdfError> {
    let Ok(xobjects) = resources.get_deref(b"XObject", doc).and_then(pdf_extract::Object::as_dict) else {
        return Ok(());
    };
    for (_, entry) in xobjects.iter() {
        let Ok(id) = entry.as_reference() else { continue };
        *visits += 1;
        if *visits > MAX_FORM_VISITS {
            return Err(PdfError::NestedForms);
        }
        let Ok(stream) = doc.get_object(id).and_then(pdf_extract::Object::as_stream) else { continue };
        if stream.dict.get(b"Subtype").and_then(pdf_extract::Object::as_name).ok() != Some(b"Form".as_slice()) {
            leaves.push(id);
            continue;
        }
        if path.contains(&id) || path.len() >= MAX_FORM_DEPTH {
            return Err(PdfError::NestedForms);
        }
        let inner = stream.dict.get_deref(b"Resources", doc).and_then(pdf_extract::Object::as_dict).unwrap_or(resources);
        path.push(id);
        walk_xobjects(doc, inner, path, visits, leaves)?;
        path.pop();
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    TooLong,
    Deadline,
}

/// The extractor's output: refuses more than `max` bytes and any write after the deadline, so
/// an abandoned extraction stops at its next character.
struct Capped<'a> {
    out: &'a mut String,
    max: usize,
    deadline: Instant,
    stop: &'a Cell<Option<Stop>>,
    writes: u32,
}

impl std::fmt::Write for Capped<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.writes = self.writes.wrapping_add(1);
        if self.out.len() + s.len() > self.max {
            self.stop.set(Some(Stop::TooLong));
            return Err(std::fmt::Error);
        }
        if self.writes.is_multiple_of(64) && Instant::now() > self.deadline {
            self.stop.set(Some(Stop::Deadline));
            return Err(std::fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

impl<'a> ConvertToFmt for Capped<'a> {
    type Writer = Capped<'a>;
    fn convert(self) -> Self::Writer {
        self
    }
}

/// Text worth scoring: some letters or digits, and mostly those rather than the control or
/// private-use characters a font without a usable encoding decodes to.
fn has_text(text: &str) -> bool {
    let (mut visible, mut alnum) = (0usize, 0usize);
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        visible += 1;
        alnum += c.is_alphanumeric() as usize;
    }
    alnum > 0 && alnum * 2 >= visible
}

/// Ligatures as letters (U+FB00–FB06), soft hyphens dropped, odd spaces as spaces, control
/// characters dropped; then lines: a word hyphenated across a line end joined, a line that
/// continues a sentence (it ends without punctuation and the next starts in lower case) joined
/// to it, runs of spaces collapsed, blank lines dropped. (pdf-extract writes one or two line
/// breaks by how far the next line moved down, so a blank line marks line spacing, not a
/// paragraph: fpdf2's 6 mm leading at 11 pt gives one between every pair of lines.)
pub fn normalize(raw: &str) -> String {
    let mut clean = String::with_capacity(raw.len());
    for c in raw.replace("\r\n", "\n").chars() {
        match c {
            '\u{FB00}' => clean.push_str("ff"),
            '\u{FB01}' => clean.push_str("fi"),
            '\u{FB02}' => clean.push_str("fl"),
            '\u{FB03}' => clean.push_str("ffi"),
            '\u{FB04}' => clean.push_str("ffl"),
            '\u{FB05}' | '\u{FB06}' => clean.push_str("st"),
            '\u{00AD}' | '\u{200B}' | '\u{FEFF}' => {}
            '\n' => clean.push('\n'),
            '\r' => clean.push('\n'),
            c if c.is_whitespace() => clean.push(' '),
            c if c.is_control() => {}
            c => clean.push(c),
        }
    }
    let lines: Vec<String> = clean.split('\n').map(|l| l.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")).collect();
    let mut out = String::with_capacity(clean.len());
    for line in lines.into_iter().filter(|l| !l.is_empty()) {
        if out.is_empty() {
            out.push_str(&line);
        } else if let Some(stem) = hyphenated_stem(&out, &line) {
            out.truncate(stem);
            out.push_str(&line);
        } else if continues_sentence(&out, &line) {
            out.push(' ');
            out.push_str(&line);
        } else {
            out.push('\n');
            out.push_str(&line);
        }
    }
    out
}

/// `Some(len)` to cut `text` to when it ends in "letter-" and `next` starts in lower case:
/// "experi-" + "ence" is one word. ("full-" + "stack" loses its hyphen too: no dictionary here.)
fn hyphenated_stem(text: &str, next: &str) -> Option<usize> {
    let stem = text.strip_suffix('-')?;
    let before = stem.chars().next_back()?;
    let after = next.chars().next()?;
    (before.is_lowercase() && after.is_lowercase()).then_some(stem.len())
}

/// A wrapped line: the text so far does not end a sentence or a heading, and `next` starts in
/// lower case (bullets and headings start with a symbol or a capital and keep their line).
fn continues_sentence(text: &str, next: &str) -> bool {
    let ends_open = text.chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == ',');
    let starts_lower = next.chars().next().is_some_and(char::is_lowercase);
    ends_open && starts_lower
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ligatures_hyphenation_and_wrapped_lines() {
        let raw = "Senior  engi-\nneer with ﬁve years of\nexperience in ﬂeet   software.\n• Built\tthings\n\n\n\nEducation\r\nBSc";
        assert_eq!(
            normalize(raw),
            "Senior engineer with five years of experience in fleet software.\n• Built things\nEducation\nBSc"
        );
    }

    #[test]
    fn capitals_and_punctuation_keep_their_lines() {
        assert_eq!(normalize("Skills:\nrust, go\nExperience\nAcme"), "Skills:\nrust, go\nExperience\nAcme");
        // A hyphen before a capital is a compound or a dash, not a broken word.
        assert_eq!(normalize("Pre-\nRelease"), "Pre-\nRelease");
    }

    #[test]
    fn control_and_invisible_characters_dropped() {
        assert_eq!(normalize("a\u{0}b\u{AD}c\u{200B}d\u{A0}e"), "abcd e");
    }

    #[test]
    fn text_needs_letters() {
        assert!(!has_text(""));
        assert!(!has_text("  \n "));
        assert!(!has_text("\u{E000}\u{E001}\u{E002} .."));
        assert!(has_text("Rust developer"));
    }

    #[test]
    fn size_and_header_checked_before_any_thread() {
        let limits = PdfLimits { max_bytes: 10, ..Default::default() };
        assert!(matches!(extract_text(&[b'%'; 11], &limits), Err(PdfError::TooLarge { bytes: 11, max: 10 })));
        assert!(matches!(extract_text(b"hello, not a pdf", &PdfLimits::default()), Err(PdfError::NotPdf)));
    }

    #[test]
    fn inflation_counted_across_streams() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 1 << 20]).unwrap();
        let body = z.finish().unwrap();
        let mut pdf = b"%PDF-1.4\n1 0 obj<</Length 1>>stream\n".to_vec();
        pdf.extend(&body);
        pdf.extend(b"\nendstream endobj 2 0 obj<</Length 1>>stream\r\n");
        pdf.extend(&body);
        pdf.extend(b"\nendstream endobj");
        assert!(check_inflated_size(&pdf, 2 << 20).is_ok());
        assert!(matches!(check_inflated_size(&pdf, (2 << 20) - 1), Err(PdfError::InflatesTooLarge { .. })));
    }
}
