//! Recently commanded aggregates kept in memory, so a command costs one round trip (the append)
//! instead of two. Bounded and cheap per request at any size: a sharded S3-FIFO cache
//! (`quick_cache`) evicts entries one by one as new ones arrive — never a sweep under a global
//! lock, never the whole cache at once.
//!
//! Safe with several instances: a stale entry makes the append fail with a conflict, and the
//! command service brings the entry up to date with the events appended since and decides again.
//! Correctness never depends on the cache.
//!
//! Staleness is cheaper found before deciding: the store watch ([`crate::watch`]) reports the
//! events other writers append ([`AggregateCache::saw`]), and a command on an entry known to be
//! behind reads what it missed first ([`AggregateCache::is_behind`]) instead of losing the race.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chaos_domain::GameAggregate;

#[derive(Clone)]
struct Entry {
    state: Arc<dyn Any + Send + Sync>,
    sequence: u64,
    /// The newest sequence of the aggregate the store watch saw appended, shared by the
    /// entries that replace this one: above `sequence`, the entry is behind the store.
    seen: Arc<AtomicU64>,
}

/// Aggregates of any type, by (type, id).
#[derive(Clone)]
pub struct AggregateCache {
    entries: Option<Arc<quick_cache::sync::Cache<(&'static str, String), Entry>>>,
}

impl std::fmt::Debug for AggregateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateCache")
            .field("len", &self.len())
            .finish()
    }
}

impl AggregateCache {
    /// Holds up to `capacity` aggregates; 0 disables the cache.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: (capacity > 0).then(|| Arc::new(quick_cache::sync::Cache::new(capacity))),
        }
    }

    pub fn get<A: GameAggregate + Send + Sync>(&self, id: &str) -> Option<(Arc<A>, u64)> {
        let entry = self.entries.as_ref()?.get(&(A::TYPE, id.to_owned()))?;
        let state = entry.state.downcast::<A>().ok()?;
        Some((state, entry.sequence))
    }

    pub fn put<A: GameAggregate + Send + Sync>(&self, id: &str, state: Arc<A>, sequence: u64) {
        if let Some(entries) = &self.entries {
            let key = (A::TYPE, id.to_owned());
            // What the watch saw stays known: an event of another writer it reported while this
            // entry was being replaced still marks the new one behind.
            let seen = entries
                .get(&key)
                .map_or_else(Arc::default, |previous| previous.seen);
            entries.insert(
                key,
                Entry {
                    state,
                    sequence,
                    seen,
                },
            );
        }
    }

    /// None when the aggregate is not cached; else whether the store holds events of it after
    /// the cached version, as far as the watch has seen. One lookup for the command path.
    pub fn behind(&self, aggregate_type: &'static str, id: &str) -> Option<bool> {
        self.entries
            .as_ref()
            .and_then(|entries| entries.get(&(aggregate_type, id.to_owned())))
            .map(|entry| entry.seen.load(Ordering::Relaxed) > entry.sequence)
    }

    /// Whether the aggregate is cached and behind the store (see [`Self::behind`]).
    pub fn is_behind(&self, aggregate_type: &'static str, id: &str) -> bool {
        self.behind(aggregate_type, id) == Some(true)
    }

    /// The store has event `sequence` of aggregate (`aggregate_type`, `id`): a cached entry
    /// below it is behind. True when it marked one (an aggregate it does not cache, or one
    /// cached at or past `sequence`, such as this process's own appends, is left alone).
    pub fn saw(&self, aggregate_type: &'static str, id: &str, sequence: u64) -> bool {
        let Some(entry) = self
            .entries
            .as_ref()
            .and_then(|entries| entries.get(&(aggregate_type, id.to_owned())))
        else {
            return false;
        };
        entry.seen.fetch_max(sequence, Ordering::Relaxed);
        sequence > entry.sequence
    }

    pub fn evict(&self, aggregate_type: &'static str, id: &str) {
        if let Some(entries) = &self.entries {
            entries.remove(&(aggregate_type, id.to_owned()));
        }
    }

    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use chaos_domain::Wallet;

    use super::*;

    const WALLET: &str = chaos_domain::wallet::AGGREGATE_TYPE;

    #[test]
    fn an_entry_is_behind_once_the_store_has_a_later_event_of_it() {
        let cache = AggregateCache::new(10);
        cache.put("w", Arc::new(Wallet::default()), 3);
        // Its own appends (at or below the cached version) leave it alone.
        assert!(!cache.saw(WALLET, "w", 3));
        assert!(!cache.is_behind(WALLET, "w"));
        // Another writer's event 4.
        assert!(cache.saw(WALLET, "w", 4));
        assert!(cache.is_behind(WALLET, "w"));
        // Brought up to date: no longer behind.
        cache.put("w", Arc::new(Wallet::default()), 4);
        assert!(!cache.is_behind(WALLET, "w"));
    }

    #[test]
    fn what_the_watch_saw_survives_a_put_below_it() {
        let cache = AggregateCache::new(10);
        cache.put("w", Arc::new(Wallet::default()), 3);
        // Another writer's 5 is seen while this process stores its own 4.
        assert!(cache.saw(WALLET, "w", 5));
        cache.put("w", Arc::new(Wallet::default()), 4);
        assert!(cache.is_behind(WALLET, "w"));
    }

    #[test]
    fn aggregates_not_cached_are_never_behind() {
        let cache = AggregateCache::new(10);
        assert!(!cache.saw(WALLET, "w", 1));
        assert!(!cache.is_behind(WALLET, "w"));
        let off = AggregateCache::new(0);
        assert!(!off.saw(WALLET, "w", 1));
        assert!(!off.is_behind(WALLET, "w"));
    }
}
