//! Requirements from a job description: bullets and sentences under their headings, each one
//! "must" or "nice" from its nearest heading or its own wording, "A or B" kept whole, and the
//! years of experience it asks for read as a soft signal.

use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

use super::text::{bullet_marker, clean, has_word, sentences};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Must,
    Nice,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// The requirement as written (Markdown marks and extra whitespace removed).
    pub text: String,
    pub kind: Kind,
    /// Years of experience asked for ("5+ years" → 5).
    pub years: Option<f32>,
    /// Whether alternatives satisfy it ("Kafka or NATS", "such as"): any one named skill is enough.
    pub any_of: bool,
}

/// What a heading says about the lines under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Must,
    Nice,
    /// Duties ("What you'll do"): used only when the description has no requirement sections.
    Duties,
    /// Company, benefits, how to apply: never requirements.
    Skip,
    /// Any other heading (or none yet).
    Other,
}

fn classify_heading(h: &str) -> Section {
    let h = h.to_lowercase();
    let any = |ws: &[&str]| ws.iter().any(|w| h.contains(w));
    if any(&["nice to have", "nice-to-have", "bonus", "preferred", "desirable", "good to have", "plus", "optional", "extra credit", "ideally"]) {
        Section::Nice
    } else if any(&["requirement", "must", "qualification", "what you need", "what you'll need", "what you will need", "you have", "you bring", "you'll bring", "required", "minimum", "skills", "experience", "looking for", "who you are", "about you", "what we need", "expect from you"]) {
        Section::Must
    } else if any(&["offer", "benefit", "perk", "compensation", "salary", "about us", "about the company", "who we are", "how to apply", "apply", "equal opportunity", "our values", "culture", "location", "process", "why join", "why you'll love"]) {
        Section::Skip
    } else if any(&["responsibilit", "what you'll do", "what you will do", "the role", "your role", "day to day", "day-to-day", "you will", "you'll", "duties", "mission", "impact"]) {
        Section::Duties
    } else {
        Section::Other
    }
}

/// Wording that makes a line a nice-to-have wherever it stands.
fn says_nice(s: &str) -> bool {
    let l = s.to_lowercase();
    ["nice to have", "nice-to-have", "is a plus", "are a plus", "a plus", "bonus", "preferred", "ideally", "desirable", "good to have", "not required", "would be great", "helpful", "is welcome", "are welcome"]
        .iter()
        .any(|w| l.contains(w))
}

/// Wording that makes a line a must-have wherever it stands.
fn says_must(s: &str) -> bool {
    let l = s.to_lowercase();
    ["must", "required", "you have", "you need", "we need", "at least", "minimum", "essential", "mandatory", "strong", "proven"]
        .iter()
        .any(|w| l.contains(w))
}

/// Markdown `#` headings, a short line ending in ':', a line wholly in bold, or a short line
/// in capitals.
fn heading_text(line: &str) -> Option<&str> {
    let t = line.trim();
    if t.starts_with('#') {
        return Some(t.trim_start_matches('#').trim());
    }
    let words = t.split_whitespace().count();
    if t.ends_with(':') && words <= 8 && t.len() <= 70 {
        return Some(t.trim_end_matches(':').trim_matches(|c| c == '*' || c == '_').trim());
    }
    let bold = t.strip_prefix("**").and_then(|x| x.strip_suffix("**")).or_else(|| t.strip_prefix("__").and_then(|x| x.strip_suffix("__")));
    if let Some(inner) = bold {
        if !inner.contains("**") && words <= 10 {
            return Some(inner.trim_end_matches(':').trim());
        }
    }
    let letters: Vec<char> = t.chars().filter(|c| c.is_alphabetic()).collect();
    if words <= 6 && letters.len() >= 3 && letters.iter().all(|c| c.is_uppercase()) {
        return Some(t.trim_end_matches(':'));
    }
    None
}

fn years_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    #[allow(clippy::expect_used)] // a literal pattern: covered by the unit tests
    RE.get_or_init(|| Regex::new(r"(?i)\b(\d{1,2})(?:\.\d)?\s*(?:\+|plus)?\s*(?:(?:-|–|to)\s*\d{1,2}\s*)?\+?\s*(?:years?|yrs?)\b").expect("valid regex"))
}

/// The years a requirement asks for: the first "N years" / "N+ yrs" / "N-M years" in it.
pub fn years_asked(s: &str) -> Option<f32> {
    years_re().captures(s).and_then(|c| c.get(1)).and_then(|m| m.as_str().parse::<f32>().ok()).filter(|&y| y > 0.0 && y <= 40.0)
}

fn any_of(s: &str) -> bool {
    ["or", "either", "similar", "equivalent", "another", "such as", "e.g", "comparable", "like"].iter().any(|w| has_word(s, w))
        || s.contains('/')
}

/// One bullet or paragraph of the description, with its section.
struct Block {
    text: String,
    section: Section,
    bullet: bool,
}

/// Reads a job description's requirements, in order.
///
/// Bullets are requirements one by one (wrapped lines joined); prose is split into sentences.
/// When the description has requirement sections ("Requirements", "Nice to have", ...), only
/// they count; otherwise every sentence outside company, benefits and application sections
/// does. A heading decides must or nice for the lines under it, and a line's own wording
/// ("... is a plus", "must") overrides it.
pub fn extract(job: &str) -> Vec<Requirement> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut section = Section::Other;
    let mut open = false;
    for line in job.lines() {
        let t = line.trim();
        if t.is_empty() {
            open = false;
            continue;
        }
        if let Some(h) = heading_text(line) {
            section = classify_heading(h);
            open = false;
            continue;
        }
        if let Some(n) = bullet_marker(line) {
            blocks.push(Block { text: line[n..].trim().to_owned(), section, bullet: true });
            open = true;
            continue;
        }
        match blocks.last_mut() {
            Some(b) if open => {
                b.text.push(' ');
                b.text.push_str(t);
            }
            _ => {
                blocks.push(Block { text: t.to_owned(), section, bullet: false });
                open = true;
            }
        }
    }
    let structured = blocks.iter().any(|b| matches!(b.section, Section::Must | Section::Nice));
    let mut out = Vec::new();
    for b in &blocks {
        let keep = match b.section {
            Section::Must | Section::Nice => true,
            Section::Skip => false,
            Section::Duties | Section::Other => !structured,
        };
        if !keep {
            continue;
        }
        let pieces: Vec<String> = if b.bullet {
            vec![clean(&b.text)]
        } else {
            sentences(&b.text, 0..b.text.len()).into_iter().map(|r| clean(&b.text[r])).collect()
        };
        for text in pieces {
            if text.split_whitespace().count() < 3 || !text.chars().any(char::is_alphabetic) {
                continue;
            }
            // Labels such as "Team: Payments" or "Location: Remote" are not requirements.
            if !b.bullet && text.split_whitespace().count() < 6 && text.contains(':') {
                continue;
            }
            let kind = match b.section {
                Section::Nice => Kind::Nice,
                _ if says_nice(&text) => Kind::Nice,
                Section::Must => Kind::Must,
                _ if says_must(&text) => Kind::Must,
                _ => Kind::Must,
            };
            let years = years_asked(&text);
            let any_of = any_of(&text);
            out.push(Requirement { text, kind, years, any_of });
        }
    }
    if out.is_empty() {
        // Nothing reads as a requirement (a one-line description): the whole text is one.
        let text = clean(job);
        if !text.is_empty() {
            let years = years_asked(&text);
            out.push(Requirement { any_of: any_of(&text), text, kind: Kind::Must, years });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BULLETED: &str = "# Backend Engineer\n\n**Team:** Payments · **Location:** Remote\n\n## About the role\n\nWe build Go services.\n\n## What you'll do\n\n- Build APIs.\n- Own services end to end.\n\n## Requirements (must have)\n\n- 5+ years of professional backend development,\n  at least 2 of them writing Go.\n- Strong PostgreSQL: schema design.\n- Kafka or NATS for event-driven systems.\n- Terraform experience is a plus.\n\n## Nice to have\n\n- Prometheus, Grafana or OpenTelemetry.\n\n## What we offer\n\n- 30 days of holiday and a learning budget.\n";

    #[test]
    fn bulleted_requirements_under_their_headings() {
        let rs = extract(BULLETED);
        let texts: Vec<&str> = rs.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "5+ years of professional backend development, at least 2 of them writing Go.",
                "Strong PostgreSQL: schema design.",
                "Kafka or NATS for event-driven systems.",
                "Terraform experience is a plus.",
                "Prometheus, Grafana or OpenTelemetry.",
            ]
        );
        let kinds: Vec<Kind> = rs.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [Kind::Must, Kind::Must, Kind::Must, Kind::Nice, Kind::Nice]);
        assert_eq!(rs[0].years, Some(5.0));
        assert!(rs[2].any_of && rs[4].any_of && !rs[1].any_of);
    }

    #[test]
    fn prose_requirements_by_sentence_and_wording() {
        let jd = "Data Engineer\n\nWe are a small team building pipelines. You have 3-5 years of experience with Python and SQL. \
                  You know Spark or Databricks well. Experience with Airflow is a plus. We offer a good salary.\n";
        let rs = extract(jd);
        let find = |s: &str| rs.iter().find(|r| r.text.contains(s)).unwrap_or_else(|| panic!("{s} in {rs:?}"));
        assert_eq!(find("3-5 years").kind, Kind::Must);
        assert_eq!(find("3-5 years").years, Some(3.0));
        assert!(find("Spark or Databricks").any_of);
        assert_eq!(find("Airflow").kind, Kind::Nice);
    }

    #[test]
    fn headings_in_colons_and_capitals() {
        let jd = "REQUIREMENTS\n* Rust in production\n* Linux kernel internals\n\nBonus points:\n* eBPF tracing experience\n";
        let rs = extract(jd);
        assert_eq!(rs.len(), 3, "{rs:?}");
        assert_eq!(rs[2].kind, Kind::Nice);
        assert_eq!(extract("python").len(), 1);
        assert!(extract("").is_empty());
    }
}
