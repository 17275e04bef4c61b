//! Recently commanded aggregates kept in memory, so a command costs one round trip (the append)
//! instead of two. Bounded and cheap per request at any size: a sharded S3-FIFO cache
//! (`quick_cache`) evicts entries one by one as new ones arrive — never a sweep under a global
//! lock, never the whole cache at once.
//!
//! Safe with several instances: a stale entry makes the append fail with a conflict, and the
//! command service brings the entry up to date with the events appended since and decides again.
//! Correctness never depends on the cache.

use std::any::Any;
use std::sync::Arc;

use chaos_domain::GameAggregate;

#[derive(Clone)]
struct Entry {
    state: Arc<dyn Any + Send + Sync>,
    sequence: u64,
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
            entries.insert((A::TYPE, id.to_owned()), Entry { state, sequence });
        }
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
