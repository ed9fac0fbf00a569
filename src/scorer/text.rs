//! Plain-text helpers shared by the job and resume readers: the normalized word tokens skills
//! are matched on, sentence splitting, bullet and heading detection. Byte offsets throughout;
//! nothing here allocates per character.

use std::ops::Range;

/// A word as skills see it: lowercase, with its byte range in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub norm: String,
    pub span: Range<usize>,
    /// Whether the next word follows a punctuation mark inside the same token ("node.js",
    /// "ci/cd") rather than whitespace: such runs may also be matched written together.
    pub joined_to_next: bool,
}

/// Splits text into the words skills are matched on. Letters and digits make a word; a `+` or
/// `#` right after one stays in it (C++, C#, F#) and a `.` right before a letter starts one when
/// it follows no letter (.NET). Everything else separates, so matching is case- and
/// punctuation-insensitive and "Go" never matches inside "going".
pub fn words(text: &str) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut prev: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        let dot_word = c == '.'
            && !prev.is_some_and(char::is_alphanumeric)
            && chars.peek().is_some_and(|&(_, n)| n.is_alphabetic());
        if !(c.is_alphanumeric() || dot_word) {
            prev = Some(c);
            continue;
        }
        let start = i;
        let mut end = i + c.len_utf8();
        let mut norm: String = c.to_lowercase().collect();
        while let Some(&(j, n)) = chars.peek() {
            if n.is_alphanumeric() {
                norm.extend(n.to_lowercase());
            } else if n == '+' || n == '#' {
                norm.push(n);
            } else {
                break;
            }
            end = j + n.len_utf8();
            chars.next();
        }
        // A word made only of symbols after the first char (".") is not a word.
        if norm == "." {
            prev = Some(c);
            continue;
        }
        if let Some(last) = out.last_mut() {
            let gap = &text[last.span.end..start];
            last.joined_to_next = !gap.is_empty() && gap.len() <= 1 && matches!(gap, "." | "-" | "/" | "_");
        }
        out.push(Word { norm, span: start..end, joined_to_next: false });
        prev = text[..end].chars().next_back();
    }
    out
}

/// The normalized key of a phrase (words joined by one space), as skills are indexed.
pub fn key(phrase: &str) -> String {
    let ws = words(phrase);
    let mut k = String::with_capacity(phrase.len());
    for (i, w) in ws.iter().enumerate() {
        if i > 0 {
            k.push(' ');
        }
        k.push_str(&w.norm);
    }
    k
}

/// Abbreviations after which a period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "etc", "vs", "approx", "incl", "dr", "mr", "mrs", "ms", "inc", "ltd", "jr", "sr", "no", "st", "co",
    "corp", "dept", "min", "max", "ca", "cf", "al", "esp",
];

/// Sentence ranges of `text[range]`: a `.`, `!` or `?` followed by whitespace and a capital,
/// digit or opening mark ends one, unless it closes an abbreviation or an initial. Trimmed;
/// empty pieces are dropped.
pub fn sentences(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let s = &text[range.clone()];
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if matches!(b, b'.' | b'!' | b'?') && bytes.get(i + 1).is_some_and(|c| c.is_ascii_whitespace()) {
            let next = s[i + 1..].trim_start();
            let starts_new = next.chars().next().is_some_and(|c| c.is_uppercase() || c.is_ascii_digit() || "\"'(•-*".contains(c));
            if starts_new && !(b == b'.' && ends_with_abbreviation(&s[start..i])) {
                push_trimmed(s, start..i + 1, range.start, &mut out);
                start = i + 1;
            }
        }
        i += 1;
    }
    push_trimmed(s, start..s.len(), range.start, &mut out);
    out
}

fn ends_with_abbreviation(before: &str) -> bool {
    let last = before.rsplit(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("");
    let last = last.trim_start_matches(|c: char| !c.is_alphanumeric());
    // A single capital is an initial ("J. Smith"), not the end of a sentence.
    if last.chars().count() == 1 && last.chars().all(char::is_uppercase) {
        return true;
    }
    let lower = last.to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
}

fn push_trimmed(s: &str, r: Range<usize>, offset: usize, out: &mut Vec<Range<usize>>) {
    let piece = &s[r.clone()];
    let lead = piece.len() - piece.trim_start().len();
    let trimmed = piece.trim();
    if !trimmed.is_empty() {
        let start = r.start + lead;
        out.push(offset + start..offset + start + trimmed.len());
    }
}

/// The byte length of a leading bullet marker ("- ", "• ", "1. ", "a) "), if the line has one.
pub fn bullet_marker(line: &str) -> Option<usize> {
    let t = line.trim_start();
    let indent = line.len() - t.len();
    let mut cs = t.char_indices();
    let (_, c) = cs.next()?;
    if matches!(c, '-' | '*' | '•' | '·' | '–' | '—' | '+' | '▪' | '◦' | '‣' | '●' | '○' | '■' | '□' | '➤' | '►' | '✓' | '✔') {
        let after = &t[c.len_utf8()..];
        if after.starts_with(char::is_whitespace) {
            return Some(indent + c.len_utf8());
        }
        return None;
    }
    // "1." / "12)" / "a)"
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let n = if digits > 0 && digits <= 2 { digits } else if c.is_ascii_lowercase() { 1 } else { 0 };
    if n > 0 {
        let rest = &t[n..];
        if (rest.starts_with(". ") && digits > 0) || rest.starts_with(") ") {
            return Some(indent + n + 1);
        }
    }
    None
}

/// Strips Markdown emphasis and code marks and collapses whitespace.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s.split_whitespace() {
        let p = part.replace("**", "").replace("__", "").replace('`', "");
        if p.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&p);
    }
    out
}

/// Whether `s` contains `word` as a whole word (ASCII, case-insensitive).
pub fn has_word(s: &str, word: &str) -> bool {
    let lower = s.to_lowercase();
    lower.match_indices(word).any(|(i, m)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + m.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norms(t: &str) -> Vec<String> {
        words(t).into_iter().map(|w| w.norm).collect()
    }

    #[test]
    fn words_keep_cpp_csharp_and_dotnet_and_split_punctuation() {
        assert_eq!(norms("C, C++ and C# on .NET; Node.js, CI/CD"), ["c", "c++", "and", "c#", "on", ".net", "node", "js", "ci", "cd"]);
        assert_eq!(norms("Going to Go-lang"), ["going", "to", "go", "lang"]);
        let w = words("node.js x");
        assert!(w[0].joined_to_next && !w[1].joined_to_next);
        assert_eq!(key("  PostgreSQL  14 "), "postgresql 14");
        assert_eq!(norms("end."), ["end"]);
    }

    #[test]
    fn sentences_split_at_ends_but_not_abbreviations() {
        let t = "We use Go, e.g. for APIs. You know SQL! Dr. Who is 3.5 years. J. Smith wrote it. Done";
        let got: Vec<&str> = sentences(t, 0..t.len()).into_iter().map(|r| &t[r]).collect();
        assert_eq!(got, ["We use Go, e.g. for APIs.", "You know SQL!", "Dr. Who is 3.5 years.", "J. Smith wrote it.", "Done"]);
    }

    #[test]
    fn bullets_are_recognised() {
        assert_eq!(bullet_marker("- item"), Some(1));
        assert_eq!(bullet_marker("  • item"), Some(5), "bytes: two spaces and a 3-byte bullet");
        assert_eq!(bullet_marker("12. item"), Some(3));
        assert_eq!(bullet_marker("a) item"), Some(2));
        assert_eq!(bullet_marker("-5 degrees"), None);
        assert_eq!(bullet_marker("Go developer"), None);
        assert!(has_word("Kafka or NATS", "or") && !has_word("Orchestration", "or"));
    }
}
