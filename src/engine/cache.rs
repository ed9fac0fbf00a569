//! The embedding cache: finished vectors by a 128-bit keyed hash of (text, normalize,
//! truncate), least recently used first out. [`Embedder`](super::embedder::Embedder) consults it
//! in `embed_with`/`embed_counted`, so every feature gets it without knowing; `embed_encoded`
//! (already tokenized input) bypasses it.
//!
//! Why these choices:
//! - The key is a hash, not the text: 2,000 texts of up to 50,000 characters would hold 100 MB;
//!   each entry is one 384-float vector (~1.6 KB with its bookkeeping), ~3.3 MB at the default.
//!   Two SipHash-1-3 keys drawn at start-up make 128 bits: no accidental collisions in a cache
//!   this size, and none a caller can construct without the process's keys.
//! - One mutex around `lru::LruCache`: a lookup holds it for ~100 ns against the ~1 ms or more
//!   that a miss costs to compute, and a batch takes it once for all its lookups and once for
//!   its inserts. Vectors are `Arc<[f32]>`, so a hit copies outside the lock.
//! - Vectors do not depend on batch composition or thread count (see `Embedder::embed_encoded`),
//!   so a cached vector is the same bits as a fresh one.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Entries the service keeps by default (the seed's SQLite cache held as many).
pub const DEFAULT_ENTRIES: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey(u64, u64);

/// A finished embedding and the tokens it took (reported as usage on a hit too).
#[derive(Debug, Clone)]
pub struct Cached {
    pub vector: Arc<[f32]>,
    pub tokens: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
    pub capacity: usize,
}

pub struct EmbedCache {
    /// `None`: disabled (capacity 0), and no key is ever hashed.
    lru: Option<Mutex<lru::LruCache<CacheKey, Cached>>>,
    capacity: usize,
    hash_keys: (RandomState, RandomState),
    hits: AtomicU64,
    misses: AtomicU64,
}

impl EmbedCache {
    /// A cache of `capacity` entries; 0 disables it.
    pub fn new(capacity: usize) -> EmbedCache {
        EmbedCache {
            lru: NonZeroUsize::new(capacity).map(|n| Mutex::new(lru::LruCache::new(n))),
            capacity,
            hash_keys: (RandomState::new(), RandomState::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.lru.is_some()
    }

    pub fn key(&self, text: &str, normalize: bool, truncate: bool) -> CacheKey {
        let key = (text, normalize, truncate);
        CacheKey(self.hash_keys.0.hash_one(key), self.hash_keys.1.hash_one(key))
    }

    /// Looks every key up under one lock; counts hits and misses.
    pub fn get_many(&self, keys: &[CacheKey]) -> Vec<Option<Cached>> {
        let Some(lru) = &self.lru else {
            return vec![None; keys.len()];
        };
        let found: Vec<Option<Cached>> = {
            let mut lru = lru.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter().map(|k| lru.get(k).cloned()).collect()
        };
        let hits = found.iter().filter(|f| f.is_some()).count() as u64;
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(keys.len() as u64 - hits, Ordering::Relaxed);
        found
    }

    /// Inserts under one lock, evicting the least recently used past capacity.
    pub fn insert_many(&self, items: impl IntoIterator<Item = (CacheKey, Cached)>) {
        if let Some(lru) = &self.lru {
            let mut lru = lru.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in items {
                lru.put(k, v);
            }
        }
    }

    /// Drops every entry (counters are kept); returns how many there were.
    pub fn clear(&self) -> usize {
        self.lru.as_ref().map_or(0, |lru| {
            let mut lru = lru.lock().unwrap_or_else(|e| e.into_inner());
            let n = lru.len();
            lru.clear();
            n
        })
    }

    /// Drops the least recently used half of the entries (the memory guard's standard level);
    /// returns how many.
    pub fn shrink_to_half(&self) -> usize {
        self.lru.as_ref().map_or(0, |lru| {
            let mut lru = lru.lock().unwrap_or_else(|e| e.into_inner());
            let drop = lru.len() - lru.len() / 2;
            (0..drop).filter(|_| lru.pop_lru().is_some()).count()
        })
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.lru.as_ref().map_or(0, |l| l.lock().unwrap_or_else(|e| e.into_inner()).len()),
            capacity: self.capacity,
        }
    }
}

impl std::fmt::Debug for EmbedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedCache").field("stats", &self.stats()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(x: f32) -> Cached {
        Cached { vector: Arc::from(vec![x; 4]), tokens: 3 }
    }

    #[test]
    fn counts_hits_and_misses_and_evicts_the_least_recent() {
        let c = EmbedCache::new(2);
        let (a, b, d) = (c.key("a", true, true), c.key("b", true, true), c.key("d", true, true));
        assert!(c.get_many(&[a])[0].is_none());
        c.insert_many([(a, cached(1.0)), (b, cached(2.0))]);
        assert_eq!(c.get_many(&[a])[0].as_ref().map(|v| v.vector[0]), Some(1.0)); // a is now the most recent
        c.insert_many([(d, cached(3.0))]); // evicts b
        let got = c.get_many(&[a, b, d]);
        assert!(got[0].is_some() && got[1].is_none() && got[2].is_some());
        assert_eq!(c.stats(), CacheStats { hits: 3, misses: 2, entries: 2, capacity: 2 });
    }

    #[test]
    fn options_are_part_of_the_key() {
        let c = EmbedCache::new(4);
        let keys = [c.key("a", true, true), c.key("a", false, true), c.key("a", true, false), c.key("A", true, true)];
        for (i, k) in keys.iter().enumerate() {
            assert!(keys[i + 1..].iter().all(|other| other != k));
        }
        assert_eq!(c.key("a", true, true), keys[0]);
    }

    #[test]
    fn zero_disables() {
        let c = EmbedCache::new(0);
        assert!(!c.enabled());
        let k = c.key("a", true, true);
        c.insert_many([(k, cached(1.0))]);
        assert!(c.get_many(&[k])[0].is_none());
        assert_eq!(c.stats(), CacheStats::default());
    }

    #[test]
    fn shrinking_to_half_drops_the_least_recent() {
        let c = EmbedCache::new(8);
        let keys: Vec<CacheKey> = (0..5).map(|i| c.key(&i.to_string(), true, true)).collect();
        c.insert_many(keys.iter().map(|&k| (k, cached(1.0))));
        assert_eq!(c.shrink_to_half(), 3);
        let got = c.get_many(&keys);
        assert!(got[..3].iter().all(Option::is_none) && got[3..].iter().all(Option::is_some));
        assert_eq!(EmbedCache::new(0).shrink_to_half(), 0);
    }
}
