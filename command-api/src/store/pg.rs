use std::collections::HashMap;

use async_trait::async_trait;
use chaos_domain::{Character, CharacterEvent};
use chaos_eventstore::{pg, StoredEvent};
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{AggregateError, EventStore};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

use super::{CharacterStore, Loaded, StoreError};

/// cqrs-es's persisted event store over postgres-es, in event-store mode: postgres-es 0.5's
/// snapshot and aggregate-store modes apply each event twice when updating the snapshot.
pub struct PgCharacterStore {
    pool: PgPool,
    store: PersistedEventStore<PostgresEventRepository, Character>,
}

impl std::fmt::Debug for PgCharacterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCharacterStore").finish_non_exhaustive()
    }
}

impl PgCharacterStore {
    pub fn new(pool: PgPool) -> Self {
        let repo = PostgresEventRepository::new(pool.clone());
        Self {
            pool,
            store: PersistedEventStore::new_event_store(repo),
        }
    }
}

fn map_err<E: std::error::Error>(e: AggregateError<E>) -> StoreError {
    match e {
        AggregateError::AggregateConflict => StoreError::Conflict,
        AggregateError::DeserializationError(e) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn db_err(e: chaos_eventstore::Error) -> StoreError {
    match e {
        chaos_eventstore::Error::Corrupt(m) => StoreError::Corrupt(m),
        other => StoreError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl CharacterStore for PgCharacterStore {
    async fn load(&self, id: &str) -> Result<Loaded, StoreError> {
        let context = self.store.load_aggregate(id).await.map_err(map_err)?;
        Ok((context.aggregate, context.current_sequence))
    }

    async fn append(
        &self,
        id: &str,
        expected: usize,
        state: &Character,
        events: Vec<CharacterEvent>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<usize>, StoreError> {
        let context = EventStoreAggregateContext {
            aggregate_id: id.to_owned(),
            aggregate: state.clone(),
            current_sequence: expected,
            current_snapshot: None,
        };
        let committed = self
            .store
            .commit(events, context, metadata)
            .await
            .map_err(map_err)?;
        Ok(committed.iter().map(|e| e.sequence).collect())
    }

    async fn by_idempotency_key(&self, scoped_key: &str) -> Result<Vec<StoredEvent>, StoreError> {
        pg::events_by_idempotency_key(&self.pool, scoped_key)
            .await
            .map_err(db_err)
    }

    async fn history(&self, id: &str, up_to: Option<i64>) -> Result<Vec<StoredEvent>, StoreError> {
        pg::aggregate_history(
            &self.pool,
            chaos_domain::character::AGGREGATE_TYPE,
            id,
            up_to,
        )
        .await
        .map_err(db_err)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}
