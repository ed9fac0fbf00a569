//! Chunking through the real tokenizer: every window fits the model untruncated, spans point at
//! whole words of the original text, and consecutive windows overlap and cover it end to end.

use crate::common::embedder;

/// A long text of varied words, punctuation and non-ASCII, `n` sentences long.
fn long_text(n: usize) -> String {
    (0..n)
        .map(|i| format!("Sentence {i}: the café's invoice #{i} was re-sent to Zoë on 2026-11-{:02}, unbelievably!", i % 28 + 1))
        .collect::<Vec<_>>()
        .join("\n  ")
}

fn check_windows(text: &str) -> Vec<snapembed::engine::chunk::ChunkSpan> {
    let e = embedder();
    let chunks = e.chunk(text);
    for c in &chunks {
        let piece = &text[c.start..c.end];
        let enc = e.tokenize(piece);
        assert!(!enc.truncated(), "window {c:?} overflows the model: {} ids", enc.untruncated_len);
        assert!(c.pieces <= e.max_tokens() - 2, "{c:?}");
        assert_eq!(piece, piece.trim(), "a window starts and ends on a word");
    }
    for pair in chunks.windows(2) {
        assert!(pair[1].start > pair[0].start, "windows move forward: {pair:?}");
        assert!(pair[1].start < pair[0].end, "consecutive windows overlap: {pair:?}");
    }
    chunks
}

#[test]
fn a_long_text_is_covered_end_to_end_by_windows_that_fit() {
    let text = long_text(200);
    let chunks = check_windows(&text);
    assert!(chunks.len() > 10, "{} windows", chunks.len());
    assert_eq!(chunks[0].start, 0);
    assert_eq!(chunks.last().unwrap().end, text.len());
    // The counts add up: a window's pieces are the tokenizer's count for its text.
    for c in &chunks {
        assert_eq!(embedder().tokenize(&text[c.start..c.end]).untruncated_len - 2, c.pieces);
    }
}

#[test]
fn a_short_text_is_one_window_of_its_trimmed_self() {
    let text = "  Reset my password, please.\n";
    let chunks = check_windows(text);
    assert_eq!(chunks.len(), 1);
    assert_eq!(&text[chunks[0].start..chunks[0].end], "Reset my password, please.");
    assert!(embedder().chunk(" \n\t ").is_empty());
    assert!(embedder().chunk("").is_empty());
}

#[test]
fn text_without_spaces_is_still_split_to_fit() {
    let cjk = "我们的发票系统今天无法登录请帮助我们解决这个问题".repeat(30);
    let chunks = check_windows(&cjk);
    assert!(chunks.len() > 2, "{} windows for {} characters", chunks.len(), cjk.chars().count());
    assert_eq!(chunks.last().unwrap().end, cjk.len());
    let glued = "a,b;c".repeat(200);
    let chunks = check_windows(&glued);
    assert!(chunks.len() > 2);
}
