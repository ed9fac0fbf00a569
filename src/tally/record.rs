//! The instance's memory of deliveries: eventId → the response it got, for the last few
//! thousand events, so a redelivery gets the same answer and is not forwarded twice.
//!
//! Bounded twice: by count (an LRU of `capacity` events) and by the bytes of the responses kept
//! (a long submission's response can be as large as the request, so a count alone would not
//! bound memory). Only completed deliveries are kept: one whose forward failed is run again when
//! Tally redelivers it, which is the point of redelivering.
//!
//! Two deliveries of one event at once (Tally retrying while the first is still running) share
//! one slot: the second waits for the first and answers with its result, or runs itself if the
//! first failed. Nothing is remembered across instances or restarts; the `Idempotency-Key` sent
//! with every forward lets the receiver dedupe what this memory cannot.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use tokio::sync::OnceCell;

/// Response bytes kept at most, over all events: 16 MiB, a few percent of a 512 MB instance.
pub const MAX_BYTES: usize = 16 << 20;

type Slot = Arc<OnceCell<Arc<[u8]>>>;

pub struct Record {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

struct Inner {
    slots: LruCache<String, Slot>,
    bytes: usize,
}

/// How a delivery was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded<E> {
    /// Run now, and remembered.
    Fresh(Arc<[u8]>),
    /// Answered from memory: the same bytes as the first time.
    Replayed(Arc<[u8]>),
    /// Run now, failed, not remembered.
    Failed(E),
}

impl Record {
    pub fn new(capacity: NonZeroUsize, max_bytes: usize) -> Record {
        Record { inner: Mutex::new(Inner { slots: LruCache::new(capacity), bytes: 0 }), max_bytes }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map consistent (no await inside): go on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bytes of responses kept at most.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Events remembered, and the bytes their responses take.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.slots.iter().filter(|(_, s)| s.initialized()).count(), inner.bytes)
    }

    /// Answers `id` from memory, or runs `run` and remembers its `Ok`.
    pub async fn run<F, Fut, E>(&self, id: &str, run: F) -> Recorded<E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, E>>,
    {
        let slot = {
            let mut inner = self.lock();
            match inner.slots.get(id) {
                Some(s) => s.clone(),
                None => {
                    let s = Slot::default();
                    if let Some((_, evicted)) = inner.slots.push(id.to_owned(), s.clone()) {
                        inner.bytes -= size(&evicted);
                    }
                    s
                }
            }
        };
        let ran = AtomicBool::new(false);
        let got = slot
            .get_or_try_init(|| async {
                ran.store(true, Ordering::Relaxed);
                run().await.map(Arc::<[u8]>::from)
            })
            .await;
        match got {
            Ok(bytes) if ran.load(Ordering::Relaxed) => {
                self.account(id, &slot);
                Recorded::Fresh(bytes.clone())
            }
            Ok(bytes) => Recorded::Replayed(bytes.clone()),
            Err(e) => Recorded::Failed(e),
        }
    }

    /// Counts a newly filled slot, if it is still the one remembered for `id`, then evicts the
    /// least recent events until the bytes fit (always keeping the newest).
    fn account(&self, id: &str, slot: &Slot) {
        let mut inner = self.lock();
        if !inner.slots.peek(id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            return;
        }
        inner.bytes += size(slot);
        while inner.bytes > self.max_bytes && inner.slots.len() > 1 {
            match inner.slots.pop_lru() {
                Some((_, evicted)) => inner.bytes -= size(&evicted),
                None => break,
            }
        }
    }
}

fn size(slot: &Slot) -> usize {
    slot.get().map_or(0, |b| b.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn record(capacity: usize, max_bytes: usize) -> Record {
        Record::new(NonZeroUsize::new(capacity).unwrap(), max_bytes)
    }

    #[tokio::test]
    async fn a_success_is_replayed_and_a_failure_runs_again() {
        let r = record(8, 1 << 20);
        let runs = AtomicUsize::new(0);
        let ok = || async { runs.fetch_add(1, Ordering::SeqCst); Ok::<_, ()>(b"one".to_vec()) };
        assert_eq!(r.run("e1", ok).await, Recorded::Fresh(Arc::from(&b"one"[..])));
        assert_eq!(r.run("e1", ok).await, Recorded::Replayed(Arc::from(&b"one"[..])));
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        let fail = || async { runs.fetch_add(1, Ordering::SeqCst); Err::<Vec<u8>, _>("down") };
        assert_eq!(r.run("e2", fail).await, Recorded::Failed("down"));
        assert_eq!(r.run("e2", fail).await, Recorded::Failed("down"));
        assert_eq!(runs.load(Ordering::SeqCst), 3, "a failed delivery is not remembered");
        assert_eq!(r.usage(), (1, 3));
    }

    #[tokio::test]
    async fn bounded_by_count_and_by_bytes() {
        let r = record(3, 10);
        for id in ["a", "b", "c", "d"] {
            r.run(id, || async { Ok::<_, ()>(b"xx".to_vec()) }).await;
        }
        assert_eq!(r.usage(), (3, 6), "the oldest event is forgotten past the count");
        r.run("big", || async { Ok::<_, ()>(vec![0; 9]) }).await;
        assert_eq!(r.usage(), (1, 9), "older events make room for the bytes of a new one");
        r.run("huge", || async { Ok::<_, ()>(vec![0; 50]) }).await;
        assert_eq!(r.usage(), (1, 50), "the newest is kept even when alone over the bound");
        let again = r.run("a", || async { Ok::<_, ()>(b"new".to_vec()) }).await;
        assert!(matches!(again, Recorded::Fresh(_)), "a forgotten event runs again");
    }

    #[tokio::test]
    async fn concurrent_deliveries_of_one_event_run_once() {
        let r = Arc::new(record(8, 1 << 20));
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let (r, runs) = (r.clone(), runs.clone());
            tokio::spawn(async move {
                r.run("e", || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    rx.await.ok();
                    Ok::<_, ()>(b"done".to_vec())
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
                    Ok::<_, ()>(b"other".to_vec())
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        tx.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Recorded::Fresh(Arc::from(&b"done"[..])));
        assert_eq!(second.await.unwrap(), Recorded::Replayed(Arc::from(&b"done"[..])));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
