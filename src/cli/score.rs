//! `snapembed score --resume FILE --job FILE` (one resume, a readable report or `--json`) and
//! `snapembed rank --job FILE DIR|FILES…` (many resumes, best first), in process.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use snapembed::scorer::pdf::{self, PdfLimits};
use snapembed::scorer::{Job, Kind, Report, ScoreOptions, Weights};

use super::{ComputeArgs, SnapshotArgs};

#[derive(Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    snapshot: SnapshotArgs,
    /// The resume (text or PDF).
    #[arg(long)]
    resume: PathBuf,
    /// The job description (text or Markdown).
    #[arg(long)]
    job: PathBuf,
    /// Print the API's JSON instead of a report.
    #[arg(long)]
    json: bool,
    /// Score weights, e.g. "requirements=0.6,skills=0.3,similarity=0.1" (see the README).
    #[arg(long, env = "SNAPEMBED_SCORE_WEIGHTS", value_parser = Weights::parse_pairs)]
    weights: Option<Weights>,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(Args)]
pub struct RankArgs {
    #[command(flatten)]
    snapshot: SnapshotArgs,
    /// The job description (text or Markdown).
    #[arg(long)]
    job: PathBuf,
    /// Resume files (text or PDF), or directories whose files are resumes.
    #[arg(required = true)]
    resumes: Vec<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[arg(long, env = "SNAPEMBED_SCORE_WEIGHTS", value_parser = Weights::parse_pairs)]
    weights: Option<Weights>,
    #[command(flatten)]
    compute: ComputeArgs,
}

/// A resume or job file as text: a PDF's text is extracted within the service's PDF limits.
fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"%PDF-") {
        return pdf::extract_text(&bytes, &PdfLimits::default()).with_context(|| format!("{}", path.display()));
    }
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

pub fn score(args: ScoreArgs) -> anyhow::Result<()> {
    let embedder = args.compute.apply(args.snapshot.open()?)?;
    let resume = read_text(&args.resume)?;
    let job_text = read_text(&args.job)?;
    let options = ScoreOptions::default();
    let job = Job::new(&embedder, &job_text, options)?;
    let (report, _) = job.score(&embedder, &resume, &args.weights.unwrap_or_default(), options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

pub fn rank(args: RankArgs) -> anyhow::Result<()> {
    let embedder = args.compute.apply(args.snapshot.open()?)?;
    let job_text = read_text(&args.job)?;
    let mut files = Vec::new();
    for p in &args.resumes {
        if p.is_dir() {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            inner.sort();
            files.extend(inner);
        } else {
            files.push(p.clone());
        }
    }
    anyhow::ensure!(!files.is_empty(), "no resume files found");
    let options = ScoreOptions::default();
    let weights = args.weights.unwrap_or_default();
    let job = Job::new(&embedder, &job_text, options)?;
    let mut results: Vec<(String, Report)> = Vec::with_capacity(files.len());
    for f in &files {
        let text = read_text(f)?;
        let (report, _) = job.score(&embedder, &text, &weights, options).with_context(|| format!("scoring {}", f.display()))?;
        results.push((f.display().to_string(), report));
    }
    results.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then_with(|| a.0.cmp(&b.0)));
    if args.json {
        let out: Vec<serde_json::Value> = results
            .iter()
            .map(|(id, r)| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("id".into(), id.clone().into());
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "results": out }))?);
    } else {
        println!("{:>5}  {:>9}  {:>9}  resume", "score", "must met", "nice met");
        for (id, r) in &results {
            let count = |k: Kind| (r.requirements.iter().filter(|q| q.kind == k && q.met).count(), r.requirements.iter().filter(|q| q.kind == k).count());
            let (m, mt) = count(Kind::Must);
            let (n, nt) = count(Kind::Nice);
            println!("{:>5.1}  {:>9}  {:>9}  {id}", r.score, format!("{m}/{mt}"), format!("{n}/{nt}"));
        }
    }
    Ok(())
}

/// The report for people: score, each requirement with its evidence, skills, explanation.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Score: {:.1}/100   (semantic similarity {:.2})\n", r.score, r.semantic_similarity);
    let _ = writeln!(s, "Requirements:");
    for q in &r.requirements {
        let kind = match q.kind {
            Kind::Must => "must",
            Kind::Nice => "nice",
        };
        let _ = writeln!(s, "  [{}] {kind} {:.2}  {}", if q.met { "x" } else { " " }, q.score, q.text);
        if !q.best_match.is_empty() {
            let _ = writeln!(s, "        best match (chars {}-{}): {}", q.span[0], q.span[1], q.best_match);
        }
    }
    let _ = writeln!(s, "\nSkills matched: {}", join_or_none(&r.skills.matched));
    let _ = writeln!(s, "Skills missing: {}", join_or_none(&r.skills.missing));
    let _ = writeln!(s, "Other skills:   {}", join_or_none(&r.skills.extra));
    let _ = writeln!(s, "\n{}", r.explanation);
    let p = &r.formula.parts;
    let f = |x: Option<f32>| x.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
    let _ = writeln!(
        s,
        "\nFormula: {}\n  R = {}, S = {}, T = {:.3}; weights requirements {}, skills {}, similarity {}",
        r.formula.expression,
        f(p.requirements),
        f(p.skills),
        p.similarity,
        r.formula.weights.requirements,
        r.formula.weights.skills,
        r.formula.weights.similarity
    );
    s
}

fn join_or_none(xs: &[String]) -> String {
    if xs.is_empty() { "none".into() } else { xs.join(", ") }
}
