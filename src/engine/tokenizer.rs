//! sentence-transformers' tokenization for BERT WordPiece models, without loading tokenizer.json.
//!
//! Reproduces HF tokenizers' pipeline as configured by the model's tokenizer.json: added (special)
//! tokens matched verbatim in the raw text, `BertNormalizer` (clean text, pad CJK characters,
//! strip accents, lowercase — in that order), `BertPreTokenizer` (split on whitespace, isolate
//! punctuation), greedy longest-match-first `WordPiece`, then `[CLS] … [SEP]` truncated to the
//! snapshot's `max_seq_length` (256 for all-MiniLM-L6-v2, as sentence-transformers sets it).
//! The vocabulary comes from the snapshot as one newline-separated blob, indexed by an
//! open-addressing table built at start-up (well under a millisecond for 30k tokens; the
//! `tokenizers` crate spends 40–80 ms parsing tokenizer.json).

use unicode_general_category::{get_general_category, GeneralCategory as Gc};
use unicode_normalization::UnicodeNormalization;

use crate::engine::snapshot::TokenizerSettings;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("vocabulary is not valid UTF-8")]
    VocabNotUtf8,
    #[error("vocabulary has {found} tokens, the model expects {expected}")]
    VocabSize { found: usize, expected: usize },
    #[error("special token id {id} is outside the {vocab}-token vocabulary")]
    BadSpecialId { id: u32, vocab: usize },
}

/// Token ids of one text, `[CLS]` and `[SEP]` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    pub ids: Vec<u32>,
    /// Length the text would have had without truncation (special tokens included).
    pub untruncated_len: usize,
}

impl Encoding {
    pub fn truncated(&self) -> bool {
        self.untruncated_len > self.ids.len()
    }
}

pub struct Tokenizer {
    vocab: Vocab,
    settings: TokenizerSettings,
    max_len: usize,
}

impl Tokenizer {
    /// `vocab` is the newline-separated token list, id = line number.
    pub fn new(
        vocab: &[u8],
        expected_size: usize,
        settings: TokenizerSettings,
        max_len: usize,
    ) -> Result<Self, TokenizerError> {
        let vocab = Vocab::new(vocab)?;
        if vocab.len() != expected_size {
            return Err(TokenizerError::VocabSize { found: vocab.len(), expected: expected_size });
        }
        let ids = [settings.unk_id, settings.cls_id, settings.sep_id, settings.pad_id];
        for id in ids.into_iter().chain(settings.special_tokens.iter().map(|(_, id)| *id)) {
            if id as usize >= vocab.len() {
                return Err(TokenizerError::BadSpecialId { id, vocab: vocab.len() });
            }
        }
        Ok(Tokenizer { vocab, settings, max_len: max_len.max(2) })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Encodes one text: `[CLS] pieces… [SEP]`, truncated to `max_len` ids.
    pub fn encode(&self, text: &str) -> Encoding {
        let mut pieces = Vec::new();
        // Python's str.strip() as sentence-transformers applies it changes nothing here:
        // leading and trailing whitespace never yields a token.
        self.for_each_segment(text, &mut pieces);
        let untruncated_len = pieces.len() + 2;
        pieces.truncate(self.max_len - 2);
        let mut ids = Vec::with_capacity(pieces.len() + 2);
        ids.push(self.settings.cls_id);
        ids.extend_from_slice(&pieces);
        ids.push(self.settings.sep_id);
        Encoding { ids, untruncated_len }
    }

    /// Word pieces of `text`, special tokens not counted and nothing truncated.
    pub fn count_pieces(&self, text: &str) -> usize {
        let mut pieces = Vec::new();
        self.for_each_segment(text, &mut pieces);
        pieces.len()
    }

    /// Splits the raw text on special tokens (matched verbatim, leftmost, longest), and
    /// word-pieces the text between them. Each token's next occurrence is searched for again
    /// only once the cursor has passed it, so a text full of special tokens stays linear.
    fn for_each_segment(&self, text: &str, out: &mut Vec<u32>) {
        let specials = &self.settings.special_tokens;
        let mut next: Vec<Option<usize>> = specials.iter().map(|(tok, _)| text.find(tok.as_str())).collect();
        let mut pos = 0;
        loop {
            for ((tok, _), at) in specials.iter().zip(next.iter_mut()) {
                if at.is_some_and(|a| a < pos) {
                    *at = text[pos..].find(tok.as_str()).map(|a| a + pos);
                }
            }
            let found = specials
                .iter()
                .zip(&next)
                .filter_map(|((tok, id), at)| at.map(|a| (a, tok.len(), *id)))
                .min_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            match found {
                Some((at, len, id)) => {
                    self.word_pieces(&text[pos..at], out);
                    out.push(id);
                    pos = at + len;
                }
                None => {
                    self.word_pieces(&text[pos..], out);
                    return;
                }
            }
        }
    }

    fn word_pieces(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let normalized = self.normalize(text);
        let mut word_start: Option<usize> = None;
        for (i, c) in normalized.char_indices() {
            if c.is_whitespace() {
                if let Some(s) = word_start.take() {
                    self.word_piece(&normalized[s..i], out);
                }
            } else if is_punctuation(c) {
                if let Some(s) = word_start.take() {
                    self.word_piece(&normalized[s..i], out);
                }
                self.word_piece(&normalized[i..i + c.len_utf8()], out);
            } else if word_start.is_none() {
                word_start = Some(i);
            }
        }
        if let Some(s) = word_start {
            self.word_piece(&normalized[s..], out);
        }
    }

    /// `BertNormalizer`.
    fn normalize(&self, text: &str) -> String {
        let s = &self.settings;
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if s.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_bert_whitespace(c) {
                    out.push(' ');
                    continue;
                }
            }
            if s.handle_chinese_chars && is_chinese_char(c) {
                out.push(' ');
                out.push(c);
                out.push(' ');
            } else {
                out.push(c);
            }
        }
        if s.strip_accents {
            out = out.nfd().filter(|&c| get_general_category(c) != Gc::NonspacingMark).collect();
        }
        if s.lowercase {
            out = out.chars().flat_map(char::to_lowercase).collect();
        }
        out
    }

    /// Greedy longest-match-first WordPiece for one word.
    fn word_piece(&self, word: &str, out: &mut Vec<u32>) {
        let max_chars = self.settings.max_input_chars_per_word as usize;
        if word.chars().nth(max_chars).is_some() {
            out.push(self.settings.unk_id);
            return;
        }
        let prefix = self.settings.continuing_subword_prefix.as_str();
        let before = out.len();
        let mut start = 0;
        let mut candidate = String::with_capacity(word.len() + prefix.len());
        while start < word.len() {
            let mut end = word.len();
            let mut matched = None;
            while end > start {
                candidate.clear();
                if start > 0 {
                    candidate.push_str(prefix);
                }
                candidate.push_str(&word[start..end]);
                if let Some(id) = self.vocab.get(&candidate) {
                    matched = Some(id);
                    break;
                }
                end = prev_char_boundary(word, end);
            }
            match matched {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(before);
                    out.push(self.settings.unk_id);
                    return;
                }
            }
        }
    }
}

fn prev_char_boundary(s: &str, mut i: usize) -> usize {
    i -= 1;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn is_bert_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

fn is_control(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    matches!(
        get_general_category(c),
        Gc::Control | Gc::Format | Gc::Surrogate | Gc::PrivateUse | Gc::Unassigned
    )
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            get_general_category(c),
            Gc::ConnectorPunctuation
                | Gc::DashPunctuation
                | Gc::OpenPunctuation
                | Gc::ClosePunctuation
                | Gc::InitialPunctuation
                | Gc::FinalPunctuation
                | Gc::OtherPunctuation
        )
}

/// The CJK Unified Ideographs blocks BERT pads with spaces.
fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B920..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// The vocabulary: one owned blob of tokens and an open-addressing index of their ids.
struct Vocab {
    blob: Box<str>,
    /// `starts[id]..starts[id + 1] - 1` is token `id` (the `- 1` drops its newline).
    starts: Vec<u32>,
    /// Power-of-two table of `id + 1` (0 = empty slot).
    slots: Vec<u32>,
}

impl Vocab {
    fn new(bytes: &[u8]) -> Result<Self, TokenizerError> {
        let blob: Box<str> = std::str::from_utf8(bytes).map_err(|_| TokenizerError::VocabNotUtf8)?.into();
        let mut starts = vec![0u32];
        for (i, b) in blob.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i as u32 + 1);
            }
        }
        if !blob.ends_with('\n') && !blob.is_empty() {
            starts.push(blob.len() as u32 + 1);
        }
        let n = starts.len() - 1;
        let mut slots = vec![0u32; (n * 2).next_power_of_two().max(2)];
        let mask = slots.len() - 1;
        let mut vocab = Vocab { blob, starts, slots: Vec::new() };
        for id in 0..n {
            let tok = vocab.token_unchecked(id);
            let mut i = hash(tok.as_bytes()) as usize & mask;
            // First occurrence wins, as in a vocab.txt read into a map.
            loop {
                match slots[i] {
                    0 => {
                        slots[i] = id as u32 + 1;
                        break;
                    }
                    s if vocab.token_unchecked(s as usize - 1) == tok => break,
                    _ => i = (i + 1) & mask,
                }
            }
        }
        vocab.slots = slots;
        Ok(vocab)
    }

    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    fn token_unchecked(&self, id: usize) -> &str {
        let (a, b) = (self.starts[id] as usize, self.starts[id + 1] as usize - 1);
        &self.blob[a..b.min(self.blob.len())]
    }

    fn get(&self, tok: &str) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = hash(tok.as_bytes()) as usize & mask;
        loop {
            match self.slots[i] {
                0 => return None,
                s if self.token_unchecked(s as usize - 1) == tok => return Some(s - 1),
                _ => i = (i + 1) & mask,
            }
        }
    }
}

/// FNV-1a: short keys, no DoS concern (the table is fixed; inputs only probe it).
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n##s\n,\nun\n##believ\n##able\ncafe\n";
        let settings = TokenizerSettings {
            clean_text: true,
            handle_chinese_chars: true,
            strip_accents: true,
            lowercase: true,
            continuing_subword_prefix: "##".into(),
            max_input_chars_per_word: 100,
            unk_id: 1,
            cls_id: 2,
            sep_id: 3,
            pad_id: 0,
            special_tokens: vec![("[CLS]".into(), 2), ("[SEP]".into(), 3)],
        };
        Tokenizer::new(vocab.as_bytes(), 12, settings, 8).unwrap()
    }

    #[test]
    fn word_pieces_punctuation_accents_and_case() {
        let t = tiny();
        assert_eq!(t.encode("  Hello, WORLDS ").ids, vec![2, 4, 7, 5, 6, 3]);
        assert_eq!(t.encode("Café unbelievable").ids, vec![2, 11, 8, 9, 10, 3]);
        assert_eq!(t.encode("helloz").ids, vec![2, 1, 3], "an unknown tail makes the whole word [UNK]");
        assert_eq!(t.encode("").ids, vec![2, 3]);
        assert_eq!(t.encode("hello[SEP]world").ids, vec![2, 4, 3, 5, 3]);
    }

    #[test]
    fn truncates_to_max_len_and_reports_full_length() {
        let t = tiny();
        let e = t.encode("hello hello hello hello hello hello hello hello");
        assert_eq!(e.ids.len(), 8);
        assert_eq!(e.ids[7], 3, "[SEP] survives truncation");
        assert_eq!(e.untruncated_len, 10);
        assert!(e.truncated());
    }

    #[test]
    fn a_text_full_of_special_tokens_is_linear_and_exact() {
        let t = tiny();
        assert_eq!(t.encode("[CLS][SEP]hello[SEP]").ids, vec![2, 2, 3, 4, 3, 3]);
        let many = "[CLS]".repeat(10_000);
        let start = std::time::Instant::now();
        let e = t.encode(&many);
        assert_eq!(e.untruncated_len, 10_002);
        assert!(start.elapsed() < std::time::Duration::from_secs(1), "took {:?}", start.elapsed());
    }

    #[test]
    fn rejects_a_vocab_of_the_wrong_size() {
        let settings = tiny().settings.clone();
        assert!(matches!(
            Tokenizer::new(b"a\nb\n", 12, settings, 8),
            Err(TokenizerError::VocabSize { found: 2, expected: 12 })
        ));
    }
}
