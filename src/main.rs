//! The `snapembed` binary: parses the command line and hands each subcommand to its file in
//! `cli/`. With no arguments it runs `serve` configured from the environment, which is how AWS
//! Lambda starts `bootstrap`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "snapembed", version, about = "Text embeddings from a pre-built int8 snapshot")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API on $PORT, or as an AWS Lambda function when AWS_LAMBDA_RUNTIME_API is set.
    Serve(Box<snapembed::service::config::ServeConfig>),
    /// Embed texts: one per line on stdin, or --text arguments; one JSON array per line out.
    Embed(cli::embed::EmbedArgs),
    /// Score a resume against a job description, requirement by requirement.
    Score(cli::score::ScoreArgs),
    /// Rank resumes (files or directories) against a job description, best first.
    Rank(cli::score::RankArgs),
    /// Print the snapshot's header (model, settings, plan, tensors) as JSON.
    Info(cli::info::InfoArgs),
    /// Build a corpus index from JSON Lines or CSV: chunked, embedded, memory-mappable.
    Index(cli::index::IndexArgs),
    /// Search a corpus index from the command line.
    Search(cli::index::SearchArgs),
    /// Smoke-check a deployment: every endpoint timed, /embed compared with this binary's vector.
    Check(cli::check::CheckArgs),
    /// The memory guard's report (level, RSS against the budget, thresholds), once or --watch.
    Memory(cli::memory::MemoryCmdArgs),
    /// Time embedding in this process (used by bench/): texts from a file, one per line.
    #[command(hide = true)]
    Bench(cli::embed::BenchArgs),
    /// Time the corpus scan on a synthetic 100k-document index (used by bench/search.sh).
    #[command(hide = true)]
    BenchSearch(cli::bench_search::BenchSearchArgs),
}

fn main() -> ExitCode {
    // Lambda starts `bootstrap` with no arguments: that means `serve`, configured from the environment.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 1 {
        args.push("serve".into());
    }
    let result = match Cli::parse_from(args).command {
        Command::Serve(config) => cli::serve::run(*config),
        Command::Embed(args) => cli::embed::run(args),
        Command::Info(args) => cli::info::run(args),
        Command::Index(args) => cli::index::run(args),
        Command::Search(args) => cli::index::search(args),
        Command::Check(args) => cli::check::run(args),
        Command::Memory(args) => cli::memory::run(args),
        Command::Score(args) => cli::score::score(args),
        Command::Rank(args) => cli::score::rank(args),
        Command::Bench(args) => cli::embed::bench(args),
        Command::BenchSearch(args) => cli::bench_search::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("snapembed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
