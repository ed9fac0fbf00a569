//! Skills: the vocabulary and alias table compiled into the binary (data/, see data/SOURCES.md),
//! phrases a job description adds, and finding them in text on word boundaries, case- and
//! punctuation-insensitively. Embeddings do not know that k8s is Kubernetes (cosine 0.47 on
//! this model, while "Go"/"going" is 0.74), so this is exact matching, not similarity.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use super::text::{key, words, Word};

const SKILLS: &str = include_str!("data/skills.txt");
const ALIASES: &str = include_str!("data/aliases.tsv");

/// Longest phrase, in words, that is looked up.
const MAX_PHRASE_WORDS: usize = 5;

/// Ordinary English words that are also skills: they count only when written with a capital
/// ("REST API", "Go"), not as "the rest of" or "go live".
const NEEDS_CAPITAL: &[&str] = &["go", "rest", "r", "c", "swift", "spring", "rust", "dart", "ruby", "chef", "puppet", "express", "flask", "vault", "lambda", "node", "next", "excel"];

/// Acronyms that are not skills, left out of the phrases a job description adds.
const NOT_SKILLS: &[&str] = &[
    "eu", "us", "usa", "uk", "eur", "usd", "gbp", "cv", "hr", "ok", "utc", "cet", "est", "pst", "ceo", "cto", "cfo", "vp",
    "faq", "pto", "ai", "it", "pm", "am", "qa", "id", "nyc", "sf", "la", "we", "you", "our", "the", "a", "an", "i", "ii",
    "iii", "ny", "ca", "etc", "ie", "eg", "tbd", "asap", "fyi", "dei", "eeo", "ltd", "inc", "gmbh", "llc",
];

/// The shipped vocabulary: normalized phrase → canonical name.
pub struct Vocabulary {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

/// The vocabulary, parsed once on first use (~9,000 lines, a few milliseconds).
pub fn vocabulary() -> &'static Vocabulary {
    static V: OnceLock<Vocabulary> = OnceLock::new();
    V.get_or_init(|| Vocabulary::parse(SKILLS, ALIASES))
}

impl Vocabulary {
    fn parse(skills: &str, aliases: &str) -> Vocabulary {
        let mut v = Vocabulary { index: HashMap::with_capacity(12_000), names: Vec::with_capacity(9_000) };
        let mut by_key: HashMap<String, u32> = HashMap::new();
        for line in skills.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let id = v.names.len() as u32;
            v.names.push(line.to_owned());
            for k in keys(line) {
                by_key.entry(k).or_insert(id);
            }
        }
        v.index = by_key;
        for line in aliases.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let Some((alias, canonical)) = line.split_once('\t') else { continue };
            let canonical = canonical.trim();
            let id = match v.index.get(&key(canonical)) {
                Some(&id) => id,
                None => {
                    // A canonical name the list lacks is a skill of its own.
                    let id = v.names.len() as u32;
                    v.names.push(canonical.to_owned());
                    for k in keys(canonical) {
                        v.index.insert(k, id);
                    }
                    id
                }
            };
            for k in keys(alias) {
                // The table wins over a vocabulary line of the same spelling ("k8s", "golang"
                // are lines of their own in the source list).
                v.index.insert(k, id);
            }
        }
        // "Google Cloud (GCP)" is the list's spelling of a skill it also names plainly: it
        // resolves to what its part before the bracket resolves to, so both meet one skill.
        for name in v.names.clone() {
            if let Some((head, _)) = name.split_once('(') {
                if let Some(&id) = v.index.get(&key(head)) {
                    for k in keys(&name) {
                        v.index.insert(k, id);
                    }
                }
            }
        }
        v
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The canonical name of a phrase, if it is a skill or an alias of one.
    pub fn lookup(&self, phrase: &str) -> Option<&str> {
        self.index.get(&key(phrase)).map(|&id| self.names[id as usize].as_str())
    }
}

/// The keys a phrase is found under: its words joined by spaces, and, when punctuation joins
/// them ("node.js", "ci/cd"), also written together ("nodejs").
fn keys(phrase: &str) -> Vec<String> {
    let ws = words(phrase);
    if ws.is_empty() || ws.len() > MAX_PHRASE_WORDS {
        return Vec::new();
    }
    let spaced = ws.iter().map(|w| w.norm.as_str()).collect::<Vec<_>>().join(" ");
    let mut out = vec![spaced];
    if ws.len() > 1 && ws[..ws.len() - 1].iter().all(|w| w.joined_to_next) {
        out.push(ws.iter().map(|w| w.norm.as_str()).collect());
    }
    out
}

/// A skill found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Canonical name.
    pub skill: String,
    /// Byte range in the text searched.
    pub span: std::ops::Range<usize>,
}

/// The vocabulary plus the phrases one job description adds.
pub struct Matcher<'v> {
    vocab: &'v Vocabulary,
    local: HashMap<String, String>,
}

impl<'v> Matcher<'v> {
    pub fn new(vocab: &'v Vocabulary) -> Matcher<'v> {
        Matcher { vocab, local: HashMap::new() }
    }

    /// Adds the technical-looking terms of a job description that the vocabulary lacks: mixed
    /// case (gRPC, OpenTelemetry), letters with digits (S3, EC2) and acronyms (ETL, SLO).
    pub fn add_phrases_from(&mut self, job: &str) {
        let ws = words(job);
        for w in &ws {
            let raw = &job[w.span.clone()];
            if self.vocab.index.contains_key(&w.norm) || NOT_SKILLS.contains(&w.norm.as_str()) {
                continue;
            }
            if looks_technical(raw) {
                self.local.entry(w.norm.clone()).or_insert_with(|| raw.to_owned());
            }
        }
    }

    /// Every skill in `text`, longest phrase first at each position, in order of appearance.
    pub fn find(&self, text: &str) -> Vec<Found> {
        let ws = words(text);
        let mut out = Vec::new();
        let mut i = 0;
        let mut k = String::new();
        'outer: while i < ws.len() {
            let longest = MAX_PHRASE_WORDS.min(ws.len() - i);
            for n in (1..=longest).rev() {
                for together in [false, true] {
                    if together && (n == 1 || !ws[i..i + n - 1].iter().all(|w| w.joined_to_next)) {
                        continue;
                    }
                    k.clear();
                    for (j, w) in ws[i..i + n].iter().enumerate() {
                        if j > 0 && !together {
                            k.push(' ');
                        }
                        k.push_str(&w.norm);
                    }
                    let name = match self.vocab.index.get(&k) {
                        Some(&id) => Some(self.vocab.names[id as usize].as_str()),
                        None => self.local.get(&k).map(String::as_str),
                    };
                    if let Some(name) = name {
                        if n == 1 && !acceptable_single(text, &ws[i]) {
                            continue;
                        }
                        out.push(Found { skill: name.to_owned(), span: ws[i].span.start..ws[i + n - 1].span.end });
                        i += n;
                        continue 'outer;
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// The distinct canonical names in `text`, in order of first appearance.
    pub fn distinct(&self, text: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        self.find(text).into_iter().filter(|f| seen.insert(f.skill.clone())).map(|f| f.skill).collect()
    }
}

/// A one-word match of an ordinary English word needs a capital; a one-letter skill (C, R)
/// must not be part of "R&D", "C-level" or an initial.
fn acceptable_single(text: &str, w: &Word) -> bool {
    if !NEEDS_CAPITAL.contains(&w.norm.as_str()) {
        return true;
    }
    let raw = &text[w.span.clone()];
    if !raw.chars().next().is_some_and(char::is_uppercase) {
        return false;
    }
    if raw.chars().count() == 1 {
        let next = text[w.span.end..].chars().next();
        return !matches!(next, Some('&' | '-' | '.' | '\'' | '’'));
    }
    true
}

fn looks_technical(raw: &str) -> bool {
    let letters = raw.chars().filter(|c| c.is_alphabetic()).count();
    if letters < 2 || raw.chars().count() > 30 {
        return false;
    }
    let upper_inside = raw.chars().skip(1).any(char::is_uppercase);
    let has_digit = raw.chars().any(|c| c.is_ascii_digit());
    let all_upper = raw.chars().filter(|c| c.is_alphabetic()).all(char::is_uppercase);
    // Acronyms: 2-6 capitals; mixed case: a capital after the first letter; or letters with digits.
    (all_upper && (2..=6).contains(&letters)) || (upper_inside && !all_upper) || (has_digit && letters >= 1 && !raw.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        Matcher::new(vocabulary()).distinct(text)
    }

    #[test]
    fn vocabulary_parses_and_aliases_resolve() {
        let v = vocabulary();
        assert!(v.len() > 5_000, "{}", v.len());
        assert_eq!(v.lookup("k8s"), Some("Kubernetes"));
        assert_eq!(v.lookup("Postgres"), Some("PostgreSQL"));
        assert_eq!(v.lookup("postgresql"), Some("PostgreSQL"));
        assert_eq!(v.lookup("JS"), Some("JavaScript"));
        assert_eq!(v.lookup("ts"), Some("TypeScript"));
        assert_eq!(v.lookup("GCP"), Some("Google Cloud"));
        assert_eq!(v.lookup("Google Cloud (GCP)"), Some("Google Cloud"));
    }

    #[test]
    fn word_boundaries_and_case() {
        assert_eq!(found("I am going to the gym"), Vec::<String>::new());
        assert_eq!(found("Services in Go and golang"), ["Go"]);
        assert!(found("Wrote C++ and C# and some C.").iter().any(|s| s == "C++"));
        let cs = found("Wrote C++ only");
        assert!(!cs.contains(&"C".to_owned()) && !cs.contains(&"C#".to_owned()), "{cs:?}");
        assert_eq!(found("C# services"), ["C#"]);
        let rd = found("led R&D for a C-level audience");
        assert!(!rd.iter().any(|s| s == "R" || s == "C"), "{rd:?}");
        assert_eq!(found("the rest of the team"), Vec::<String>::new());
        assert!(found("built REST and gRPC").contains(&v_name("REST")));
        assert_eq!(found("K8S, postgres and Node.js"), found("Kubernetes, PostgreSQL and nodejs"));
    }

    fn v_name(s: &str) -> String {
        vocabulary().lookup(s).unwrap().to_owned()
    }

    #[test]
    fn job_phrases_extend_the_vocabulary() {
        let mut m = Matcher::new(vocabulary());
        m.add_phrases_from("Experience with PodDisruptionBudgets and the XYZQ protocol in the EU.");
        let got = m.distinct("Set PodDisruptionBudgets; spoke XYZQ; lived in the EU");
        assert!(got.contains(&"PodDisruptionBudgets".to_owned()) && got.contains(&"XYZQ".to_owned()), "{got:?}");
        assert!(!got.iter().any(|s| s == "EU"));
    }
}
