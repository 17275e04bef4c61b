//! PostgreSQL: schema, global-order reader, checkpoints, command-side lookups.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::Row;
use tokio::sync::Mutex;

use crate::{Error, EventLog, Position, Result, StoredEvent};

/// Metadata keys written with every event. Persisted: do not rename.
pub const META_EVENT_ID: &str = "event_id";
pub const META_OCCURRED_AT: &str = "occurred_at";
pub const META_ACCOUNT_ID: &str = "account_id";
pub const META_CORRELATION_ID: &str = "correlation_id";
pub const META_CAUSATION_ID: &str = "causation_id";
pub const META_TRACEPARENT: &str = "traceparent";
/// `<account id>:<client key>`: scoping keys by account keeps clients from colliding.
pub const META_IDEMPOTENCY_KEY: &str = "idempotency_key";
pub const META_REQUEST_HASH: &str = "request_hash";

/// The NOTIFY channel raised after appends to `events`.
pub const APPEND_CHANNEL: &str = "chaos_events_appended";

/// Idempotent schema setup. The `events` table is postgres-es's, plus two columns that give a
/// gap-free global order: postgres-es names its insert columns, so the defaults fill them.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS events (
        aggregate_type text NOT NULL,
        aggregate_id   text NOT NULL,
        sequence       bigint CHECK (sequence >= 0) NOT NULL,
        event_type     text NOT NULL,
        event_version  text NOT NULL,
        payload        json NOT NULL,
        metadata       json NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, sequence)
    )",
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS global_position bigint GENERATED ALWAYS AS IDENTITY",
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS tx_id xid8 NOT NULL DEFAULT pg_current_xact_id()",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_global_order ON events (tx_id, global_position)",
    "CREATE INDEX IF NOT EXISTS events_idempotency ON events ((metadata->>'idempotency_key'))
        WHERE (metadata->>'idempotency_key') IS NOT NULL",
    // Present for postgres-es's snapshot mode; unused: we run event-store mode (DESIGN.md 3).
    "CREATE TABLE IF NOT EXISTS snapshots (
        aggregate_type   text NOT NULL,
        aggregate_id     text NOT NULL,
        last_sequence    bigint CHECK (last_sequence >= 0) NOT NULL,
        current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
        payload          json NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
    )",
    "CREATE TABLE IF NOT EXISTS checkpoints (
        name            text PRIMARY KEY,
        tx_id           xid8 NOT NULL,
        global_position bigint NOT NULL,
        updated_at      timestamptz NOT NULL DEFAULT now()
    )",
    // Appends are announced by the writers after commit (`AppendNotifier`), not by a trigger:
    // a NOTIFY inside the appending transaction takes a database-wide lock at commit and
    // serialises every command's commit behind it.
    "DROP TRIGGER IF EXISTS events_notify_append ON events",
    "DROP FUNCTION IF EXISTS chaos_notify_append()",
];

/// Creates or upgrades the schema. Serialised by an advisory lock so that several processes
/// starting at once do not race on DDL.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7326001)")
        .execute(&mut *tx)
        .await?;
    for statement in SCHEMA {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::Migration(format!("{e}: {statement}")))?;
    }
    tx.commit().await?;
    Ok(())
}

/// `tx_text`, not `tx_id`: an `ORDER BY tx_id` would bind to a select-list alias of that name and
/// sort the text (so "1000000" before "999999", skipping rows when xids gain a digit).
const SELECT_COLUMNS: &str =
    "tx_id::text AS tx_text, global_position, aggregate_type, aggregate_id, \
     sequence, event_type, event_version, payload, metadata";

fn row_to_event(row: &PgRow) -> Result<StoredEvent> {
    let tx_text: String = row.try_get("tx_text")?;
    let tx_id = tx_text
        .parse()
        .map_err(|_| Error::Corrupt(format!("tx_id {tx_text}")))?;
    Ok(StoredEvent {
        position: Position {
            tx_id,
            global_position: row.try_get("global_position")?,
        },
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
    })
}

/// The global-order reader over PostgreSQL.
#[derive(Debug)]
pub struct PgEventLog {
    pool: PgPool,
    listener: Mutex<Option<PgListener>>,
}

impl PgEventLog {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            listener: Mutex::new(None),
        }
    }
}

#[async_trait]
impl EventLog for PgEventLog {
    async fn read_after(&self, after: Position, limit: u32) -> Result<Vec<StoredEvent>> {
        // Only transactions older than every running one are visible to readers: a transaction
        // that started earlier but commits later can then never land behind the cursor.
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM events
             WHERE (tx_id, global_position) > ($1::text::xid8, $2)
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY events.tx_id, events.global_position
             LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(after.tx_id.to_string())
            .bind(after.global_position)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn wait_for_append(&self, timeout: Duration) {
        let mut guard = self.listener.lock().await;
        if guard.is_none() {
            match PgListener::connect_with(&self.pool).await {
                Ok(mut l) => match l.listen(APPEND_CHANNEL).await {
                    Ok(()) => *guard = Some(l),
                    Err(e) => tracing::warn!(error = %e, "listen failed; polling"),
                },
                Err(e) => tracing::warn!(error = %e, "listener connection failed; polling"),
            }
        }
        match guard.as_mut() {
            Some(listener) => {
                // A notification, a timeout (the polling fallback), or a broken connection
                // (dropped so the next call reconnects) all mean "go and look".
                match tokio::time::timeout(timeout, listener.try_recv()).await {
                    Ok(Ok(Some(_))) | Err(_) => {}
                    Ok(Ok(None)) | Ok(Err(_)) => *guard = None,
                }
            }
            None => tokio::time::sleep(timeout).await,
        }
    }

    async fn count_after(&self, after: Position) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events
             WHERE (tx_id, global_position) > ($1::text::xid8, $2)",
        )
        .bind(after.tx_id.to_string())
        .bind(after.global_position)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Named positions in the global order (the relay's, a store-fed rebuild's).
#[derive(Debug, Clone)]
pub struct PgCheckpoints {
    pool: PgPool,
}

impl PgCheckpoints {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn load(&self, name: &str) -> Result<Position> {
        let row = sqlx::query(
            "SELECT tx_id::text AS tx_id, global_position FROM checkpoints WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Position::START);
        };
        let tx_text: String = row.try_get("tx_id")?;
        Ok(Position {
            tx_id: tx_text
                .parse()
                .map_err(|_| Error::Corrupt(format!("checkpoint {name}")))?,
            global_position: row.try_get("global_position")?,
        })
    }

    pub async fn save(&self, name: &str, position: Position) -> Result<()> {
        sqlx::query(
            "INSERT INTO checkpoints (name, tx_id, global_position, updated_at)
             VALUES ($1, $2::text::xid8, $3, now())
             ON CONFLICT (name) DO UPDATE
             SET tx_id = EXCLUDED.tx_id, global_position = EXCLUDED.global_position,
                 updated_at = now()",
        )
        .bind(name)
        .bind(position.tx_id.to_string())
        .bind(position.global_position)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The events a keyed command appended earlier (any aggregate), in order.
pub async fn events_by_idempotency_key(
    pool: &PgPool,
    scoped_key: &str,
) -> Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM events
         WHERE (metadata->>'idempotency_key') = $1
         ORDER BY aggregate_type, aggregate_id, sequence"
    );
    let rows = sqlx::query(&sql).bind(scoped_key).fetch_all(pool).await?;
    rows.iter().map(row_to_event).collect()
}

/// One aggregate's history, in sequence order, optionally up to a version.
pub async fn aggregate_history(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    up_to: Option<i64>,
) -> Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM events
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence <= $3
         ORDER BY sequence"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(up_to.unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    rows.iter().map(row_to_event).collect()
}

/// Announces appends on [`APPEND_CHANNEL`] after they commit, coalescing bursts into one NOTIFY
/// every few milliseconds so the relay wakes promptly without a NOTIFY per command. A lost
/// notification only costs latency: readers poll as a fallback.
#[derive(Debug, Clone)]
pub struct AppendNotifier {
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl AppendNotifier {
    /// Starts the background task that sends the notifications.
    pub fn spawn(pool: PgPool) -> Self {
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let signal = wake.clone();
        tokio::spawn(async move {
            loop {
                signal.notified().await;
                if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(APPEND_CHANNEL)
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(error = %e, "append notification failed; readers will poll");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Self { wake }
    }

    /// Called after a commit; never blocks.
    pub fn appended(&self) {
        self.wake.notify_one();
    }
}
