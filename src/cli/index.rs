//! `snapembed index CORPUS -o FILE` (build a corpus index) and `snapembed search --index FILE
//! "query"` (query one from the command line).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use snapembed::search::corpus::{self, Format};
use snapembed::search::{builder, FilterValue, MappedIndex, Search, SearchParams};

use super::{ComputeArgs, SnapshotArgs};

#[derive(Clone, Copy, ValueEnum)]
enum CorpusFormat {
    Jsonl,
    Csv,
}

#[derive(Args)]
pub struct IndexArgs {
    /// The corpus: JSON Lines ({"id", "text", "title"?, "metadata"?} per line) or CSV with a header.
    corpus: PathBuf,
    /// Where to write the index (written to a temporary file beside it, then renamed).
    #[arg(short, long, required_unless_present = "to")]
    output: Option<PathBuf>,
    /// Write into PostgreSQL + pgvector instead (postgres://…; creates what is missing).
    #[arg(long, conflicts_with = "output")]
    to: Option<String>,
    /// PostgreSQL: the table name (tables NAME_documents, NAME_chunks, NAME_meta).
    #[arg(long, default_value = "snapembed", requires = "to")]
    table: String,
    /// PostgreSQL: embed only the documents whose id hashes to shard I of N (1-based), so N
    /// writers split a corpus.
    #[arg(long, value_name = "I/N", requires = "to")]
    shard: Option<snapembed::search::postgres::Shard>,
    /// PostgreSQL: delete rows (of this shard) whose ids are no longer in CORPUS.
    #[arg(long, requires = "to")]
    delete_missing: bool,
    /// The corpus format [default: csv for a .csv file, else jsonl].
    #[arg(long, value_enum)]
    format: Option<CorpusFormat>,
    /// CSV: the column holding the text.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// CSV: the column holding the id (other columns become metadata).
    #[arg(long, default_value = "id")]
    id_column: String,
    /// Fail on the first bad record instead of skipping it.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    snapshot: SnapshotArgs,
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn run(args: IndexArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let is_csv = match args.format {
        Some(f) => matches!(f, CorpusFormat::Csv),
        None => args.corpus.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    let format = if is_csv {
        Format::Csv { text_column: args.text_column.clone(), id_column: args.id_column.clone() }
    } else {
        Format::JsonLines
    };
    let loaded = corpus::load(&args.corpus, &format, args.strict)?;
    for p in &loaded.problems {
        eprintln!("{}: skipped {p}", args.corpus.display());
    }
    let model = args.compute.apply(args.snapshot.open()?)?;
    if let Some(url) = &args.to {
        let target = super::index_postgres::Target {
            url,
            table: &args.table,
            shard: args.shard.unwrap_or(snapembed::search::postgres::Shard::ALL),
            delete_missing: args.delete_missing,
        };
        let mut report = progress_reporter("documents");
        return super::index_postgres::run(target, &loaded.documents, &model, &mut *report);
    }
    let Some(output) = &args.output else { anyhow::bail!("give -o FILE or --to postgres://…") };
    let threads = model.threads();
    let mut report = progress_reporter("embedding chunks");
    let embedded = builder::embed_documents(&model, &loaded.documents, threads, &mut *report)?;
    drop(report);
    let bytes = builder::index_bytes(builder::model_ref(&model), &loaded.documents, &embedded)?;
    builder::write_atomically(output, &bytes)?;
    eprintln!(
        "indexed {} documents ({} chunks, {} records skipped) into {}: {:.1} MB in {:.1} s",
        loaded.documents.len(),
        embedded.vectors.len(),
        loaded.problems.len(),
        output.display(),
        bytes.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// An indicatif bar on a terminal; otherwise a plain line at every tenth of the work.
fn progress_reporter(what: &'static str) -> Box<dyn FnMut(usize, usize)> {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        let style = indicatif::ProgressStyle::with_template(&format!("{what} {{bar:40}} {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})"))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        Box::new(move |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            if done == total {
                bar.finish_and_clear();
            }
        })
    } else {
        let mut last_tenth = None;
        Box::new(move |done, total| {
            let tenth = (done * 10).checked_div(total).unwrap_or(10);
            if last_tenth != Some(tenth) {
                last_tenth = Some(tenth);
                eprintln!("{what}: {done}/{total}");
            }
        })
    }
}

#[derive(Args)]
pub struct SearchArgs {
    /// The index to search (built by `snapembed index`).
    #[arg(long, env = "SNAPEMBED_CORPUS", required_unless_present = "search_url")]
    index: Option<PathBuf>,
    #[command(flatten)]
    search_db: snapembed::search::postgres::PgArgs,
    /// What to look for.
    query: String,
    /// Hits to return (1..=100).
    #[arg(long, default_value_t = snapembed::search::DEFAULT_TOP_K)]
    top_k: usize,
    /// Keep documents whose metadata KEY equals VALUE (a string); repeat a key for any of several values.
    #[arg(long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Leave out hits scoring below this cosine.
    #[arg(long)]
    min_score: Option<f32>,
    /// Print the response as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    snapshot: SnapshotArgs,
}

pub fn search(args: SearchArgs) -> anyhow::Result<()> {
    let model = args.snapshot.open()?;
    let index: Box<dyn Search> = match (&args.index, super::index_postgres::backend(&args.search_db, &model)?) {
        (Some(path), _) => Box::new(MappedIndex::open(path)?),
        (None, Some(pg)) => Box::new(pg),
        (None, None) => anyhow::bail!("give --index FILE or --search-url postgres://…"),
    };
    index.check_model(&model)?;
    let mut filter = snapembed::search::Filter::new();
    for f in &args.filter {
        let (key, value) = f.split_once('=').ok_or_else(|| anyhow::anyhow!("--filter {f:?} is not KEY=VALUE"))?;
        let value = serde_json::Value::String(value.to_owned());
        match filter.remove(key) {
            None => filter.insert(key.to_owned(), FilterValue::One(value)),
            Some(FilterValue::One(first)) => filter.insert(key.to_owned(), FilterValue::AnyOf(vec![first, value])),
            Some(FilterValue::AnyOf(mut all)) => {
                all.push(value);
                filter.insert(key.to_owned(), FilterValue::AnyOf(all))
            }
        };
    }
    let params = SearchParams { top_k: Some(args.top_k), filter: (!filter.is_empty()).then_some(filter), min_score: args.min_score };
    let response = snapembed::search::run(&model, index.as_ref(), &args.query, &params, model.threads())?;
    if args.json {
        println!("{}", serde_json::to_string(&response)?);
        return Ok(());
    }
    for (rank, hit) in response.results.iter().enumerate() {
        let title = hit.metadata.get("title").and_then(|t| t.as_str()).map(|t| format!("  {t}")).unwrap_or_default();
        println!("{:>2}. {:.3}  {}{title}", rank + 1, hit.score, hit.id);
        println!("    [{}..{}] {}", hit.span[0], hit.span[1], hit.snippet.replace('\n', " "));
    }
    if response.results.is_empty() {
        println!("no matches");
    }
    Ok(())
}
