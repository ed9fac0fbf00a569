//! The memory guard: knows the budget the process really has (the container's limit — cgroup v2
//! `memory.max`, v1 `memory.limit_in_bytes`, or Lambda's configured size — not the host's RAM),
//! watches the process's RSS, and tells the API when to degrade: under elevated pressure
//! requests run in smaller chunks, one at a time; under critical pressure embedding requests
//! are refused with 503 + Retry-After while health and status keep answering.

use std::path::Path;

use serde::Serialize;

/// Fraction of the budget at which work is shrunk.
pub const ELEVATED: f64 = 0.80;
/// Fraction of the budget at which new embedding work is refused.
pub const CRITICAL: f64 = 0.92;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pressure {
    Ok,
    Elevated,
    Critical,
}

#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    pub limit_bytes: u64,
    /// Where the limit came from.
    pub source: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryStatus {
    pub limit_bytes: u64,
    pub limit_source: &'static str,
    pub host_total_bytes: u64,
    pub host_available_bytes: u64,
    /// The cgroup's own usage (page cache included), where there is a cgroup.
    pub cgroup_current_bytes: Option<u64>,
    pub process_rss_bytes: u64,
    pub snapshot_mapped_bytes: u64,
    pub rss_fraction_of_limit: f64,
    pub pressure: Pressure,
    pub thresholds: Thresholds,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    pub elevated: f64,
    pub critical: f64,
}

pub struct MemoryGuard {
    budget: Budget,
}

impl MemoryGuard {
    /// `override_mb` (a flag) wins; then the cgroup, then Lambda's size, then the host.
    pub fn new(override_mb: Option<u64>) -> MemoryGuard {
        let budget = match override_mb {
            Some(mb) => Budget { limit_bytes: mb * 1024 * 1024, source: "--memory-limit-mb" },
            None => detect_budget(Path::new("/sys/fs/cgroup"), std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok(), host_memory().0),
        };
        MemoryGuard { budget }
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    pub fn pressure(&self) -> Pressure {
        classify(process_rss(), self.budget.limit_bytes)
    }

    pub fn status(&self, snapshot_mapped_bytes: u64) -> MemoryStatus {
        let rss = process_rss();
        let (host_total, host_available) = host_memory();
        MemoryStatus {
            limit_bytes: self.budget.limit_bytes,
            limit_source: self.budget.source,
            host_total_bytes: host_total,
            host_available_bytes: host_available,
            cgroup_current_bytes: read_u64(Path::new("/sys/fs/cgroup/memory.current")),
            process_rss_bytes: rss,
            snapshot_mapped_bytes,
            rss_fraction_of_limit: rss as f64 / self.budget.limit_bytes.max(1) as f64,
            pressure: classify(rss, self.budget.limit_bytes),
            thresholds: Thresholds { elevated: ELEVATED, critical: CRITICAL },
        }
    }
}

fn classify(rss: u64, limit: u64) -> Pressure {
    let f = rss as f64 / limit.max(1) as f64;
    if f >= CRITICAL {
        Pressure::Critical
    } else if f >= ELEVATED {
        Pressure::Elevated
    } else {
        Pressure::Ok
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The tightest limit that applies. cgroup files are read directly: sysinfo reports the
/// host's memory, which is not what a container may use.
fn detect_budget(cgroup: &Path, lambda_mb: Option<String>, host_total: u64) -> Budget {
    let mut best = Budget { limit_bytes: host_total, source: "host memory" };
    let mut consider = |bytes: Option<u64>, source| {
        if let Some(b) = bytes.filter(|&b| b > 0 && b < best.limit_bytes) {
            best = Budget { limit_bytes: b, source };
        }
    };
    // v2: "max" means unlimited and does not parse.
    consider(read_u64(&cgroup.join("memory.max")), "cgroup v2 memory.max");
    consider(read_u64(&cgroup.join("memory/memory.limit_in_bytes")), "cgroup v1 memory.limit_in_bytes");
    consider(lambda_mb.and_then(|mb| mb.trim().parse::<u64>().ok()).map(|mb| mb * 1024 * 1024), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    best
}

/// (total, available) host memory in bytes.
fn host_memory() -> (u64, u64) {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    (sys.total_memory(), sys.available_memory())
}

/// Resident set size of this process, from /proc/self/statm (cheap enough to read per request).
pub fn process_rss() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * 4096
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_limit_wins_and_says_where_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let host = 24 << 30;
        let b = detect_budget(dir.path(), None, host);
        assert_eq!((b.limit_bytes, b.source), (host, "host memory"));
        std::fs::write(dir.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(detect_budget(dir.path(), None, host).source, "host memory", "\"max\" is no limit");
        std::fs::write(dir.path().join("memory.max"), "536870912\n").unwrap();
        let b = detect_budget(dir.path(), None, host);
        assert_eq!((b.limit_bytes, b.source), (512 << 20, "cgroup v2 memory.max"));
        let b = detect_budget(dir.path(), Some("256".into()), host);
        assert_eq!((b.limit_bytes, b.source), (256 << 20, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"));
    }

    #[test]
    fn pressure_levels() {
        assert_eq!(classify(10, 100), Pressure::Ok);
        assert_eq!(classify(85, 100), Pressure::Elevated);
        assert_eq!(classify(95, 100), Pressure::Critical);
        assert!(process_rss() > 1 << 20, "a running test has more than 1 MB resident");
    }
}
