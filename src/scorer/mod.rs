//! The resume scorer: a resume against a job description, requirement by requirement, with
//! the reasons. Knows nothing of HTTP; the service and the CLI call [`Job::new`] once per job
//! description and [`Job::score`] once per resume.
//!
//! - [`requirements`]: the job's requirements (must/nice, "A or B", years)
//! - [`resume`]: identity removed, the resume cut into bullets, sentences and windows
//! - [`skills`]: the shipped vocabulary and aliases, matched on word boundaries
//! - [`formula`]: the weights, the score and its plain-language explanation
//! - [`text`]: words, sentences, bullets
//! - [`pdf`]: resume text from a PDF, contained

pub mod formula;
pub mod pdf;
pub mod requirements;
pub mod resume;
pub mod skills;
pub mod text;

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

pub use formula::{Formula, Weights};
pub use requirements::{Kind, Requirement};

use crate::engine::pooling::cosine;
use crate::{EmbedError, EmbedOptions, Embedder};
use skills::Matcher;

/// Words above which a unit is checked against the model's limit and, if over it, cut into the
/// engine's overlapping windows (`Embedder::chunk`): bullets and sentences are far shorter; a
/// run of text without punctuation (a PDF's extracted columns) would otherwise be truncated at
/// 256 word pieces and its end never matched.
const CHECK_UNIT_WORDS: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("the {what} is empty")]
    Empty { what: &'static str },
    #[error("the {what} does not look like text ({bad} of its first {checked} characters are control or replacement characters)")]
    NotText { what: &'static str, bad: usize, checked: usize },
    #[error("invalid weights: {0}")]
    Weights(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// How to run the model for scoring.
#[derive(Debug, Clone, Copy)]
pub struct ScoreOptions {
    pub embed: EmbedOptions,
    /// Texts per embedding call (the Python service used 4); memory is bounded by
    /// `embed.chunk_tokens` either way.
    pub batch: usize,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions { embed: EmbedOptions::default(), batch: 32 }
    }
}

/// Rejects empty text and binary junk before any model work.
pub fn check_text(what: &'static str, text: &str) -> Result<(), ScoreError> {
    if text.trim().is_empty() {
        return Err(ScoreError::Empty { what });
    }
    let checked = text.chars().take(4096).count();
    let bad = text
        .chars()
        .take(4096)
        .filter(|&c| c == '\u{FFFD}' || (c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{0C}')))
        .count();
    if bad * 20 > checked {
        return Err(ScoreError::NotText { what, bad, checked });
    }
    Ok(())
}

/// One requirement's result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequirementMatch {
    pub text: String,
    pub kind: Kind,
    /// The resume excerpt that best meets it (identity removed), empty when nothing matched.
    pub best_match: String,
    /// Where `best_match` is in the resume: Unicode scalar offsets `[start, end)`.
    pub span: [usize; 2],
    /// 0–1, see `formula`.
    pub score: f32,
    pub met: bool,
    /// Cosine of the requirement and `best_match`.
    pub similarity: f32,
    /// The skills it names, each with 1 (used in a bullet or sentence), `listed` (only in a
    /// skills list) or 0 (absent).
    pub skills: Vec<SkillEvidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub years_asked: Option<f32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkillEvidence {
    pub skill: String,
    pub evidence: f32,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SkillsReport {
    /// The job's skills the resume has.
    pub matched: Vec<String>,
    /// The job's skills the resume lacks.
    pub missing: Vec<String>,
    /// The resume's skills the job does not name.
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    /// 0–100.
    pub score: f32,
    /// Cosine of the whole job (its requirements) and the whole resume (its units).
    pub semantic_similarity: f32,
    pub requirements: Vec<RequirementMatch>,
    pub skills: SkillsReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub years_of_experience: Option<f32>,
    pub explanation: String,
    pub formula: Formula,
}

/// A job description read and embedded once, ready to score any number of resumes.
pub struct Job {
    requirements: Vec<Requirement>,
    vectors: Vec<Vec<f32>>,
    /// Skills each requirement names.
    req_skills: Vec<Vec<String>>,
    /// The job's skills, each with the kind of the strongest requirement naming it.
    skills: Vec<(String, Kind)>,
    matcher: Matcher<'static>,
    centroid: Vec<f32>,
    /// Texts embedded and word pieces used, for metrics.
    pub embedded: (usize, usize),
}

impl Job {
    pub fn new(embedder: &Embedder, description: &str, options: ScoreOptions) -> Result<Job, ScoreError> {
        check_text("job description", description)?;
        let requirements = requirements::extract(description);
        if requirements.is_empty() {
            return Err(ScoreError::Empty { what: "job description" });
        }
        let mut matcher = Matcher::new(skills::vocabulary());
        let req_text: String = requirements.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join("\n");
        matcher.add_phrases_from(&req_text);
        let req_skills: Vec<Vec<String>> = requirements.iter().map(|r| matcher.distinct(&r.text)).collect();
        let mut skills: Vec<(String, Kind)> = Vec::new();
        for (r, ks) in requirements.iter().zip(&req_skills) {
            for k in ks {
                match skills.iter_mut().find(|(s, _)| s == k) {
                    Some((_, kind)) if r.kind == Kind::Must => *kind = Kind::Must,
                    Some(_) => {}
                    None => skills.push((k.clone(), r.kind)),
                }
            }
        }
        let texts: Vec<&str> = requirements.iter().map(|r| r.text.as_str()).collect();
        let (vectors, tokens) = embed(embedder, &texts, options)?;
        let centroid = mean(&vectors, None);
        Ok(Job { embedded: (texts.len(), tokens), requirements, vectors, req_skills, skills, matcher, centroid })
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Scores one resume. Also returns the texts embedded and word pieces used.
    pub fn score(&self, embedder: &Embedder, resume: &str, weights: &Weights, options: ScoreOptions) -> Result<(Report, (usize, usize)), ScoreError> {
        check_text("resume", resume)?;
        weights.validate().map_err(ScoreError::Weights)?;
        let neutral = resume::neutralize(resume);
        let units = windowed(embedder, &neutral, resume::units(&neutral));
        let texts: Vec<&str> = units.iter().map(|u| u.text.as_str()).collect();
        let (vectors, tokens) = if texts.is_empty() { (Vec::new(), 0) } else { embed(embedder, &texts, options)? };

        // Skill evidence: 1 when a bullet or sentence uses it, `listed` when only a list names it.
        let mut evidence: HashMap<String, f32> = HashMap::new();
        let mut resume_skills: Vec<String> = Vec::new();
        for u in &units {
            let e = if u.list { weights.listed } else { 1.0 };
            for f in self.matcher.find(&u.text) {
                let slot = evidence.entry(f.skill.clone()).or_insert_with(|| {
                    resume_skills.push(f.skill.clone());
                    0.0
                });
                *slot = slot.max(e);
            }
        }

        let years = resume::years_of_experience(&neutral, this_year());
        let mut matches = Vec::with_capacity(self.requirements.len());
        for ((req, q), ks) in self.requirements.iter().zip(&self.vectors).zip(&self.req_skills) {
            // The best unit by its discounted semantic score: a skills list can support a
            // requirement, but not as much as a sentence saying what was done.
            let mut best: Option<(usize, f32, f32)> = None;
            for (i, (u, v)) in units.iter().zip(&vectors).enumerate() {
                let sim = cosine(q, v);
                let s = weights.similarity_score(sim) * if u.list { weights.listed } else { 1.0 };
                if best.is_none_or(|(_, b, _)| s > b) {
                    best = Some((i, s, sim));
                }
            }
            let (sem, sim) = best.map_or((0.0, 0.0), |(_, s, sim)| (s, sim));
            let ev: Vec<SkillEvidence> =
                ks.iter().map(|k| SkillEvidence { skill: k.clone(), evidence: evidence.get(k).copied().unwrap_or(0.0) }).collect();
            let skill_part = if ev.is_empty() {
                None
            } else if req.any_of {
                Some(ev.iter().map(|e| e.evidence).fold(0.0, f32::max))
            } else {
                Some(ev.iter().map(|e| e.evidence).sum::<f32>() / ev.len() as f32)
            };
            let years_factor = match (req.years, years) {
                (Some(asked), Some(has)) => weights.years_factor(has, asked),
                _ => 1.0,
            };
            let score = weights.requirement_score(sem, skill_part) * years_factor;
            let (best_match, span) = match best {
                Some((i, _, _)) if sim > 0.0 => {
                    let u = &units[i];
                    (u.text.clone(), [char_offset(resume, u.span.start), char_offset(resume, u.span.end)])
                }
                _ => (String::new(), [0, 0]),
            };
            matches.push(RequirementMatch {
                text: req.text.clone(),
                kind: req.kind,
                best_match,
                span,
                score: round3(score),
                met: score >= weights.met_threshold,
                similarity: round3(sim),
                skills: ev,
                years_asked: req.years,
            });
        }

        let mut skills = SkillsReport::default();
        let (mut have, mut total) = (0.0f32, 0.0f32);
        for (k, kind) in &self.skills {
            let w = weights.kind_weight(*kind);
            let e = evidence.get(k).copied().unwrap_or(0.0);
            have += w * e;
            total += w;
            if e > 0.0 { skills.matched.push(k.clone()) } else { skills.missing.push(k.clone()) }
        }
        skills.extra = resume_skills.into_iter().filter(|k| !self.skills.iter().any(|(s, _)| s == k)).collect();
        let skills_part = (total > 0.0).then(|| have / total);

        let semantic_similarity = if vectors.is_empty() { 0.0 } else { cosine(&self.centroid, &mean(&vectors, None)) };
        let (score, formula) = weights.combine(&matches, |k| weights.kind_weight(k), skills_part, semantic_similarity);
        let explanation = formula::explain(score, &matches, &skills, years, self.requirements.iter().filter_map(|r| r.years).reduce(f32::max));
        Ok((
            Report {
                score,
                semantic_similarity: round3(semantic_similarity),
                requirements: matches,
                skills,
                years_of_experience: years,
                explanation,
                formula,
            },
            (texts.len(), tokens),
        ))
    }
}

/// Units as they are, except those over the model's limit, which become overlapping windows.
fn windowed(embedder: &Embedder, neutral: &str, units: Vec<resume::Unit>) -> Vec<resume::Unit> {
    let mut out = Vec::with_capacity(units.len());
    for u in units {
        if u.text.split_whitespace().count() <= CHECK_UNIT_WORDS {
            out.push(u);
            continue;
        }
        let piece = &neutral[u.span.clone()];
        let spans = embedder.chunk(piece);
        if spans.len() <= 1 {
            out.push(u);
            continue;
        }
        out.extend(spans.into_iter().filter_map(|c| {
            let mut w = resume::unit(neutral, u.span.start + c.start..u.span.start + c.end)?;
            w.list = u.list;
            Some(w)
        }));
    }
    out
}

/// Embeds texts `options.batch` at a time, each distinct text once; returns the vectors (in
/// order) and the word pieces used.
fn embed(embedder: &Embedder, texts: &[&str], options: ScoreOptions) -> Result<(Vec<Vec<f32>>, usize), EmbedError> {
    let mut distinct: Vec<&str> = Vec::with_capacity(texts.len());
    let mut slot: HashMap<&str, usize> = HashMap::with_capacity(texts.len());
    let order: Vec<usize> = texts
        .iter()
        .map(|t| {
            *slot.entry(t).or_insert_with(|| {
                distinct.push(t);
                distinct.len() - 1
            })
        })
        .collect();
    let mut vectors = Vec::with_capacity(distinct.len());
    let mut tokens = 0;
    let embed_options = EmbedOptions { normalize: Some(true), truncate: true, ..options.embed };
    for batch in distinct.chunks(options.batch.max(1)) {
        // Through the embedding cache: a resume ranked against several jobs, or a job
        // description scored against many resumes, embeds each text once.
        let embedded = embedder.embed_counted(batch, embed_options)?;
        tokens += embedded.tokens;
        vectors.extend(embedded.vectors);
    }
    Ok((order.into_iter().map(|i| vectors[i].clone()).collect(), tokens))
}

/// The normalized mean of vectors.
fn mean(vectors: &[Vec<f32>], _weights: Option<&[f32]>) -> Vec<f32> {
    let Some(first) = vectors.first() else { return Vec::new() };
    let mut m = vec![0f32; first.len()];
    for v in vectors {
        for (a, b) in m.iter_mut().zip(v) {
            *a += b;
        }
    }
    crate::engine::pooling::l2_normalize(&mut m);
    m
}

fn char_offset(s: &str, byte: usize) -> usize {
    s.get(..byte).map_or(0, |p| p.chars().count())
}

pub(crate) fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

fn this_year() -> i32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    1970 + (secs / 31_556_952) as i32
}
