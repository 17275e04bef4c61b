//! The write side's port to the event store: load an aggregate, append with an expected
//! version, and the lookups that idempotency and history need. PostgreSQL (cqrs-es over
//! postgres-es, event-store mode) in production; the embedded store implements the same port.

mod cache;
pub mod es;

use std::collections::HashMap;

use async_trait::async_trait;
use chaos_domain::{Character, CharacterEvent};
use chaos_eventstore::StoredEvent;

pub use cache::CachedStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else appended first: reload and decide again.
    #[error("concurrent modification")]
    Conflict,
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("stored events cannot be read: {0}")]
    Corrupt(String),
}

/// A loaded aggregate and the sequence of its last event (0 when it has none).
pub type Loaded = (Character, usize);

#[async_trait]
pub trait CharacterStore: Send + Sync + std::fmt::Debug {
    async fn load(&self, id: &str) -> Result<Loaded, StoreError>;

    /// Appends `events` after `expected` (the sequence the decision was made on); fails with
    /// [`StoreError::Conflict`] if the aggregate moved on. Returns the new events' sequences.
    async fn append(
        &self,
        id: &str,
        expected: usize,
        state: &Character,
        events: Vec<CharacterEvent>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<usize>, StoreError>;

    /// Events appended by the command carrying this scoped idempotency key, if any.
    async fn by_idempotency_key(&self, scoped_key: &str) -> Result<Vec<StoredEvent>, StoreError>;

    /// The aggregate's history, optionally up to a sequence.
    async fn history(&self, id: &str, up_to: Option<i64>) -> Result<Vec<StoredEvent>, StoreError>;

    /// Answers when the store can take writes.
    async fn ping(&self) -> Result<(), StoreError>;
}
