//! The subcommands, one file each, and the arguments they share: which snapshot to open and
//! how to compute (threads, kernels).

pub mod bench_search;
pub mod check;
pub mod embed;
pub mod index;
pub mod index_postgres;
pub mod info;
pub mod memory;
pub mod score;
pub mod serve;

use std::path::{Path, PathBuf};

use clap::Args;
use snapembed::service::config::KernelArg;
use snapembed::Embedder;

#[cfg(not(feature = "embedded-snapshot"))]
const DEFAULT_SNAPSHOT: &str = "artifacts/all-MiniLM-L6-v2.snap";

#[derive(Args)]
pub struct SnapshotArgs {
    /// Snapshot file to map [default: the embedded snapshot if this binary has one, else
    /// artifacts/all-MiniLM-L6-v2.snap].
    #[arg(long, env = "SNAPEMBED_SNAPSHOT")]
    pub snapshot: Option<PathBuf>,
}

impl SnapshotArgs {
    pub fn open(&self) -> Result<Embedder, snapembed::EmbedError> {
        open_snapshot(self.snapshot.as_deref())
    }
}

#[derive(Args)]
pub struct ComputeArgs {
    /// Worker threads [default: the whole CPUs this process may use: affinity, cgroup quota, Lambda's memory share].
    #[arg(long, env = "SNAPEMBED_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    #[command(flatten)]
    pub kernels: KernelArg,
}

impl ComputeArgs {
    pub fn apply(&self, e: Embedder) -> anyhow::Result<Embedder> {
        let e = self.kernels.apply(e).map_err(anyhow::Error::msg)?;
        Ok(match self.threads {
            Some(n) => e.with_threads(n as usize),
            None => e,
        })
    }
}

/// The snapshot named by --snapshot, else the one compiled in, else the default path.
pub fn open_snapshot(path: Option<&Path>) -> Result<Embedder, snapembed::EmbedError> {
    match path {
        Some(path) => Embedder::from_snapshot(path),
        #[cfg(feature = "embedded-snapshot")]
        None => Embedder::from_static(snapembed::embedded_snapshot()),
        #[cfg(not(feature = "embedded-snapshot"))]
        None => Embedder::from_snapshot(Path::new(DEFAULT_SNAPSHOT)),
    }
}
