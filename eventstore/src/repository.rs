//! The event store the write side runs on: PostgreSQL in production (postgres-es for reads, the
//! group committer for appends), SQLite in the embedded mode. One closed set of backends behind
//! cqrs-es's [`PersistedEventRepository`] plus the lookups that trait lacks (idempotency keys,
//! history pages, snapshots, reservations, the global-order reader).

use std::sync::Arc;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;
use sqlx::PgPool;

use crate::group_commit::{
    AppendMetrics, GroupCommitConfig, GroupCommitRepository, GroupCommitter, Row,
};
use crate::pg::{self, AppendNotifier, PgEventLog};
use crate::reservations::ReservationRequest;
use crate::snapshot::StoredSnapshot;
use crate::sqlite::SqliteEventRepository;
use crate::{EventLog, Result, StoredEvent};

/// Events read at a time when gathering one command's events (a command appends a handful).
const KEYED_PAGE: u32 = 64;

/// See the module documentation. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Repository {
    Postgres {
        repo: GroupCommitRepository,
        pool: PgPool,
    },
    Sqlite(SqliteEventRepository),
}

impl Repository {
    /// PostgreSQL with group-committed appends; commits are announced for the relay's listener.
    pub fn postgres(
        pool: PgPool,
        config: GroupCommitConfig,
        metrics: Option<AppendMetrics>,
    ) -> Self {
        let notifier = AppendNotifier::spawn(pool.clone(), config.notify_interval);
        let committer = GroupCommitter::postgres(pool.clone(), config, Some(notifier), metrics);
        Self::Postgres {
            repo: GroupCommitRepository::new(pool.clone(), committer),
            pool,
        }
    }

    pub fn sqlite(repo: SqliteEventRepository) -> Self {
        Self::Sqlite(repo)
    }

    /// The store read in global order (the relay's and the store feed's cursor).
    pub fn log(&self) -> Arc<dyn EventLog> {
        match self {
            Self::Postgres { pool, .. } => Arc::new(PgEventLog::new(pool.clone())),
            Self::Sqlite(repo) => Arc::new(repo.log()),
        }
    }

    /// The events appended by the command with this scoped idempotency key, in order (none if
    /// no command used it): its first event carries the key as `command_key`, and the rest follow
    /// it in the same stream, each with the key in its metadata.
    pub async fn by_idempotency_key(&self, scoped_key: &str) -> Result<Vec<StoredEvent>> {
        let first = match self {
            Self::Postgres { pool, .. } => pg::command_first_event(pool, scoped_key).await?,
            Self::Sqlite(repo) => repo.command_first_event(scoped_key).await?,
        };
        let Some((aggregate_type, aggregate_id, first)) = first else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        let mut after = first - 1;
        loop {
            let page = self
                .history_page(&aggregate_type, &aggregate_id, after, KEYED_PAGE, None)
                .await?;
            let full = page.len() == KEYED_PAGE as usize;
            for event in page {
                if event.meta().idempotency_key.as_deref() != Some(scoped_key) {
                    return Ok(events);
                }
                after = event.sequence;
                events.push(event);
            }
            if !full {
                return Ok(events);
            }
        }
    }

    /// One page of an aggregate's history (events after sequence `after`, at most `limit`, none
    /// beyond `up_to`).
    pub async fn history_page(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
        limit: u32,
        up_to: Option<i64>,
    ) -> Result<Vec<StoredEvent>> {
        match self {
            Self::Postgres { pool, .. } => {
                pg::history_page(pool, aggregate_type, aggregate_id, after, limit, up_to).await
            }
            Self::Sqlite(repo) => {
                repo.history_page(aggregate_type, aggregate_id, after, limit, up_to)
                    .await
            }
        }
    }

    pub async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<StoredSnapshot>> {
        match self {
            Self::Postgres { pool, .. } => {
                pg::load_snapshot(pool, aggregate_type, aggregate_id).await
            }
            Self::Sqlite(repo) => repo.load_snapshot(aggregate_type, aggregate_id).await,
        }
    }

    pub async fn save_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        snapshot: &StoredSnapshot,
    ) -> Result<()> {
        match self {
            Self::Postgres { pool, .. } => {
                pg::save_snapshot(pool, aggregate_type, aggregate_id, snapshot).await
            }
            Self::Sqlite(repo) => {
                repo.save_snapshot(aggregate_type, aggregate_id, snapshot)
                    .await
            }
        }
    }

    /// Appends one command's events, encoded as rows (all of one aggregate, in sequence order,
    /// the command's scoped key on the first): atomically, refused with a conflict when a
    /// sequence is taken. [`PersistedEventRepository::persist`] takes the same path after
    /// encoding cqrs-es's events.
    pub async fn append(&self, rows: Vec<Row>) -> std::result::Result<(), PersistenceError> {
        match self {
            Self::Postgres { repo, .. } => repo.append_rows(rows).await,
            Self::Sqlite(repo) => repo.append_rows(rows).await,
        }
    }

    /// Reserves a value for an aggregate (see [`crate::reservations`]); true when it is the
    /// aggregate's.
    pub async fn reserve(&self, request: &ReservationRequest<'_>) -> Result<bool> {
        match self {
            Self::Postgres { pool, .. } => pg::reserve(pool, request).await,
            Self::Sqlite(repo) => repo.reserve(request).await,
        }
    }

    /// Marks a reservation as used: it is never taken over afterwards.
    pub async fn confirm_reservation(&self, request: &ReservationRequest<'_>) -> Result<()> {
        match self {
            Self::Postgres { pool, .. } => pg::confirm_reservation(pool, request).await,
            Self::Sqlite(repo) => repo.confirm_reservation(request).await,
        }
    }

    /// Answers when the store can take writes.
    pub async fn ping(&self) -> Result<()> {
        match self {
            Self::Postgres { pool, .. } => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Self::Sqlite(repo) => {
                sqlx::query("SELECT 1").execute(repo.pool()).await?;
            }
        }
        Ok(())
    }
}

impl PersistedEventRepository for Repository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Postgres { repo, .. } => repo.get_events::<A>(aggregate_id).await,
            Self::Sqlite(repo) => repo.get_events::<A>(aggregate_id).await,
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Postgres { repo, .. } => {
                repo.get_last_events::<A>(aggregate_id, last_sequence).await
            }
            Self::Sqlite(repo) => repo.get_last_events::<A>(aggregate_id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        // cqrs-es's snapshot mode is never used (see crate::snapshot).
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError(
                "cqrs-es snapshot mode is not supported: it applies events twice".into(),
            ));
        }
        match self {
            Self::Postgres { repo, .. } => repo.persist::<A>(events, None).await,
            Self::Sqlite(repo) => repo.persist::<A>(events, None).await,
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Postgres { repo, .. } => repo.stream_events::<A>(aggregate_id).await,
            Self::Sqlite(repo) => repo.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Postgres { repo, .. } => repo.stream_all_events::<A>().await,
            Self::Sqlite(repo) => repo.stream_all_events::<A>().await,
        }
    }
}
