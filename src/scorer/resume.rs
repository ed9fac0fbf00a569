//! The resume side: who the person is taken out (names, e-mail addresses, phone numbers, links,
//! photos' alt text, graduation years), then the text cut into the units requirements are
//! matched against (bullets and sentences), and the years of experience it shows.
//!
//! Neutralizing blanks the bytes in place, so every unit keeps its offsets in the original
//! text while its content no longer depends on identity: swapping a name or an e-mail address
//! cannot change what is embedded, so it cannot change the score.

use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;

use super::text::{bullet_marker, sentences};

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    #[allow(clippy::expect_used)] // literal patterns, exercised by the unit tests
    cell.get_or_init(|| Regex::new(pattern).expect("valid regex"))
}

fn email_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
}

fn url_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"(?i)\b(?:https?://|www\.)\S+|\b(?:github|gitlab|linkedin|twitter|x|behance|dribbble|medium|stackoverflow)\.com/\S*")
}

fn phone_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    // International or national numbers: 9+ digits with spaces, dots, dashes or brackets.
    re(&R, r"(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{1,4}\)[\s.\-]?)?\d{2,5}(?:[\s.\-]\d{2,5}){1,4}")
}

fn image_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r#"(?is)!\[[^\]]*\]\([^)]*\)|<img\b[^>]*>|\balt\s*=\s*"[^"]*"|(?m)^\s*\[?(?:photo|picture|image|headshot|portrait)\b[^\n]*$"#)
}

fn year_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"\b(?:19[5-9]\d|20[0-4]\d)\b")
}

fn range_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)\b((?:19[6-9]|20[0-4])\d)\s*(?:-|–|—|to|until)\s*((?:19[6-9]|20[0-4])\d|present|now|current|today|date)\b",
    )
}

fn years_stated_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"(?i)\b(\d{1,2})\s*\+?\s*(?:years?|yrs?)\b")
}

/// Blanks `r` with spaces, byte for byte (UTF-8 stays valid: only whole chars are replaced).
fn blank(bytes: &mut [u8], r: Range<usize>) {
    for b in &mut bytes[r] {
        *b = b' ';
    }
}

/// Headings under which years are dates of study, not of work.
fn is_education_heading(line: &str) -> bool {
    let l = line.trim().trim_end_matches(':').to_lowercase();
    let words = l.split_whitespace().count();
    words <= 4 && ["education", "academic", "qualifications", "studies", "degrees", "edu", "certifications", "training"].iter().any(|w| l.starts_with(w))
}

fn is_heading(line: &str) -> bool {
    let t = line.trim().trim_end_matches(':');
    let words = t.split_whitespace().count();
    let letters: Vec<char> = t.chars().filter(|c| c.is_alphabetic()).collect();
    (1..=4).contains(&words) && !letters.is_empty() && (letters.iter().all(|c| c.is_uppercase()) || (line.trim().ends_with(':') && words <= 3) || t.starts_with('#'))
        || (words <= 2 && t.len() <= 20 && !t.contains(',') && t.chars().next().is_some_and(char::is_uppercase) && !t.chars().any(|c| c.is_ascii_digit()))
}

/// The resume with identity removed, byte for byte the same length.
///
/// Removed: e-mail addresses, links, phone numbers, images and their alt text, the name (the
/// first line, when it reads as a name), and graduation years (every year under an education
/// heading, and a year after "graduated"/"class of"). Years of work ("2019–2022") stay: they
/// are experience.
pub fn neutralize(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for r in [image_re(), email_re(), url_re()] {
        for m in r.find_iter(text) {
            blank(&mut bytes, m.range());
        }
    }
    for m in phone_re().find_iter(text) {
        let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        // A year range ("2019 - 2022") has 8 digits; phone numbers have 9 or more.
        if digits >= 9 {
            blank(&mut bytes, m.range());
        }
    }
    // The name: the first line with anything left on it (a photo above it is blanked by now),
    // if it is 1-5 words with no digits and little else.
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let left = std::str::from_utf8(&bytes[offset..offset + line.len()]).unwrap_or(line);
        let t = left.trim();
        if !t.is_empty() {
            let words: Vec<&str> = t.split_whitespace().collect();
            let namelike = (1..=5).contains(&words.len())
                && !t.chars().any(|c| c.is_ascii_digit())
                && words.iter().all(|w| w.chars().next().is_some_and(|c| c.is_uppercase()))
                && !t.contains([':', ',', '|', '@']);
            let end = offset + left.trim_end().len();
            if namelike {
                blank(&mut bytes, offset..end);
            }
            break;
        }
        offset += line.len();
    }
    // Graduation years.
    let mut in_education = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if is_heading(line) {
            in_education = is_education_heading(line);
        }
        let lower = line.to_lowercase();
        let graduated = lower.contains("graduat") || lower.contains("class of") || lower.contains("expected");
        if in_education || graduated || is_education_line(&lower) {
            for m in year_re().find_iter(line) {
                blank(&mut bytes, offset + m.start()..offset + m.end());
            }
        }
        offset += line.len();
    }
    // Only ASCII bytes inside matches of ASCII patterns (or whole lines) were replaced, and
    // whole chars at that, so the bytes are still UTF-8; fall back to a lossy copy regardless.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A degree line outside an education section ("B.Sc. Computer Science, Lagos, 2016").
fn is_education_line(lower: &str) -> bool {
    ["b.sc", "bsc", "m.sc", "msc", "b.a.", "m.a.", "bachelor", "master", "ph.d", "phd", "university", "college", "diploma", "degree", "b.tech", "m.tech", "mba", "b.eng", "m.eng", "school"]
        .iter()
        .any(|w| lower.contains(w))
        && !range_re().is_match(lower)
}

/// A piece of the resume that requirements are matched against.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Byte range in the resume.
    pub span: Range<usize>,
    /// The text embedded: the neutralized piece, bullet marks dropped, whitespace collapsed.
    pub text: String,
    /// A list of names ("Go, PostgreSQL, k8s") rather than a statement of what was done.
    pub list: bool,
}

/// Cuts a neutralized resume into bullets and sentences. A line continues the previous one
/// when neither is blank, it is not a bullet or heading, and the previous line does not end a
/// sentence. Nothing is dropped but pieces without two letters, so the units cover the resume
/// end to end; the caller windows any unit too long for the model (`Embedder::chunk`).
pub fn units(neutral: &str) -> Vec<Unit> {
    let mut blocks: Vec<Range<usize>> = Vec::new();
    let mut offset = 0;
    let mut open = false;
    for line in neutral.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let t = line.trim();
        if t.is_empty() {
            open = false;
            continue;
        }
        let lead = line.len() - line.trim_start().len();
        let content = start + lead..start + lead + t.len();
        let bullet = bullet_marker(line).is_some();
        let heading = is_heading(line);
        let continues = open && !bullet && !heading && blocks.last().is_some_and(|b| {
            let prev = neutral[b.clone()].trim_end();
            !prev.ends_with(['.', '!', '?', ':', ';']) && (t.starts_with(|c: char| c.is_lowercase()) || lead > 0 || prev.len() > 60)
        });
        match blocks.last_mut() {
            Some(b) if continues => b.end = content.end,
            _ => blocks.push(content),
        }
        open = !heading;
    }
    let mut out = Vec::new();
    for b in blocks {
        let body = match bullet_marker(&neutral[b.clone()]) {
            Some(n) => b.start + n..b.end,
            None => b,
        };
        for s in sentences(neutral, body) {
            if let Some(u) = unit(neutral, s) {
                out.push(u);
            }
        }
    }
    out
}

/// A unit for `neutral[span]`, or `None` when it has fewer than two letters.
pub fn unit(neutral: &str, span: Range<usize>) -> Option<Unit> {
    let piece = &neutral[span.clone()];
    if piece.chars().filter(|c| c.is_alphabetic()).count() < 2 {
        return None;
    }
    Some(Unit { span, text: piece.split_whitespace().collect::<Vec<_>>().join(" "), list: is_list(piece) })
}

/// A skills line: three or more short items between commas, pipes, slashes or semicolons, or
/// a "Skills:" label.
fn is_list(piece: &str) -> bool {
    let lower = piece.trim_start().to_lowercase();
    if ["skills", "tech", "tools", "technologies", "stack", "languages", "familiar with", "exposure", "courses", "coursework", "certifications", "interests"]
        .iter()
        .any(|w| lower.starts_with(w))
    {
        return true;
    }
    let items: Vec<&str> = piece.split([',', '|', ';', '·', '•']).map(str::trim).filter(|s| !s.is_empty()).collect();
    items.len() >= 3 && items.iter().map(|s| s.split_whitespace().count()).sum::<usize>() <= items.len() * 3
}

/// The years of experience a resume shows: the larger of the years it states ("7 years of
/// experience") and the span of its work-date ranges ("2018–2021", "2021–present"), merged so
/// that overlapping jobs count once. `None` when it shows neither.
pub fn years_of_experience(neutral: &str, this_year: i32) -> Option<f32> {
    let stated = years_stated_re()
        .captures_iter(neutral)
        .filter_map(|c| c.get(1)?.as_str().parse::<f32>().ok())
        .filter(|&y| y <= 50.0)
        .fold(None, |acc: Option<f32>, y| Some(acc.map_or(y, |a| a.max(y))));
    let mut ranges: Vec<(i32, i32)> = range_re()
        .captures_iter(neutral)
        .filter_map(|c| {
            let a: i32 = c.get(1)?.as_str().parse().ok()?;
            let b = c.get(2)?.as_str();
            let b: i32 = b.parse().unwrap_or(this_year);
            (b >= a && b <= this_year + 1).then_some((a, b))
        })
        .collect();
    ranges.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(i32, i32)> = None;
    for (a, b) in ranges {
        match cur {
            Some((s, e)) if a <= e => cur = Some((s, e.max(b))),
            Some((s, e)) => {
                total += e - s;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((s, e)) = cur {
        total += e - s;
    }
    let dated = (total > 0).then_some(total as f32);
    match (stated, dated) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESUME: &str = "Amara Okafor\nLagos | amara.okafor@protonmail.com | +234 803 555 0147 | github.com/aokafor\n\n\
        SUMMARY\nBackend engineer with 7 years of experience. I like boring,\ncorrect systems.\n\n\
        EXPERIENCE\nSenior Engineer, Paystream — 2021–present\n• Designed the settlement service in Go, which now\n  settles 1.2M transactions a day.\n\
        • Owned the PostgreSQL schema.\n\nEDUCATION\nB.Sc. Computer Science, University of Lagos, 2016\n\nSKILLS\nGo, PostgreSQL, Kubernetes, Helm\n";

    #[test]
    fn identity_is_blanked_in_place() {
        let n = neutralize(RESUME);
        assert_eq!(n.len(), RESUME.len());
        for gone in ["Amara", "protonmail", "803", "aokafor", "2016"] {
            assert!(!n.contains(gone), "{gone} left in {n}");
        }
        for kept in ["2021–present", "Lagos", "Paystream", "7 years"] {
            assert!(n.contains(kept), "{kept} removed from {n}");
        }
        let swapped = RESUME.replace("Amara Okafor", "Li Wei").replace("amara.okafor@protonmail.com", "x@y.org").replace("2016", "1989");
        let a: Vec<String> = units(&neutralize(RESUME)).into_iter().map(|u| u.text).collect();
        let b: Vec<String> = units(&neutralize(&swapped)).into_iter().map(|u| u.text).collect();
        assert_eq!(a, b);
        let img = neutralize("![Photo of Jane, smiling](me.png)\n<img src=a.png alt=\"Jane at work\">\nGo dev");
        assert!(!img.contains("Jane") && img.contains("Go dev"), "{img}");
        // A photo above the name: the name is still the first line with text on it, and what
        // is embedded is the same whoever the photo and the name show.
        let photo = neutralize(&format!("![Photo of Amara](me.jpg)\n{RESUME}"));
        assert!(!photo.contains("Amara") && photo.contains("Backend engineer"), "{photo}");
        let other = neutralize(&format!("![Photo of Li, an older man](li.jpg)\n{swapped}"));
        let texts = |n: &str| units(n).into_iter().map(|u| u.text).collect::<Vec<String>>();
        assert_eq!(texts(&photo), texts(&other));
    }

    #[test]
    fn units_are_bullets_and_sentences_with_wrapped_lines_joined() {
        let n = neutralize(RESUME);
        let us = units(&n);
        let texts: Vec<&str> = us.iter().map(|u| u.text.as_str()).collect();
        assert!(texts.contains(&"Backend engineer with 7 years of experience."), "{texts:?}");
        assert!(texts.contains(&"I like boring, correct systems."), "{texts:?}");
        assert!(texts.contains(&"Designed the settlement service in Go, which now settles 1.2M transactions a day."), "{texts:?}");
        let skills = us.iter().find(|u| u.text.starts_with("Go, PostgreSQL")).unwrap();
        assert!(skills.list);
        assert_eq!(&RESUME[skills.span.clone()], "Go, PostgreSQL, Kubernetes, Helm");
    }

    #[test]
    fn years_from_statements_and_merged_date_ranges() {
        assert_eq!(years_of_experience("2016–2018 x\n2018 - 2021 y\n2020 to present", 2026), Some(10.0));
        assert_eq!(years_of_experience("Golang dev, 6 yrs.", 2026), Some(6.0));
        assert_eq!(years_of_experience("no dates", 2026), None);
    }
}
