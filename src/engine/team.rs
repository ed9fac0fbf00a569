//! The helper threads that let one forward pass use several cores. `run_each` hands each item
//! of a slice to a participant (the caller takes the first and any no helper is free for) and
//! returns when all are done. Hand-offs must cost microseconds, since a forward pass makes a
//! dozen of them: an idle helper spins for a while on its own slot (a hand-off is then one
//! cache-line transfer, ~0.5 µs), then parks, so an idle process burns no CPU (an unpark costs
//! a few µs more). `std::thread::scope` (~24 µs per spawn) and rayon called from outside its
//! pool (10–45 µs) cost too much per hand-off (issue 12's measurements).
//!
//! Helpers are spawned on first need, shared by the whole process, and taken only when free:
//! concurrent callers never wait for each other's parts, they run them themselves. Results
//! cannot depend on who runs an item, so the bits are the same whatever the helpers' state.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long an idle helper spins before it parks: longer than the gaps between the hand-offs
/// of one forward pass, short enough that a process between requests soon sleeps.
const SPIN: Duration = Duration::from_micros(200);
/// No more helpers than this, whatever callers ask for.
const MAX_HELPERS: usize = 63;

/// Runs `f` on every item, each on one thread, and returns when all are done. A panic in any
/// item is re-raised here once every item has finished.
pub fn run_each<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
    run_on(Team::get(), items, f)
}

fn run_on<T: Send>(team: &Team, items: &mut [T], f: impl Fn(&mut T) + Sync) {
    if items.len() <= 1 {
        items.iter_mut().for_each(f);
        return;
    }
    let base = ItemsPtr(items.as_mut_ptr());
    let task = move |i: usize| {
        let base = &base;
        // SAFETY: every index below `items.len()` is handed out exactly once (to a helper or
        // to the local list below), so the `&mut` items are disjoint, and `items` outlives the
        // call: `Latch::wait` runs, even on unwinding, before this function returns.
        f(unsafe { &mut *base.0.add(i) })
    };
    let latch = Latch::default();
    let mut local = vec![0];
    {
        let waiter = WaitOnDrop(&latch);
        for i in 1..items.len() {
            match team.claim() {
                Some(helper) => {
                    latch.pending.fetch_add(1, Ordering::AcqRel);
                    helper.give(Job::new(&task, i, &latch));
                }
                None => local.push(i),
            }
        }
        for i in local {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| task(i))) {
                latch.keep(payload);
            }
        }
        drop(waiter);
    }
    let panic = latch.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

struct ItemsPtr<T>(*mut T);
// SAFETY: the pointer is only dereferenced at distinct indices, one thread each (`run_each`),
// and `T: Send` lets each item move to that thread for the call.
unsafe impl<T: Send> Sync for ItemsPtr<T> {}

/// Counts the items handed to helpers that have not finished; keeps the first helper panic.
#[derive(Default)]
struct Latch {
    pending: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Latch {
    fn keep(&self, payload: Box<dyn Any + Send>) {
        self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
    }

    fn wait(&self) {
        let start = Instant::now();
        while self.pending.load(Ordering::Acquire) != 0 {
            if start.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                // A helper was descheduled: let it have this CPU.
                std::thread::yield_now();
            }
        }
    }
}

/// Waits for the helpers however the caller's scope is left, panics included: they hold
/// pointers into its stack.
struct WaitOnDrop<'a>(&'a Latch);

impl Drop for WaitOnDrop<'_> {
    fn drop(&mut self) {
        self.0.wait();
    }
}

/// One item for a helper: the caller's closure with its lifetime erased, the item's index, and
/// the latch to count down. Valid until the latch reaches zero, which the caller waits for.
struct Job {
    task: *const (dyn Fn(usize) + Sync + 'static),
    index: usize,
    latch: *const Latch,
}

// SAFETY: the closure is `Sync` and the latch is shared by design; both outlive the job
// (`run_each` waits for the latch before returning).
unsafe impl Send for Job {}

impl Job {
    fn new<'a>(task: &'a (dyn Fn(usize) + Sync + 'a), index: usize, latch: &'a Latch) -> Job {
        // SAFETY: only the lifetime changes; see `Job`.
        let task = unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + 'a), *const (dyn Fn(usize) + Sync + 'static)>(task)
        };
        Job { task, index, latch }
    }

    /// Runs the item, then `done` (the helper frees itself), then counts the latch down.
    fn run(self, done: impl FnOnce()) {
        // SAFETY: the caller of `run_each` keeps both alive until the latch reaches zero,
        // which happens only below, after the last use of `task`.
        let (task, latch) = unsafe { (&*self.task, &*self.latch) };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| task(self.index))) {
            latch.keep(payload);
        }
        done();
        latch.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A helper's state, the only word the caller and the helper both write.
const IDLE: u8 = 0;
const PARKED: u8 = 1;
/// Taken by a caller, job not yet written.
const CLAIMED: u8 = 2;
const READY: u8 = 3;

struct Helper {
    state: AtomicU8,
    job: Mutex<Option<Job>>,
    thread: OnceLock<Thread>,
}

impl Helper {
    fn give(&self, job: Job) {
        *self.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
        self.state.store(READY, Ordering::Release);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    fn serve(&self) {
        let mut idle_since = Instant::now();
        loop {
            match self.state.load(Ordering::Acquire) {
                READY => {
                    let job = self.job.lock().unwrap_or_else(|e| e.into_inner()).take();
                    // Claimable again once its item is done, not before (a claim of a busy
                    // helper would queue an item behind another caller's, or behind this
                    // caller's own previous one), and before the latch counts down, so the
                    // caller's next claim finds it free.
                    let free = || self.state.store(IDLE, Ordering::Release);
                    match job {
                        Some(job) => job.run(free),
                        None => free(),
                    }
                    idle_since = Instant::now();
                }
                IDLE if idle_since.elapsed() >= SPIN => {
                    if self.state.compare_exchange(IDLE, PARKED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                        while self.state.load(Ordering::Acquire) == PARKED {
                            std::thread::park();
                        }
                    }
                }
                _ => std::hint::spin_loop(),
            }
        }
    }
}

struct Team {
    helpers: Mutex<Vec<Arc<Helper>>>,
    /// No more helpers than this (`MAX_HELPERS` for the process's team).
    cap: usize,
}

impl Team {
    fn get() -> &'static Team {
        static TEAM: OnceLock<Team> = OnceLock::new();
        TEAM.get_or_init(|| Team { helpers: Mutex::new(Vec::new()), cap: MAX_HELPERS })
    }

    /// A free helper, spawning one if none is free; `None` if none can be had.
    fn claim(&self) -> Option<Arc<Helper>> {
        let mut helpers = self.helpers.lock().unwrap_or_else(|e| e.into_inner());
        for h in helpers.iter() {
            for from in [IDLE, PARKED] {
                if h.state.compare_exchange(from, CLAIMED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    return Some(h.clone());
                }
            }
        }
        if helpers.len() >= self.cap {
            return None;
        }
        let h = Arc::new(Helper { state: AtomicU8::new(CLAIMED), job: Mutex::new(None), thread: OnceLock::new() });
        let served = h.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("snapembed-helper-{}", helpers.len() + 1))
            .spawn(move || served.serve())
            .ok()?;
        // Set before the job is given, so `give` can always unpark it.
        let _ = h.thread.set(spawned.thread().clone());
        helpers.push(h.clone());
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_and_in_place() {
        for n in [0, 1, 2, 3, 9] {
            let mut items: Vec<(usize, u32)> = (0..n).map(|i| (i, 0)).collect();
            run_each(&mut items, |(i, runs)| {
                *runs += 1;
                *i *= 10;
            });
            assert_eq!(items, (0..n).map(|i| (i * 10, 1)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn helpers_are_reused_and_concurrent_callers_do_not_wait_for_each_other() {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for round in 0..200 {
                        let mut items = vec![0u64; 3];
                        run_each(&mut items, |v| *v = (t * 1000 + round) as u64);
                        assert!(items.iter().all(|&v| v == (t * 1000 + round) as u64));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // 800 calls wanting 2 helpers each: without reuse the team would be at its cap.
        let helpers = Team::get().helpers.lock().unwrap().len();
        assert!(helpers < MAX_HELPERS, "{helpers} helpers: not reused");
    }

    #[test]
    fn a_panic_in_a_helper_reaches_the_caller_after_all_items_finish() {
        let mut items: Vec<usize> = (0..4).collect();
        let finished = AtomicUsize::new(0);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            run_each(&mut items, |i| {
                if *i == 2 {
                    panic!("item 2");
                }
                std::thread::sleep(Duration::from_millis(5));
                finished.fetch_add(1, Ordering::SeqCst);
            })
        }));
        assert!(caught.is_err());
        assert_eq!(finished.load(Ordering::SeqCst), 3, "the other items ran to the end");
        // The team still works afterwards.
        let mut after = vec![1, 2, 3];
        run_each(&mut after, |v| *v += 1);
        assert_eq!(after, [2, 3, 4]);
    }

    #[test]
    fn busy_helpers_are_not_claimed_and_past_the_cap_the_caller_runs_the_rest() {
        // A team of its own with room for two helpers. Each item holds its helper for 100 ms,
        // far longer than handing all of them out: items 1 and 2 go to the two helpers, and
        // `claim` finds none for 3 to 5 (as when a spawn fails), which the caller then runs
        // after item 0, instead of queueing them behind a busy helper's item.
        let team = Team { helpers: Mutex::default(), cap: 2 };
        let me = std::thread::current().id();
        let mut items: Vec<Option<std::thread::ThreadId>> = vec![None; 6];
        run_on(&team, &mut items, |who| {
            std::thread::sleep(Duration::from_millis(100));
            *who = Some(std::thread::current().id());
        });
        assert!(items.iter().all(Option::is_some), "every item ran");
        let here: Vec<usize> = (0..items.len()).filter(|&i| items[i] == Some(me)).collect();
        assert_eq!(here, [0, 3, 4, 5], "items run on the caller");
        assert_ne!(items[1], items[2], "two helpers, one item each");
        assert_eq!(team.helpers.lock().unwrap().len(), 2);
    }

    #[test]
    fn idle_helpers_park() {
        let mut items = vec![0; 2];
        run_each(&mut items, |v| *v = 1);
        // Other tests may be handing out items at any moment; one helper soon parks.
        let deadline = Instant::now() + Duration::from_secs(5);
        let parked = || Team::get().helpers.lock().unwrap().iter().any(|h| h.state.load(Ordering::Acquire) == PARKED);
        while !parked() {
            assert!(Instant::now() < deadline, "no helper parked within 5 s");
            std::thread::sleep(SPIN);
        }
    }
}
