//! The character store over cqrs-es's persisted event store, for any repository: postgres-es
//! in production, the embedded SQLite repository in the embedded mode. Event-store mode only:
//! postgres-es 0.5's snapshot and aggregate-store modes apply each event twice when updating
//! the snapshot.

use std::collections::HashMap;

use async_trait::async_trait;
use chaos_domain::character::AGGREGATE_TYPE;
use chaos_domain::{Character, CharacterEvent};
use chaos_eventstore::group_commit::{
    AppendMetrics, GroupCommitConfig, GroupCommitRepository, GroupCommitter,
};
use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::{pg, StoredEvent};
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventRepository, PersistedEventStore};
use cqrs_es::{AggregateError, EventStore};
use sqlx::PgPool;

use super::{CharacterStore, Loaded, StoreError};

/// The queries cqrs-es's repository trait does not have.
#[async_trait]
pub trait Lookups: Send + Sync {
    async fn by_idempotency_key(
        &self,
        scoped_key: &str,
    ) -> chaos_eventstore::Result<Vec<StoredEvent>>;
    async fn history(
        &self,
        id: &str,
        up_to: Option<i64>,
    ) -> chaos_eventstore::Result<Vec<StoredEvent>>;
    async fn ping(&self) -> chaos_eventstore::Result<()>;
}

/// PostgreSQL lookups.
#[derive(Debug, Clone)]
pub struct PgLookups {
    pool: PgPool,
}

#[async_trait]
impl Lookups for PgLookups {
    async fn by_idempotency_key(
        &self,
        scoped_key: &str,
    ) -> chaos_eventstore::Result<Vec<StoredEvent>> {
        pg::events_by_idempotency_key(&self.pool, scoped_key).await
    }
    async fn history(
        &self,
        id: &str,
        up_to: Option<i64>,
    ) -> chaos_eventstore::Result<Vec<StoredEvent>> {
        pg::aggregate_history(&self.pool, AGGREGATE_TYPE, id, up_to).await
    }
    async fn ping(&self) -> chaos_eventstore::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[async_trait]
impl Lookups for SqliteEventRepository {
    async fn by_idempotency_key(
        &self,
        scoped_key: &str,
    ) -> chaos_eventstore::Result<Vec<StoredEvent>> {
        SqliteEventRepository::by_idempotency_key(self, scoped_key).await
    }
    async fn history(
        &self,
        id: &str,
        up_to: Option<i64>,
    ) -> chaos_eventstore::Result<Vec<StoredEvent>> {
        SqliteEventRepository::history(self, AGGREGATE_TYPE, id, up_to).await
    }
    async fn ping(&self) -> chaos_eventstore::Result<()> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }
}

pub struct EsCharacterStore<R: PersistedEventRepository, L> {
    store: PersistedEventStore<R, Character>,
    lookups: L,
}

impl<R: PersistedEventRepository, L> std::fmt::Debug for EsCharacterStore<R, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsCharacterStore").finish_non_exhaustive()
    }
}

/// cqrs-es over PostgreSQL: postgres-es reads, appends group-committed
/// ([`chaos_eventstore::group_commit`]).
pub type PgCharacterStore = EsCharacterStore<GroupCommitRepository, PgLookups>;
pub type SqliteCharacterStore = EsCharacterStore<SqliteEventRepository, SqliteEventRepository>;

impl PgCharacterStore {
    pub fn new(pool: PgPool) -> Self {
        Self::with_group_commit(pool, GroupCommitConfig::default(), None)
    }

    pub fn with_group_commit(
        pool: PgPool,
        config: GroupCommitConfig,
        metrics: Option<AppendMetrics>,
    ) -> Self {
        // The relay listens for these post-commit notifications (polling is its fallback).
        let notifier = pg::AppendNotifier::spawn(pool.clone());
        let committer = GroupCommitter::postgres(pool.clone(), config, Some(notifier), metrics);
        let repo = GroupCommitRepository::new(pool.clone(), committer);
        Self {
            store: PersistedEventStore::new_event_store(repo),
            lookups: PgLookups { pool },
        }
    }
}

impl SqliteCharacterStore {
    pub fn new(repo: SqliteEventRepository) -> Self {
        Self {
            store: PersistedEventStore::new_event_store(repo.clone()),
            lookups: repo,
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
impl<R, L> CharacterStore for EsCharacterStore<R, L>
where
    R: PersistedEventRepository + 'static,
    L: Lookups + 'static,
{
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
        self.lookups
            .by_idempotency_key(scoped_key)
            .await
            .map_err(db_err)
    }

    async fn history(&self, id: &str, up_to: Option<i64>) -> Result<Vec<StoredEvent>, StoreError> {
        self.lookups.history(id, up_to).await.map_err(db_err)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lookups.ping().await.map_err(db_err)
    }
}
