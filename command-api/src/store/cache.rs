use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chaos_domain::{Character, CharacterEvent};
use chaos_eventstore::StoredEvent;

use super::{CharacterStore, Loaded, StoreError};

/// Keeps recently used aggregates in memory so a command costs one round trip (the append)
/// instead of two. Safe with several instances: a stale entry makes the append fail with a
/// conflict, which evicts it, and the caller reloads and decides again.
#[derive(Debug)]
pub struct CachedStore<S> {
    inner: S,
    capacity: usize,
    entries: Mutex<HashMap<String, Loaded>>,
}

impl<S> CachedStore<S> {
    pub fn new(inner: S, capacity: usize) -> Self {
        Self {
            inner,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Loaded>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl<S: CharacterStore> CharacterStore for CachedStore<S> {
    async fn load(&self, id: &str) -> Result<Loaded, StoreError> {
        if let Some(hit) = self.lock().get(id).cloned() {
            return Ok(hit);
        }
        self.inner.load(id).await
    }

    async fn append(
        &self,
        id: &str,
        expected: usize,
        state: &Character,
        events: Vec<CharacterEvent>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<usize>, StoreError> {
        let mut next = state.clone();
        for event in &events {
            cqrs_es::Aggregate::apply(&mut next, event.clone());
        }
        match self
            .inner
            .append(id, expected, state, events, metadata)
            .await
        {
            Ok(sequences) => {
                let last = sequences.last().copied().unwrap_or(expected);
                let mut entries = self.lock();
                if entries.len() >= self.capacity {
                    // Crude but bounded: drop everything. Entries are cheap to reload.
                    entries.clear();
                }
                entries.insert(id.to_owned(), (next, last));
                Ok(sequences)
            }
            Err(e) => {
                self.lock().remove(id);
                Err(e)
            }
        }
    }

    async fn by_idempotency_key(&self, scoped_key: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.by_idempotency_key(scoped_key).await
    }

    async fn history(&self, id: &str, up_to: Option<i64>) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.history(id, up_to).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}
