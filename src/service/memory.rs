//! The memory guard: knows the budget the process really has (the container's limit — cgroup v2
//! `memory.max`, v1 `memory.limit_in_bytes`, or Lambda's configured size — not the host's RAM),
//! watches the process's RSS, and moves through four levels at fractions of that budget
//! (defaults 0.70 / 0.80 / 0.90, as the service this one replaces used):
//!
//! - **standard**: the embedding cache shrinks to half and the kept scratch buffers are freed;
//! - **aggressive**: the cache is dropped, glibc's `malloc_trim(0)` returns freed pages, and
//!   requests run one at a time in smaller chunks (the API reads [`MemoryGuard::level`]);
//! - **emergency**: new work (every POST: embedding, search, scoring) gets 503 + Retry-After;
//!   health and status keep answering, "degraded".
//!
//! The cleanup of a level runs once, when the level is entered from below; each change of level
//! is logged once with the RSS before and after and what the cleanup freed, and the last ones are
//! kept for `/memory-status`. The same [`MemoryGuard::check`] runs before every request and, on a
//! server, from a background task between requests. The RSS reading is injectable
//! ([`MemoryGuard::with_rss_reader`]) so that every level and transition is tested exactly.
//!
//! What can be freed is behind [`Reclaim`], implemented here for [`Embedder`]; the guard knows
//! nothing of the engine.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use clap::Args;
use serde::Serialize;

use crate::Embedder;

/// Cleanups kept for `/memory-status`.
const KEPT_TRANSITIONS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Normal,
    Standard,
    Aggressive,
    Emergency,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Standard => "standard",
            Level::Aggressive => "aggressive",
            Level::Emergency => "emergency",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Fractions of the budget at which each level starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Thresholds {
    pub standard: f64,
    pub aggressive: f64,
    pub emergency: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { standard: 0.70, aggressive: 0.80, emergency: 0.90 }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("memory thresholds must rise strictly within (0, 1]: got standard {standard}, aggressive {aggressive}, emergency {emergency}")]
pub struct ThresholdError {
    pub standard: f64,
    pub aggressive: f64,
    pub emergency: f64,
}

impl Thresholds {
    pub fn validate(self) -> Result<Thresholds, ThresholdError> {
        let Thresholds { standard, aggressive, emergency } = self;
        if 0.0 < standard && standard < aggressive && aggressive < emergency && emergency <= 1.0 {
            Ok(self)
        } else {
            Err(ThresholdError { standard, aggressive, emergency })
        }
    }

    pub fn classify(&self, rss: u64, limit: u64) -> Level {
        let f = rss as f64 / limit.max(1) as f64;
        if f >= self.emergency {
            Level::Emergency
        } else if f >= self.aggressive {
            Level::Aggressive
        } else if f >= self.standard {
            Level::Standard
        } else {
            Level::Normal
        }
    }
}

/// The guard's flags (shared by `serve` and `memory`).
#[derive(Debug, Clone, Args)]
pub struct MemoryArgs {
    /// Memory budget in MB (default: the container's limit — cgroup memory.max or Lambda's size).
    #[arg(long, env = "SNAPEMBED_MEMORY_LIMIT_MB")]
    pub memory_limit_mb: Option<u64>,
    /// Share of the budget at which the standard cleanup runs (cache to half, scratch freed).
    #[arg(long, env = "SNAPEMBED_MEMORY_STANDARD", default_value_t = 0.70)]
    pub memory_standard: f64,
    /// Share of the budget at which the aggressive cleanup runs (cache dropped, malloc_trim,
    /// one request at a time in small chunks).
    #[arg(long, env = "SNAPEMBED_MEMORY_AGGRESSIVE", default_value_t = 0.80)]
    pub memory_aggressive: f64,
    /// Share of the budget at which new work is refused with 503 (health says "degraded").
    #[arg(long, env = "SNAPEMBED_MEMORY_EMERGENCY", default_value_t = 0.90)]
    pub memory_emergency: f64,
    /// Seconds between background checks on a server (0: off; always off on Lambda, where the
    /// process is frozen between requests and every request checks anyway).
    #[arg(long, env = "SNAPEMBED_MEMORY_CHECK_SECS", default_value_t = 60)]
    pub memory_check_secs: u64,
}

impl Default for MemoryArgs {
    fn default() -> Self {
        let t = Thresholds::default();
        MemoryArgs {
            memory_limit_mb: None,
            memory_standard: t.standard,
            memory_aggressive: t.aggressive,
            memory_emergency: t.emergency,
            memory_check_secs: 60,
        }
    }
}

impl MemoryArgs {
    pub fn thresholds(&self) -> Result<Thresholds, ThresholdError> {
        Thresholds { standard: self.memory_standard, aggressive: self.memory_aggressive, emergency: self.memory_emergency }
            .validate()
    }

    /// The guard these flags describe.
    pub fn guard(&self) -> Result<MemoryGuard, ThresholdError> {
        Ok(MemoryGuard::new(self.memory_limit_mb).with_thresholds(self.thresholds()?))
    }
}

/// What the guard can free.
pub trait Reclaim {
    /// Drops the least recently used half of the embedding cache; returns the entries dropped.
    fn shrink_cache_to_half(&self) -> usize;
    /// Drops the whole embedding cache; returns the entries dropped.
    fn clear_cache(&self) -> usize;
    /// Frees the scratch buffers kept between calls; returns their bytes.
    fn release_scratch(&self) -> usize;
}

/// Nothing to free (no model loaded; `snapembed memory` on its own process).
impl Reclaim for () {
    fn shrink_cache_to_half(&self) -> usize {
        0
    }
    fn clear_cache(&self) -> usize {
        0
    }
    fn release_scratch(&self) -> usize {
        0
    }
}

impl Reclaim for Embedder {
    fn shrink_cache_to_half(&self) -> usize {
        Embedder::shrink_cache_to_half(self)
    }
    fn clear_cache(&self) -> usize {
        Embedder::clear_cache(self)
    }
    fn release_scratch(&self) -> usize {
        Embedder::release_scratch(self)
    }
}

/// What one cleanup freed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Freed {
    pub cache_entries: usize,
    pub scratch_bytes: usize,
    /// Whether `malloc_trim(0)` ran and reported memory returned to the system.
    pub malloc_trim_ran: bool,
    pub malloc_trim_released: bool,
}

/// One change of level.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transition {
    pub at: String,
    pub from: Level,
    pub to: Level,
    pub rss_before_bytes: u64,
    /// After the cleanup (the same as before when the level went down: nothing runs then).
    pub rss_after_bytes: u64,
    pub limit_bytes: u64,
    /// `None` when the level went down.
    pub freed: Option<Freed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    pub limit_bytes: u64,
    /// Where the limit came from.
    pub source: &'static str,
}

/// What the service's bounded stores hold now, each beside its bound: where a server's memory
/// goes after start, and what the cleanups can free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Held {
    pub embed_cache_entries: usize,
    pub embed_cache_capacity: usize,
    /// Forward-pass buffers kept for the next call.
    pub pooled_scratch_bytes: usize,
    /// A kept buffer over this is freed when its call ends (`None`: every one is kept).
    pub pooled_scratch_limit_bytes: Option<usize>,
    /// Tally deliveries remembered for idempotency (a receipt each, a few hundred bytes with its
    /// key), and the most that are.
    pub tally_events: usize,
    pub tally_capacity: usize,
}

/// The allocator settings this process runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Allocator {
    /// glibc serves blocks of at least this many bytes with `mmap` and unmaps them when freed
    /// (`None`: its own dynamic threshold, as in a process that did not set one).
    pub mmap_threshold_bytes: Option<u64>,
    /// The most malloc arenas glibc may make (`None`: its default, 8 per core).
    pub arena_max: Option<u64>,
}

/// What `/memory-status` and `snapembed memory` report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemoryStatus {
    pub level: Level,
    pub limit_bytes: u64,
    pub limit_source: &'static str,
    pub host_total_bytes: u64,
    pub host_available_bytes: u64,
    /// The cgroup's own usage (page cache included), where there is a cgroup.
    pub cgroup_current_bytes: Option<u64>,
    pub process_rss_bytes: u64,
    pub snapshot_mapped_bytes: u64,
    pub rss_fraction_of_limit: f64,
    pub thresholds: Thresholds,
    pub checks: u64,
    /// The last changes of level, oldest first.
    pub last_cleanups: Vec<Transition>,
    /// The server's stores (`None` for `snapembed memory`, which has none).
    pub held: Option<Held>,
    pub allocator: Allocator,
}

/// Reads the process's resident set size in bytes.
pub type RssReader = Arc<dyn Fn() -> u64 + Send + Sync>;

struct GuardState {
    level: Level,
    checks: u64,
    transitions: VecDeque<Transition>,
}

pub struct MemoryGuard {
    budget: Budget,
    thresholds: Thresholds,
    rss: RssReader,
    state: Mutex<GuardState>,
}

impl MemoryGuard {
    /// Default thresholds. `override_mb` (a flag) wins; then the cgroup, then Lambda's size,
    /// then the host.
    pub fn new(override_mb: Option<u64>) -> MemoryGuard {
        let budget = match override_mb {
            Some(mb) => Budget { limit_bytes: mb.saturating_mul(1024 * 1024), source: "--memory-limit-mb" },
            None => detect_budget(
                Path::new("/sys/fs/cgroup"),
                std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok(),
                host_memory().0,
            ),
        };
        MemoryGuard {
            budget,
            thresholds: Thresholds::default(),
            rss: Arc::new(process_rss),
            state: Mutex::new(GuardState { level: Level::Normal, checks: 0, transitions: VecDeque::new() }),
        }
    }

    /// Thresholds already validated (see [`Thresholds::validate`]).
    pub fn with_thresholds(mut self, thresholds: Thresholds) -> MemoryGuard {
        self.thresholds = thresholds;
        self
    }

    /// Reads RSS with `read` instead of /proc/self/statm (tests place it between thresholds).
    pub fn with_rss_reader(mut self, read: impl Fn() -> u64 + Send + Sync + 'static) -> MemoryGuard {
        self.rss = Arc::new(read);
        self
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// The level of the last check (no new reading).
    pub fn level(&self) -> Level {
        self.lock().level
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GuardState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads RSS, moves to the level it falls in, and on the way up runs that level's cleanup.
    /// The level is the one measured before the cleanup: the next check sees what it freed.
    /// Holding the lock through the cleanup makes concurrent checks wait rather than clean twice.
    pub fn check(&self, reclaim: &dyn Reclaim) -> Level {
        let mut state = self.lock();
        state.checks += 1;
        let before = (self.rss)();
        let to = self.thresholds.classify(before, self.budget.limit_bytes);
        let from = state.level;
        if to == from {
            return to;
        }
        let freed = (to > from).then(|| cleanup(to, reclaim));
        let after = if freed.is_some() { (self.rss)() } else { before };
        let mb = |b: u64| b as f64 / 1048576.0;
        let f = freed.unwrap_or_default();
        let log = |msg| {
            if to > from {
                tracing::warn!(
                    %from, %to, rss_before_mb = mb(before), rss_after_mb = mb(after), limit_mb = mb(self.budget.limit_bytes),
                    cache_entries_freed = f.cache_entries, scratch_bytes_freed = f.scratch_bytes,
                    malloc_trim = f.malloc_trim_ran, "{msg}"
                );
            } else {
                tracing::info!(%from, %to, rss_mb = mb(before), limit_mb = mb(self.budget.limit_bytes), "{msg}");
            }
        };
        log("memory level changed");
        state.level = to;
        if state.transitions.len() == KEPT_TRANSITIONS {
            state.transitions.pop_front();
        }
        state.transitions.push_back(Transition {
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            from,
            to,
            rss_before_bytes: before,
            rss_after_bytes: after,
            limit_bytes: self.budget.limit_bytes,
            freed,
        });
        to
    }

    /// The report of `/memory-status`: checks first (running any cleanup due), then reads.
    pub fn status(&self, snapshot_mapped_bytes: u64, reclaim: &dyn Reclaim) -> MemoryStatus {
        let level = self.check(reclaim);
        let rss = (self.rss)();
        let (host_total, host_available) = host_memory();
        let state = self.lock();
        MemoryStatus {
            level,
            limit_bytes: self.budget.limit_bytes,
            limit_source: self.budget.source,
            host_total_bytes: host_total,
            host_available_bytes: host_available,
            cgroup_current_bytes: read_u64(Path::new("/sys/fs/cgroup/memory.current")),
            process_rss_bytes: rss,
            snapshot_mapped_bytes,
            rss_fraction_of_limit: rss as f64 / self.budget.limit_bytes.max(1) as f64,
            thresholds: self.thresholds,
            checks: state.checks,
            last_cleanups: state.transitions.iter().cloned().collect(),
            held: None,
            allocator: allocator(),
        }
    }
}

/// The cleanup of entering `level`: each level's includes what the ones below it free.
fn cleanup(level: Level, reclaim: &dyn Reclaim) -> Freed {
    let mut freed = Freed::default();
    if level >= Level::Standard {
        freed.scratch_bytes = reclaim.release_scratch();
        freed.cache_entries = if level == Level::Standard { reclaim.shrink_cache_to_half() } else { reclaim.clear_cache() };
    }
    if level >= Level::Aggressive {
        freed.malloc_trim_ran = true;
        freed.malloc_trim_released = malloc_trim();
    }
    freed
}

/// glibc keeps freed memory in its arenas; `malloc_trim(0)` hands the free pages back to the
/// kernel, which is what lowers RSS after the cache and buffers are dropped. Returns whether it
/// released anything; a no-op on other C libraries.
fn malloc_trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes a plain size, touches only the allocator's own state under
        // its locks, and is documented as safe to call at any time from any thread.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// The mmap threshold `serve` gives glibc: 1 MiB.
pub const MMAP_THRESHOLD_BYTES: u64 = 1 << 20;

/// What this process set, 0 while it set nothing (glibc has no call that reads them back).
static MMAP_THRESHOLD_SET: AtomicU64 = AtomicU64::new(0);
static ARENA_MAX_SET: AtomicU64 = AtomicU64::new(0);

fn allocator() -> Allocator {
    let set = |v: &AtomicU64| Some(v.load(Ordering::Relaxed)).filter(|&n| n > 0);
    Allocator { mmap_threshold_bytes: set(&MMAP_THRESHOLD_SET), arena_max: set(&ARENA_MAX_SET) }
}

/// Sets glibc up for a long-running server, and returns what it took (nothing on other C
/// libraries); `/memory-status` reports it.
///
/// - Allocations of 1 MiB and more come straight from the kernel (`mmap`) and go back when
///   freed. By default the threshold follows the largest block freed so far (up to 32 MiB),
///   after which a big request's buffers land in the heap and their pages stay with the process.
/// - At most `arenas` malloc arenas (the CPUs the server computes on). By default glibc gives a
///   thread that finds an arena busy a new one, up to 8 per core, and each keeps its own free
///   memory: under bench/soak.sh RSS crept up +6.7 % between seconds 10 and 60 with glibc's
///   default, +1.9 % with 2 arenas and +2.6 % with 1 (one run each, 2026-12-01, 2 CPUs), at the
///   same request rate within the run-to-run noise.
pub fn tune_allocator_for_a_server(arenas: usize) -> Allocator {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = arenas.clamp(1, 64);
        // SAFETY: mallopt only sets an allocator parameter under its own lock; valid at any time.
        if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as libc::c_int) } == 1 {
            MMAP_THRESHOLD_SET.store(MMAP_THRESHOLD_BYTES, Ordering::Relaxed);
        }
        // SAFETY: as above; `arenas` is clamped to a small positive int.
        if unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int) } == 1 {
            ARENA_MAX_SET.store(arenas as u64, Ordering::Relaxed);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
    allocator()
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

/// Human-readable `MemoryStatus`, for `snapembed memory`.
pub fn render_status(s: &MemoryStatus) -> String {
    use std::fmt::Write;
    let mb = |b: u64| b as f64 / 1048576.0;
    let t = s.thresholds;
    let mut out = String::new();
    let _ = writeln!(out, "level:      {}", s.level);
    let _ = writeln!(
        out,
        "rss:        {:.1} MB of {:.1} MB ({:.1}%, budget from {})",
        mb(s.process_rss_bytes),
        mb(s.limit_bytes),
        s.rss_fraction_of_limit * 100.0,
        s.limit_source
    );
    let _ = writeln!(
        out,
        "thresholds: standard {:.0}%, aggressive {:.0}%, emergency {:.0}%",
        t.standard * 100.0,
        t.aggressive * 100.0,
        t.emergency * 100.0
    );
    let _ = writeln!(out, "host:       {:.0} MB total, {:.0} MB available", mb(s.host_total_bytes), mb(s.host_available_bytes));
    if let Some(c) = s.cgroup_current_bytes {
        let _ = writeln!(out, "cgroup:     {:.1} MB in use", mb(c));
    }
    if s.snapshot_mapped_bytes > 0 {
        let _ = writeln!(out, "snapshot:   {:.1} MB mapped", mb(s.snapshot_mapped_bytes));
    }
    if let Some(h) = s.held {
        let _ = writeln!(out, "cache:      {} of {} embeddings", h.embed_cache_entries, h.embed_cache_capacity);
        let limit = h.pooled_scratch_limit_bytes.map_or("none".to_owned(), |b| format!("{:.1} MB each", mb(b as u64)));
        let _ = writeln!(out, "scratch:    {:.1} MB kept (limit {limit})", mb(h.pooled_scratch_bytes as u64));
        let _ = writeln!(
            out,
            "tally:      {} of {} events remembered",
            h.tally_events,
            h.tally_capacity
        );
    }
    let mapped = match s.allocator.mmap_threshold_bytes {
        Some(b) => format!("blocks of {:.1} MB and more mapped and unmapped", mb(b)),
        None => "glibc's own mmap threshold".to_owned(),
    };
    let arenas = s.allocator.arena_max.map_or("glibc's default arenas".to_owned(), |n| format!("at most {n} arenas"));
    let _ = writeln!(out, "allocator:  {mapped}; {arenas}");
    if s.last_cleanups.is_empty() {
        let _ = writeln!(out, "cleanups:   none");
    }
    for c in &s.last_cleanups {
        let _ = write!(out, "cleanup:    {} {} -> {}, rss {:.1} -> {:.1} MB", c.at, c.from, c.to, mb(c.rss_before_bytes), mb(c.rss_after_bytes));
        if let Some(f) = c.freed {
            let _ = write!(out, ", freed {} cache entries, {} scratch bytes, malloc_trim {}", f.cache_entries, f.scratch_bytes, f.malloc_trim_ran);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
    fn levels_start_at_their_thresholds() {
        let t = Thresholds::default();
        assert_eq!(t.classify(0, 100), Level::Normal);
        assert_eq!(t.classify(69, 100), Level::Normal);
        assert_eq!(t.classify(70, 100), Level::Standard);
        assert_eq!(t.classify(80, 100), Level::Aggressive);
        assert_eq!(t.classify(89, 100), Level::Aggressive);
        assert_eq!(t.classify(90, 100), Level::Emergency);
        assert_eq!(t.classify(200, 100), Level::Emergency);
        assert!(process_rss() > 1 << 20, "a running test has more than 1 MB resident");
    }

    #[test]
    fn thresholds_must_rise_within_the_budget() {
        assert!(Thresholds::default().validate().is_ok());
        for (s, a, e) in [(0.8, 0.7, 0.9), (0.7, 0.8, 0.8), (0.0, 0.5, 0.9), (0.7, 0.8, 1.1), (f64::NAN, 0.8, 0.9)] {
            let err = Thresholds { standard: s, aggressive: a, emergency: e }.validate().unwrap_err();
            assert!(err.to_string().contains("rise strictly"), "{err}");
        }
    }

    /// Counts what the guard asked to free; "frees" by lowering the fake RSS.
    #[derive(Default)]
    struct Counting {
        halves: AtomicUsize,
        clears: AtomicUsize,
        scratch: AtomicUsize,
    }

    impl Reclaim for Counting {
        fn shrink_cache_to_half(&self) -> usize {
            self.halves.fetch_add(1, Ordering::SeqCst);
            500
        }
        fn clear_cache(&self) -> usize {
            self.clears.fetch_add(1, Ordering::SeqCst);
            1000
        }
        fn release_scratch(&self) -> usize {
            self.scratch.fetch_add(1, Ordering::SeqCst);
            4096
        }
    }

    impl Counting {
        fn calls(&self) -> (usize, usize, usize) {
            (self.halves.load(Ordering::SeqCst), self.clears.load(Ordering::SeqCst), self.scratch.load(Ordering::SeqCst))
        }
    }

    fn guard_at(rss: &Arc<AtomicU64>) -> MemoryGuard {
        let r = rss.clone();
        MemoryGuard::new(Some(100)).with_rss_reader(move || r.load(Ordering::SeqCst))
    }

    const MB: u64 = 1024 * 1024;

    #[test]
    fn every_level_and_transition_runs_its_cleanup_once() {
        let rss = Arc::new(AtomicU64::new(10 * MB));
        let guard = guard_at(&rss);
        let r = Counting::default();
        assert_eq!(guard.check(&r), Level::Normal);
        assert_eq!(r.calls(), (0, 0, 0), "nothing to clean below the standard threshold");

        rss.store(75 * MB, Ordering::SeqCst);
        assert_eq!(guard.check(&r), Level::Standard);
        assert_eq!(r.calls(), (1, 0, 1), "standard: cache to half, scratch freed");
        assert_eq!(guard.check(&r), Level::Standard);
        assert_eq!(r.calls(), (1, 0, 1), "a level's cleanup runs once, when it is entered");

        rss.store(85 * MB, Ordering::SeqCst);
        assert_eq!(guard.check(&r), Level::Aggressive);
        assert_eq!(r.calls(), (1, 1, 2), "aggressive: cache dropped, scratch freed");

        rss.store(95 * MB, Ordering::SeqCst);
        assert_eq!(guard.check(&r), Level::Emergency);
        assert_eq!(r.calls(), (1, 2, 3));

        rss.store(50 * MB, Ordering::SeqCst);
        assert_eq!(guard.check(&r), Level::Normal);
        assert_eq!(r.calls(), (1, 2, 3), "going down frees nothing");

        // Straight from normal to emergency: the emergency cleanup (which includes the others).
        rss.store(99 * MB, Ordering::SeqCst);
        assert_eq!(guard.check(&r), Level::Emergency);
        assert_eq!(r.calls(), (1, 3, 4));

        let status = guard.status(0, &r);
        assert_eq!(status.level, Level::Emergency);
        assert_eq!(status.process_rss_bytes, 99 * MB);
        let steps: Vec<(Level, Level)> = status.last_cleanups.iter().map(|t| (t.from, t.to)).collect();
        use Level::*;
        assert_eq!(
            steps,
            [(Normal, Standard), (Standard, Aggressive), (Aggressive, Emergency), (Emergency, Normal), (Normal, Emergency)],
            "each transition recorded once"
        );
        let first = &status.last_cleanups[0];
        assert_eq!((first.rss_before_bytes, first.limit_bytes), (75 * MB, 100 * MB));
        assert_eq!(first.freed, Some(Freed { cache_entries: 500, scratch_bytes: 4096, malloc_trim_ran: false, malloc_trim_released: false }));
        let aggressive = status.last_cleanups[1].freed.unwrap();
        assert_eq!(aggressive.cache_entries, 1000);
        assert!(aggressive.malloc_trim_ran);
        assert_eq!(status.last_cleanups[3].freed, None);
        assert_eq!(status.checks, 8);
    }

    #[test]
    fn rss_after_the_cleanup_is_read_after_it() {
        // A reclaim that lowers the fake RSS, as dropping a real cache would.
        struct Lowers(Arc<AtomicU64>);
        impl Reclaim for Lowers {
            fn shrink_cache_to_half(&self) -> usize {
                self.0.store(60 * MB, Ordering::SeqCst);
                7
            }
            fn clear_cache(&self) -> usize {
                0
            }
            fn release_scratch(&self) -> usize {
                0
            }
        }
        let rss = Arc::new(AtomicU64::new(72 * MB));
        let guard = guard_at(&rss);
        assert_eq!(guard.check(&Lowers(rss.clone())), Level::Standard, "the level measured before the cleanup");
        let t = guard.status(0, &()).last_cleanups;
        assert_eq!((t[0].rss_before_bytes, t[0].rss_after_bytes), (72 * MB, 60 * MB));
        assert_eq!(guard.level(), Level::Normal, "the next check sees what the cleanup freed");
    }

    #[test]
    fn only_the_last_cleanups_are_kept() {
        let rss = Arc::new(AtomicU64::new(0));
        let guard = guard_at(&rss);
        for i in 0..40 {
            rss.store(if i % 2 == 0 { 95 * MB } else { 0 }, Ordering::SeqCst);
            guard.check(&());
        }
        let t = guard.status(0, &()).last_cleanups;
        assert_eq!(t.len(), KEPT_TRANSITIONS);
        assert_eq!((t[KEPT_TRANSITIONS - 1].from, t[KEPT_TRANSITIONS - 1].to), (Level::Emergency, Level::Normal));
    }

    #[test]
    fn the_report_reads_as_text() {
        let rss = Arc::new(AtomicU64::new(85 * MB));
        let guard = guard_at(&rss);
        let text = render_status(&guard.status(1 << 20, &()));
        assert!(text.contains("level:      aggressive"), "{text}");
        assert!(text.contains("85.0 MB of 100.0 MB (85.0%, budget from --memory-limit-mb)"), "{text}");
        assert!(text.contains("normal -> aggressive"), "{text}");
    }
}
