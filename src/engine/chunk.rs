//! Splitting a long text into overlapping windows that each fit the model, with the byte span
//! of every window in the original text. Documents in a corpus, long webhook submissions and
//! resumes all go through here, so a text is covered end to end instead of cut at 256 pieces.
//!
//! Windows break between whitespace-separated words, never inside one, so a span always points
//! at whole words of the original text. A word's piece count is the tokenizer's own (the same
//! normalization, punctuation splitting and WordPiece), so a window never overflows the model.

use crate::engine::tokenizer::Tokenizer;

/// One window: `text[start..end]` (byte offsets on char boundaries), `pieces` word pieces long
/// (special tokens not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSpan {
    pub start: usize,
    pub end: usize,
    pub pieces: usize,
}

/// Word pieces shared by consecutive windows: context across a boundary (an eighth of the
/// window), so a sentence cut by one window is whole in the next.
pub const DEFAULT_OVERLAP: usize = 32;

/// Windows of at most `window` pieces, consecutive ones sharing up to `overlap` pieces of whole
/// words. Whitespace-only text gives none.
pub fn chunk_spans(tokenizer: &Tokenizer, text: &str, window: usize, overlap: usize) -> Vec<ChunkSpan> {
    let window = window.max(1);
    let overlap = overlap.min(window / 2);
    let mut units = Vec::new();
    for (start, end) in words(text) {
        let pieces = tokenizer.count_pieces(&text[start..end]);
        if pieces <= window {
            units.push(ChunkSpan { start, end, pieces });
        } else {
            // One "word" longer than a window: Chinese or Japanese without spaces, or text
            // glued by punctuation. Its characters become the units; a character's own count
            // is at least its share of the word's (WordPiece never makes a piece of less than
            // one character), so windows still fit.
            let word = &text[start..end];
            units.extend(word.char_indices().map(|(i, c)| ChunkSpan {
                start: start + i,
                end: start + i + c.len_utf8(),
                pieces: tokenizer.count_pieces(&word[i..i + c.len_utf8()]),
            }));
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < units.len() {
        let mut j = i;
        let mut pieces = 0;
        while j < units.len() && (j == i || pieces + units[j].pieces <= window) {
            pieces += units[j].pieces;
            j += 1;
        }
        out.push(ChunkSpan { start: units[i].start, end: units[j - 1].end, pieces });
        if j == units.len() {
            break;
        }
        // Step back over whole units worth at most `overlap` pieces, always moving forward.
        let mut k = j;
        let mut shared = 0;
        while k > i + 1 && shared + units[k - 1].pieces <= overlap {
            shared += units[k - 1].pieces;
            k -= 1;
        }
        i = k;
    }
    out
}

/// Byte spans of the whitespace-separated words of `text`.
fn words(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = None;
    text.char_indices().chain(std::iter::once((text.len(), ' '))).filter_map(move |(i, c)| {
        if c.is_whitespace() {
            start.take().map(|s| (s, i))
        } else {
            if start.is_none() {
                start = Some(i);
            }
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_have_exact_spans() {
        let t = "  héllo\tworld\n\nagain ";
        let w: Vec<&str> = words(t).map(|(s, e)| &t[s..e]).collect();
        assert_eq!(w, ["héllo", "world", "again"]);
        assert_eq!(words("   ").count(), 0);
    }
}
