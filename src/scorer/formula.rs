//! The score's formula, its weights (defaults, per request, or by flags) and the plain-language
//! explanation. Every response carries the formula with the weights and parts it used, so a
//! score can be recomputed by hand.
//!
//! ```text
//! requirement r:  sem_r   = ramp(best cosine over resume units, sim_floor, sim_full) × (listed if that unit is a skills list)
//!                 skill_r = evidence of the skills r names: any one of them if r says "or", else their mean
//!                           (1 used in a bullet or sentence, `listed` only in a skills list, 0 absent)
//!                 score_r = (1 − skill_share)·sem_r + skill_share·skill_r   (sem_r alone when r names no skill)
//!                           × years factor: 1, or 1 − years_penalty·(1 − has/asked) when the resume shows fewer years
//!                 met_r   = score_r ≥ met_threshold
//! R = Σ w_kind·score_r / Σ w_kind    (w_must, w_nice)
//! S = Σ w_kind·evidence_k / Σ w_kind over the job's skills (kind: the strongest requirement naming k)
//! T = ramp(cosine(job centroid, resume centroid), sim_floor, sim_full)
//! score = 100 × (requirements·R + skills·S + similarity·T) / (requirements + skills + similarity)
//! ```
//! A part the job gives nothing to (no skills named) drops out and the others are re-weighted.

use serde::{Deserialize, Serialize};

use super::{round3, Kind, RequirementMatch, SkillsReport};

/// The weights of the formula; every field is optional in a request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// Weight of R, the requirements part.
    pub requirements: f32,
    /// Weight of S, the skills part.
    pub skills: f32,
    /// Weight of T, whole-text similarity.
    pub similarity: f32,
    /// Weight of a must-have requirement or skill.
    pub must: f32,
    /// Weight of a nice-to-have.
    pub nice: f32,
    /// Credit for evidence found only in a skills list (relative to a bullet or sentence).
    pub listed: f32,
    /// Share of a requirement's score that comes from the skills it names.
    pub skill_share: f32,
    /// Cosine at or below which a match counts 0.
    pub sim_floor: f32,
    /// Cosine at or above which a match counts 1.
    pub sim_full: f32,
    /// Largest cut for missing years of experience (the soft signal).
    pub years_penalty: f32,
    /// A requirement's score at or above which it is met.
    pub met_threshold: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            requirements: 0.6,
            skills: 0.3,
            similarity: 0.1,
            must: 1.0,
            nice: 0.5,
            listed: 0.5,
            skill_share: 0.5,
            sim_floor: 0.2,
            sim_full: 0.65,
            years_penalty: 0.5,
            met_threshold: 0.5,
        }
    }
}

impl Weights {
    /// Reads "name=value,name=value" (the --score-weights flag) over the defaults.
    pub fn parse_pairs(s: &str) -> Result<Weights, String> {
        let mut obj = serde_json::Map::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| format!("expected name=value, got {pair:?}"))?;
            let v: f64 = value.trim().parse().map_err(|_| format!("{} is not a number: {value:?}", name.trim()))?;
            obj.insert(name.trim().to_owned(), serde_json::Value::from(v));
        }
        let w: Weights = serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| e.to_string())?;
        w.validate()?;
        Ok(w)
    }

    pub fn validate(&self) -> Result<(), String> {
        let all = [
            ("requirements", self.requirements),
            ("skills", self.skills),
            ("similarity", self.similarity),
            ("must", self.must),
            ("nice", self.nice),
            ("listed", self.listed),
            ("skill_share", self.skill_share),
            ("sim_floor", self.sim_floor),
            ("sim_full", self.sim_full),
            ("years_penalty", self.years_penalty),
            ("met_threshold", self.met_threshold),
        ];
        if let Some((name, v)) = all.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
            return Err(format!("{name} must be a finite number ≥ 0, got {v}"));
        }
        for (name, v) in [("listed", self.listed), ("skill_share", self.skill_share), ("years_penalty", self.years_penalty), ("met_threshold", self.met_threshold)] {
            if v > 1.0 {
                return Err(format!("{name} must be at most 1, got {v}"));
            }
        }
        if self.requirements + self.skills + self.similarity <= 0.0 {
            return Err("requirements, skills and similarity must not all be 0".into());
        }
        if self.must + self.nice <= 0.0 {
            return Err("must and nice must not both be 0".into());
        }
        if self.sim_full <= self.sim_floor || self.sim_full > 1.0 {
            return Err(format!("need sim_floor < sim_full ≤ 1, got {} and {}", self.sim_floor, self.sim_full));
        }
        Ok(())
    }

    pub fn similarity_score(&self, cosine: f32) -> f32 {
        ((cosine - self.sim_floor) / (self.sim_full - self.sim_floor)).clamp(0.0, 1.0)
    }

    pub fn requirement_score(&self, sem: f32, skills: Option<f32>) -> f32 {
        match skills {
            Some(s) => (1.0 - self.skill_share) * sem + self.skill_share * s,
            None => sem,
        }
    }

    pub fn years_factor(&self, has: f32, asked: f32) -> f32 {
        if asked <= 0.0 || has >= asked {
            return 1.0;
        }
        1.0 - self.years_penalty * (1.0 - (has / asked).clamp(0.0, 1.0))
    }

    pub fn kind_weight(&self, kind: Kind) -> f32 {
        match kind {
            Kind::Must => self.must,
            Kind::Nice => self.nice,
        }
    }

    /// The final score (0–100, one decimal) and the formula with the parts it used.
    pub fn combine(&self, reqs: &[RequirementMatch], kind_weight: impl Fn(Kind) -> f32, skills: Option<f32>, cosine: f32) -> (f32, Formula) {
        let (mut num, mut den) = (0.0f32, 0.0f32);
        for r in reqs {
            let w = kind_weight(r.kind);
            num += w * r.score;
            den += w;
        }
        let requirements = (den > 0.0).then(|| num / den);
        let similarity = self.similarity_score(cosine);
        let parts = [(self.requirements, requirements), (self.skills, skills), (self.similarity, Some(similarity))];
        let (mut total, mut weight) = (0.0f32, 0.0f32);
        for (w, p) in parts {
            if let Some(p) = p {
                total += w * p;
                weight += w;
            }
        }
        let score = if weight > 0.0 { (1000.0 * total / weight).round() / 10.0 } else { 0.0 };
        let formula = Formula {
            expression: "100 × (requirements·R + skills·S + similarity·T) / (requirements + skills + similarity); see the README".into(),
            weights: *self,
            parts: Parts { requirements: requirements.map(round3), skills: skills.map(round3), similarity: round3(similarity) },
        };
        (score, formula)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Formula {
    pub expression: String,
    pub weights: Weights,
    pub parts: Parts,
}

/// R, S and T; `None` when the job gives the part nothing to measure.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Parts {
    pub requirements: Option<f32>,
    pub skills: Option<f32>,
    pub similarity: f32,
}

fn list(items: &[String], most: usize) -> String {
    let mut s = items.iter().take(most).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > most {
        s.push_str(&format!(" and {} more", items.len() - most));
    }
    s
}

/// A few sentences a recruiter can read: the verdict, the requirements met, the skills, the
/// weakest must-have and the years.
pub fn explain(score: f32, reqs: &[RequirementMatch], skills: &SkillsReport, years: Option<f32>, asked: Option<f32>) -> String {
    let verdict = match score {
        s if s >= 75.0 => "a strong match",
        s if s >= 55.0 => "a partial match",
        s if s >= 35.0 => "a weak match",
        _ => "not a match",
    };
    let count = |k: Kind| (reqs.iter().filter(|r| r.kind == k && r.met).count(), reqs.iter().filter(|r| r.kind == k).count());
    let (must_met, must) = count(Kind::Must);
    let (nice_met, nice) = count(Kind::Nice);
    let mut out = format!("Score {score:.0}/100: {verdict}. Meets {must_met} of {must} must-have requirements");
    if nice > 0 {
        out.push_str(&format!(" and {nice_met} of {nice} nice-to-haves"));
    }
    out.push('.');
    let total = skills.matched.len() + skills.missing.len();
    if total > 0 {
        out.push_str(&format!(" Has {} of the job's {total} skills", skills.matched.len()));
        if !skills.missing.is_empty() {
            out.push_str(&format!("; missing {}", list(&skills.missing, 5)));
        }
        out.push('.');
    }
    let weakest = reqs
        .iter()
        .filter(|r| r.kind == Kind::Must && !r.met)
        .min_by(|a, b| a.score.total_cmp(&b.score));
    if let Some(w) = weakest {
        out.push_str(&format!(" Least evidence for \"{}\"", w.text));
        if !w.best_match.is_empty() {
            out.push_str(&format!(" (closest: \"{}\")", shorten(&w.best_match, 80)));
        }
        out.push('.');
    }
    match (asked, years) {
        (Some(a), Some(y)) if y + 0.5 < a => out.push_str(&format!(" Shows about {y:.0} years of experience; the job asks {a:.0}.")),
        (Some(a), Some(y)) => out.push_str(&format!(" Shows about {y:.0} years of experience (the job asks {a:.0}).")),
        (Some(a), None) => out.push_str(&format!(" The job asks {a:.0} years; the resume gives no dates or years to check.")),
        _ => {}
    }
    out
}

fn shorten(s: &str, most: usize) -> String {
    if s.chars().count() <= most {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(most).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_weights_are_named() {
        assert!(Weights::default().validate().is_ok());
        let w = Weights { requirements: -1.0, ..Weights::default() };
        assert!(w.validate().unwrap_err().contains("requirements"));
        let w = Weights { requirements: 0.0, skills: 0.0, similarity: 0.0, ..Weights::default() };
        assert!(w.validate().is_err());
        let w: Result<Weights, _> = serde_json::from_str(r#"{"skils": 1}"#);
        assert!(w.is_err(), "unknown weight names are refused");
        let w: Weights = serde_json::from_str(r#"{"skills": 1}"#).unwrap();
        assert_eq!((w.skills, w.requirements), (1.0, 0.6));
        let w = Weights::parse_pairs("skills=0.5, nice=0.25").unwrap();
        assert_eq!((w.skills, w.nice, w.must), (0.5, 0.25, 1.0));
        assert!(Weights::parse_pairs("skils=1").unwrap_err().contains("skils"));
        assert!(Weights::parse_pairs("skills").is_err());
    }

    #[test]
    fn ramp_and_years_are_soft() {
        let w = Weights::default();
        assert_eq!(w.similarity_score(0.1), 0.0);
        assert_eq!(w.similarity_score(0.9), 1.0);
        assert_eq!(w.years_factor(6.0, 5.0), 1.0);
        assert!((w.years_factor(2.5, 5.0) - 0.75).abs() < 1e-6);
    }
}
