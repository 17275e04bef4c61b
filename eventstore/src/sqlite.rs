//! The embedded event store: SQLite through sqlx, implementing the cqrs-es repository.
//!
//! The global-order guarantee comes from SQLite itself: there is one writer at a time and a
//! transaction holds the write lock from its first insert to its commit, so `global_position`
//! (an AUTOINCREMENT rowid) is assigned in commit order and readers, which see only committed
//! rows, can never find a lower position appearing behind their cursor. Positions here have
//! `tx_id = 0`.
//!
//! Appends go through the same group commit as PostgreSQL's ([`crate::group_commit`]) with a
//! single writer: concurrent commands share one `BEGIN IMMEDIATE … COMMIT` (one fsync) instead
//! of each racing for SQLite's write lock.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;
use tokio::sync::{watch, Mutex};

use crate::group_commit::{
    classify, BatchWriter, Committed, Failure, GroupCommitConfig, GroupCommitter, Row as EventRow,
};
use crate::{Error, EventLog, JsonText, Position, Result, StoredEvent};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS events (
        global_position INTEGER PRIMARY KEY AUTOINCREMENT,
        aggregate_type  TEXT NOT NULL,
        aggregate_id    TEXT NOT NULL,
        sequence        INTEGER NOT NULL CHECK (sequence >= 0),
        event_type      TEXT NOT NULL,
        event_version   TEXT NOT NULL,
        payload         TEXT NOT NULL,
        metadata        TEXT NOT NULL,
        idempotency_key TEXT GENERATED ALWAYS AS (json_extract(metadata, '$.idempotency_key')) VIRTUAL,
        UNIQUE (aggregate_type, aggregate_id, sequence)
    )",
    "CREATE TABLE IF NOT EXISTS aggregate_snapshots (
        aggregate_type TEXT NOT NULL,
        aggregate_id   TEXT NOT NULL,
        state_version  INTEGER NOT NULL,
        last_sequence  INTEGER NOT NULL CHECK (last_sequence > 0),
        payload        TEXT NOT NULL,
        taken_at       REAL NOT NULL DEFAULT (unixepoch('subsec')),
        PRIMARY KEY (aggregate_type, aggregate_id)
    )",
    "CREATE TABLE IF NOT EXISTS reservations (
        scope          TEXT NOT NULL,
        value_key      TEXT NOT NULL,
        value          TEXT NOT NULL,
        aggregate_type TEXT NOT NULL,
        aggregate_id   TEXT NOT NULL,
        reserved_at    REAL NOT NULL DEFAULT (unixepoch('subsec')),
        confirmed      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (scope, value_key)
    )",
    "CREATE TABLE IF NOT EXISTS checkpoints (
        name            TEXT PRIMARY KEY,
        global_position INTEGER NOT NULL,
        updated_at      REAL NOT NULL DEFAULT (unixepoch('subsec'))
    )",
];

/// Opens (creating if needed) the database file with durable settings: WAL, and every commit
/// synced (the embedded equivalent of PostgreSQL's synchronous_commit = on).
pub async fn open(path: &std::path::Path) -> Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    for statement in SCHEMA {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .map_err(|e| Error::Migration(format!("{e}: {statement}")))?;
    }
    // A keyed command's scoped idempotency key on its first event only, under a unique index
    // (as in PostgreSQL: `crate::pg`). A file from before has the key only in the metadata
    // (`idempotency_key`, a virtual column) and an index on it: mark each key's first event,
    // then drop that index, in one transaction.
    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('events')")
        .fetch_all(&pool)
        .await?;
    if !columns.iter().any(|c| c == "command_key") {
        let mut tx = pool.begin().await?;
        for statement in [
            "ALTER TABLE events ADD COLUMN command_key TEXT",
            "UPDATE events SET command_key = idempotency_key WHERE global_position IN (
                 SELECT min(global_position) FROM events
                 WHERE idempotency_key IS NOT NULL GROUP BY idempotency_key)",
            "DROP INDEX IF EXISTS events_idempotency",
        ] {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(|e| Error::Migration(format!("{e}: {statement}")))?;
        }
        tx.commit().await?;
    }
    sqlx::query(
        "CREATE UNIQUE INDEX IF NOT EXISTS events_command_key ON events (command_key)
         WHERE command_key IS NOT NULL",
    )
    .execute(&pool)
    .await?;
    // Character names reserved before the generic reservations existed.
    let old: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'character_names'",
    )
    .fetch_optional(&pool)
    .await?;
    if old.is_some() {
        sqlx::query(
            "INSERT OR IGNORE INTO reservations
                 (scope, value_key, value, aggregate_type, aggregate_id, reserved_at, confirmed)
             SELECT 'character-name', name_key, name, 'character', character_id, reserved_at, 1
             FROM character_names",
        )
        .execute(&pool)
        .await?;
    }
    Ok(pool)
}

const COLUMNS: &str = "global_position, aggregate_type, aggregate_id, sequence, event_type, \
    event_version, payload, metadata";

fn row_to_event(row: &SqliteRow) -> Result<StoredEvent> {
    // The embedded store holds only what serde_json wrote.
    let text = |name: &str| -> Result<JsonText> { Ok(JsonText::stored(row.try_get(name)?)) };
    Ok(StoredEvent {
        position: Position {
            tx_id: 0,
            global_position: row.try_get("global_position")?,
        },
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: text("payload")?,
        metadata: text("metadata")?,
    })
}

fn to_serialized(e: StoredEvent) -> SerializedEvent {
    let payload = e.payload_value();
    let metadata = e.metadata_value();
    SerializedEvent::new(
        e.aggregate_id,
        usize::try_from(e.sequence).unwrap_or(0),
        e.aggregate_type,
        e.event_type,
        e.event_version,
        payload,
        metadata,
    )
}

fn connection(e: impl std::error::Error + Send + Sync + 'static) -> PersistenceError {
    PersistenceError::ConnectionError(Box::new(e))
}

/// One batch in one `BEGIN IMMEDIATE` transaction: the write lock is taken up front (waiting
/// under the busy timeout) rather than upgraded mid-transaction, which SQLite may refuse at once.
#[derive(Debug, Clone)]
struct SqliteBatchWriter {
    pool: SqlitePool,
}

#[async_trait]
impl BatchWriter for SqliteBatchWriter {
    async fn write(&self, rows: &[&EventRow]) -> std::result::Result<(), Failure> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| classify(&e))?;
        // A statement per chunk of rows, not per row: each statement is a round trip to sqlx's
        // SQLite worker thread. 8 parameters a row; SQLite takes up to 32,766 a statement.
        for chunk in rows.chunks(1_000) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, command_key) ",
            );
            insert.push_values(chunk, |mut values, row| {
                values
                    .push_bind(&row.aggregate_type)
                    .push_bind(&row.aggregate_id)
                    .push_bind(row.sequence)
                    .push_bind(&row.event_type)
                    .push_bind(&row.event_version)
                    .push_bind(&row.payload)
                    .push_bind(&row.metadata)
                    .push_bind(&row.command_key);
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| classify(&e))?;
        }
        tx.commit().await.map_err(|e| classify(&e))
    }
}

/// The cqrs-es repository over SQLite (event-store mode only: no snapshots).
#[derive(Debug, Clone)]
pub struct SqliteEventRepository {
    pool: SqlitePool,
    /// Bumped after every commit; each reader holds its own receiver, so none misses a wake-up.
    appended: Arc<watch::Sender<u64>>,
    committer: GroupCommitter,
}

impl SqliteEventRepository {
    /// See [`GroupCommitter::append_rows`].
    pub async fn append_rows(
        &self,
        rows: Vec<EventRow>,
    ) -> std::result::Result<(), PersistenceError> {
        self.committer.append_rows(rows).await
    }

    /// Must be called inside a Tokio runtime: it starts the writer task.
    pub fn new(pool: SqlitePool) -> Self {
        let appended = Arc::new(watch::channel(0u64).0);
        let announce = appended.clone();
        let committed: Committed =
            Arc::new(move || announce.send_modify(|n| *n = n.wrapping_add(1)));
        let committer = GroupCommitter::spawn(
            Arc::new(SqliteBatchWriter { pool: pool.clone() }),
            // SQLite has one writer at a time: more writer tasks would only queue on its lock.
            GroupCommitConfig {
                writers: 1,
                ..GroupCommitConfig::default()
            },
            Some(committed),
            None,
        );
        Self {
            pool,
            appended,
            committer,
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The global-order reader over the same database, woken by this repository's appends.
    pub fn log(&self) -> SqliteEventLog {
        SqliteEventLog {
            pool: self.pool.clone(),
            appended: Arc::new(Mutex::new(self.appended.subscribe())),
        }
    }

    async fn select(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: usize,
    ) -> Result<Vec<StoredEvent>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = ? AND aggregate_id = ? AND sequence > ?
             ORDER BY sequence"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// Where the command with this scoped idempotency key starts (see
    /// `crate::pg::command_first_event`).
    pub async fn command_first_event(
        &self,
        scoped_key: &str,
    ) -> Result<Option<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT aggregate_type, aggregate_id, sequence FROM events WHERE command_key = ?",
        )
        .bind(scoped_key)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// One page of an aggregate's history: events after sequence `after`, at most `limit`, none
    /// beyond `up_to` when given.
    pub async fn history_page(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
        limit: u32,
        up_to: Option<i64>,
    ) -> Result<Vec<StoredEvent>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events
             WHERE aggregate_type = ? AND aggregate_id = ? AND sequence > ? AND sequence <= ?
             ORDER BY sequence LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(after)
            .bind(up_to.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// The stored snapshot of an aggregate, whatever its state version.
    pub async fn load_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<crate::snapshot::StoredSnapshot>> {
        let row = sqlx::query(
            "SELECT state_version, last_sequence, payload FROM aggregate_snapshots
             WHERE aggregate_type = ? AND aggregate_id = ?",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let payload: String = row.try_get("payload")?;
            Ok(crate::snapshot::StoredSnapshot {
                state_version: u32::try_from(row.try_get::<i64, _>("state_version")?).unwrap_or(0),
                last_sequence: u64::try_from(row.try_get::<i64, _>("last_sequence")?).unwrap_or(0),
                payload: serde_json::from_str(&payload)
                    .map_err(|e| Error::Corrupt(format!("snapshot payload: {e}")))?,
            })
        })
        .transpose()
    }

    /// Stores a snapshot unless a newer one (same state version, higher sequence) is there.
    pub async fn save_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        snapshot: &crate::snapshot::StoredSnapshot,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO aggregate_snapshots AS s
                 (aggregate_type, aggregate_id, state_version, last_sequence, payload)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
             SET state_version = excluded.state_version, last_sequence = excluded.last_sequence,
                 payload = excluded.payload, taken_at = unixepoch('subsec')
             WHERE s.state_version <> excluded.state_version
                OR s.last_sequence < excluded.last_sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(i64::from(snapshot.state_version))
        .bind(i64::try_from(snapshot.last_sequence).unwrap_or(i64::MAX))
        .bind(snapshot.payload.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Reserves a value for an aggregate; see [`crate::reservations`].
    pub async fn reserve(
        &self,
        request: &crate::reservations::ReservationRequest<'_>,
    ) -> Result<bool> {
        let reserved: Option<String> = sqlx::query_scalar(
            "INSERT INTO reservations AS r (scope, value_key, value, aggregate_type, aggregate_id)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (scope, value_key) DO UPDATE
                SET value = excluded.value, aggregate_type = excluded.aggregate_type,
                    aggregate_id = excluded.aggregate_id, reserved_at = unixepoch('subsec')
                WHERE (r.aggregate_type = excluded.aggregate_type
                       AND r.aggregate_id = excluded.aggregate_id)
                   OR (NOT r.confirmed AND r.reserved_at <= unixepoch('subsec') - ?6
                       AND NOT EXISTS (SELECT 1 FROM events e
                                       WHERE e.aggregate_type = r.aggregate_type
                                         AND e.aggregate_id = r.aggregate_id))
             RETURNING aggregate_id",
        )
        .bind(request.scope)
        .bind(request.key())
        .bind(request.value)
        .bind(request.aggregate_type)
        .bind(request.aggregate_id)
        .bind(request.abandoned_after.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        Ok(reserved.is_some())
    }

    /// Marks a reservation as used (see [`crate::reservations`]).
    pub async fn confirm_reservation(
        &self,
        request: &crate::reservations::ReservationRequest<'_>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE reservations SET confirmed = 1
             WHERE scope = ? AND value_key = ? AND aggregate_type = ? AND aggregate_id = ?",
        )
        .bind(request.scope)
        .bind(request.key())
        .bind(request.aggregate_type)
        .bind(request.aggregate_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A named position of the global-order reader (the embedded process managers').
    pub async fn load_checkpoint(&self, name: &str) -> Result<Position> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT global_position FROM checkpoints WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(
            position.map_or(Position::START, |global_position| Position {
                tx_id: 0,
                global_position,
            }),
        )
    }

    pub async fn save_checkpoint(&self, name: &str, position: Position) -> Result<()> {
        sqlx::query(
            "INSERT INTO checkpoints (name, global_position) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE
             SET global_position = excluded.global_position, updated_at = unixepoch('subsec')",
        )
        .bind(name)
        .bind(position.global_position)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    fn stream(&self, query: String, binds: Vec<String>) -> ReplayStream {
        let (mut feed, stream) = ReplayStream::new(200);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut q = sqlx::query(&query);
            for b in &binds {
                q = q.bind(b);
            }
            let rows = match q.fetch_all(&pool).await {
                Ok(rows) => rows,
                Err(e) => {
                    let _ = feed.push(Err(connection(e))).await;
                    return;
                }
            };
            for row in rows {
                let item = row_to_event(&row)
                    .map(to_serialized)
                    .map_err(|e| PersistenceError::DeserializationError(Box::new(e)));
                if feed.push(item).await.is_err() {
                    return;
                }
            }
        });
        stream
    }
}

impl PersistedEventRepository for SqliteEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .select(A::TYPE, aggregate_id, 0)
            .await
            .map_err(connection)?;
        Ok(events.into_iter().map(to_serialized).collect())
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .select(A::TYPE, aggregate_id, last_sequence)
            .await
            .map_err(connection)?;
        Ok(events.into_iter().map(to_serialized).collect())
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError(
                "the embedded store runs in event-store mode only (no snapshots)".into(),
            ));
        }
        self.committer.append(A::TYPE, events).await
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY sequence"
        );
        Ok(self.stream(sql, vec![A::TYPE.to_owned(), aggregate_id.to_owned()]))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = ? ORDER BY global_position"
        );
        Ok(self.stream(sql, vec![A::TYPE.to_owned()]))
    }
}

/// The global-order reader over SQLite.
#[derive(Debug, Clone)]
pub struct SqliteEventLog {
    pool: SqlitePool,
    appended: Arc<Mutex<watch::Receiver<u64>>>,
}

#[async_trait]
impl EventLog for SqliteEventLog {
    async fn read_after(&self, after: Position, limit: u32) -> Result<Vec<StoredEvent>> {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE global_position > ? ORDER BY global_position LIMIT ?");
        let rows = sqlx::query(&sql)
            .bind(after.global_position)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn wait_for_append(&self, timeout: Duration) {
        let mut appended = self.appended.lock().await;
        let _ = tokio::time::timeout(timeout, appended.changed()).await;
    }

    async fn count_after(&self, after: Position) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position > ?")
            .bind(after.global_position)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
