//! The instance's memory of deliveries: eventId → the receipt its delivery left, for the last
//! few thousand events, so a redelivery is answered the same and is not forwarded twice.
//!
//! What is kept is the caller's receipt (the webhook keeps a digest of the payload and how the
//! forward went: 80 bytes, a few hundred with the key and the LRU's bookkeeping), not the
//! response, which is rebuilt when a redelivery comes. So the memory is bounded by the count of
//! events alone, whatever their size. Keeping whole responses (up to 16 MiB of them) made a
//! busy server's RSS climb for as long as they accumulated: +25 to +36 % between seconds 10 and
//! 60 of bench/soak.sh, a few percent without them. Only completed deliveries are kept: one
//! whose forward failed is run again when Tally redelivers it, which is the point of
//! redelivering.
//!
//! Two deliveries of one event at once (Tally retrying while the first is still running) share
//! one slot: the second waits for the first and takes its receipt, or runs itself if the first
//! failed. Nothing is remembered across instances or restarts; the `Idempotency-Key` sent with
//! every forward lets the receiver dedupe what this memory cannot.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use tokio::sync::OnceCell;

type Slot<R> = Arc<OnceCell<R>>;

pub struct Record<R> {
    slots: Mutex<LruCache<String, Slot<R>>>,
}

/// How a delivery was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded<R, T, E> {
    /// Run now, its receipt remembered: what the run made.
    Fresh(T),
    /// Run before: the receipt it left.
    Replayed(R),
    /// Run now, failed, not remembered.
    Failed(E),
}

impl<R: Clone> Record<R> {
    pub fn new(capacity: NonZeroUsize) -> Record<R> {
        Record { slots: Mutex::new(LruCache::new(capacity)) }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<String, Slot<R>>> {
        // A panic while holding the lock leaves the map consistent (no await inside): go on.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Events remembered, and the most that are.
    pub fn usage(&self) -> (usize, usize) {
        let slots = self.lock();
        (slots.iter().filter(|(_, s)| s.initialized()).count(), slots.cap().get())
    }

    /// Answers `id` with the receipt of its earlier run, or runs `run` and remembers the receipt
    /// of its `Ok`.
    pub async fn run<F, Fut, T, E>(&self, id: &str, run: F) -> Recorded<R, T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(R, T), E>>,
    {
        let slot = {
            let mut slots = self.lock();
            match slots.get(id) {
                Some(s) => s.clone(),
                None => {
                    let s = Slot::default();
                    slots.push(id.to_owned(), s.clone());
                    s
                }
            }
        };
        let mut fresh = None;
        let made = &mut fresh;
        let got = slot
            .get_or_try_init(move || async move {
                let (receipt, out) = run().await?;
                *made = Some(out);
                Ok(receipt)
            })
            .await;
        match (got, fresh) {
            (Ok(_), Some(out)) => Recorded::Fresh(out),
            (Ok(receipt), None) => Recorded::Replayed(receipt.clone()),
            (Err(e), _) => Recorded::Failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn record(capacity: usize) -> Record<&'static str> {
        Record::new(NonZeroUsize::new(capacity).unwrap())
    }

    #[tokio::test]
    async fn a_success_is_replayed_and_a_failure_runs_again() {
        let r = record(8);
        let runs = AtomicUsize::new(0);
        let ok = || async { runs.fetch_add(1, Ordering::SeqCst); Ok::<_, ()>(("receipt", b"one".to_vec())) };
        assert_eq!(r.run("e1", ok).await, Recorded::Fresh(b"one".to_vec()));
        assert_eq!(r.run("e1", ok).await, Recorded::Replayed("receipt"));
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        let fail = || async { runs.fetch_add(1, Ordering::SeqCst); Err::<(&str, Vec<u8>), _>("down") };
        assert_eq!(r.run("e2", fail).await, Recorded::Failed("down"));
        assert_eq!(r.run("e2", fail).await, Recorded::Failed("down"));
        assert_eq!(runs.load(Ordering::SeqCst), 3, "a failed delivery is not remembered");
        assert_eq!(r.usage(), (1, 8));
    }

    #[tokio::test]
    async fn bounded_by_count() {
        let r = record(3);
        for id in ["a", "b", "c", "d"] {
            r.run(id, || async { Ok::<_, ()>((id, ())) }).await;
        }
        assert_eq!(r.usage(), (3, 3), "the oldest event is forgotten past the count");
        let again = r.run("a", || async { Ok::<_, ()>(("new", ())) }).await;
        assert_eq!(again, Recorded::Fresh(()), "a forgotten event runs again");
        assert_eq!(r.run("d", || async { Ok::<_, ()>(("other", ())) }).await, Recorded::Replayed("d"));
    }

    #[tokio::test]
    async fn concurrent_deliveries_of_one_event_run_once() {
        let r = Arc::new(record(8));
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let (r, runs) = (r.clone(), runs.clone());
            tokio::spawn(async move {
                r.run("e", || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    rx.await.ok();
                    Ok::<_, ()>(("first", b"done".to_vec()))
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        let second = {
            let (r, runs) = (r.clone(), runs.clone());
            tokio::spawn(async move {
                r.run("e", || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ()>(("second", b"other".to_vec()))
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        tx.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Recorded::Fresh(b"done".to_vec()));
        assert_eq!(second.await.unwrap(), Recorded::Replayed("first"), "the second waited for the first's receipt");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
