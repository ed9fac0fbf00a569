//! `snapembed memory`: the memory guard's report for this process's budget — the same report as
//! `/memory-status` — once (`--once`, the default) or every `--interval` seconds (`--watch`).

use std::io::Write;
use std::time::Duration;

use clap::Args;
use snapembed::service::memory::{render_status, MemoryArgs};

#[derive(Args)]
pub struct MemoryCmdArgs {
    /// Print one report and exit (the default).
    #[arg(long, conflicts_with = "watch")]
    pub once: bool,
    /// Keep printing a report every --interval seconds.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between reports with --watch.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// JSON (one object per line) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub memory: MemoryArgs,
}

pub fn run(args: MemoryCmdArgs) -> anyhow::Result<()> {
    let guard = args.memory.guard()?;
    loop {
        // This process holds no model: nothing to free, so the report only measures.
        let status = guard.status(0, &());
        let text = if args.json { format!("{}\n", serde_json::to_string(&status)?) } else { render_status(&status) };
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) ends a watch quietly.
        if out.write_all(text.as_bytes()).and_then(|_| out.flush()).is_err() || !args.watch {
            return Ok(());
        }
        if !args.json {
            let _ = writeln!(out);
        }
        drop(out);
        std::thread::sleep(Duration::from_secs(args.interval));
    }
}
