//! One command at a time per aggregate inside a process: commands for the same aggregate queue
//! here instead of racing to the database, so one instance never conflicts with itself (its
//! cached state is always current), and only instances racing each other ever see a conflict.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

const SHARDS: usize = 64;

type Key = (&'static str, String);
type Shard = Mutex<HashMap<Key, Arc<AsyncMutex<()>>>>;

/// A lock per (aggregate type, id), created on first use and removed when nobody holds or
/// waits for it, so memory follows the number of aggregates being commanded right now.
#[derive(Debug)]
pub struct KeyedLocks {
    shards: Vec<Shard>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for KeyedLocks {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

/// Held while a command runs; releasing it wakes the next command for the aggregate.
#[derive(Debug)]
pub struct AggregateGuard<'a> {
    locks: &'a KeyedLocks,
    key: Key,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    fn shard(&self, key: &Key) -> &Shard {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    fn lock_shard(shard: &Shard) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<AsyncMutex<()>>>> {
        shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for the aggregate's turn.
    pub async fn lock(
        &self,
        aggregate_type: &'static str,
        aggregate_id: &str,
    ) -> AggregateGuard<'_> {
        let key = (aggregate_type, aggregate_id.to_owned());
        let mutex = Self::lock_shard(self.shard(&key))
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = mutex.lock_owned().await;
        AggregateGuard {
            locks: self,
            key,
            guard: Some(guard),
        }
    }

    /// Aggregates with a lock entry (held or awaited); for tests.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| Self::lock_shard(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for AggregateGuard<'_> {
    fn drop(&mut self) {
        let mut shard = KeyedLocks::lock_shard(self.locks.shard(&self.key));
        drop(self.guard.take());
        // The map's reference is the only one left: nobody holds or waits for it.
        if shard
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            shard.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn one_holder_per_aggregate_and_entries_are_removed_when_free() {
        let locks = Arc::new(KeyedLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let id = if i % 2 == 0 { "a" } else { "b" };
                let _g = locks.lock("t", id).await;
                if id == "a" {
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            1,
            "never two holders of `a` at once"
        );
        assert!(locks.is_empty(), "no entry left behind");
    }
}
