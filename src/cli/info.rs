//! `snapembed info`: the snapshot's header, the kernels and the load times, as JSON.

use std::io::Write;

use clap::Args;
use snapembed::service::config::KernelArg;

use super::SnapshotArgs;

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    snapshot: SnapshotArgs,
    #[command(flatten)]
    kernels: KernelArg,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let embedder = args.kernels.apply(args.snapshot.open()?).map_err(anyhow::Error::msg)?;
    let header = embedder.header();
    let times = embedder.load_times();
    let info = serde_json::json!({
        "file": embedder.snapshot().source(),
        "bytes": embedder.snapshot().len(),
        "format_version": snapembed::engine::snapshot::FORMAT_VERSION,
        "kernels": embedder.isa().name(),
        "kernels_available": snapembed::engine::kernels::Isa::available().into_iter().map(|i| i.name()).collect::<Vec<_>>(),
        "load_ms": {
            "open": times.open.as_secs_f64() * 1e3,
            "tokenizer": times.tokenizer.as_secs_f64() * 1e3,
            "model": times.model.as_secs_f64() * 1e3,
        },
        "header": header,
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &info)?;
    writeln!(out)?;
    Ok(())
}
