//! PostgreSQL: schema, global-order reader, checkpoints, command-side lookups.

use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::Row;
use tokio::sync::Mutex;

use crate::{copy_out, Backlog, Error, EventLog, JsonText, Position, Result, StoredEvent};

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

/// A connection idle longer than this is pinged before it is handed out (see [`pool_options`]).
pub const PING_IDLE_AFTER: Duration = Duration::from_secs(10);

/// The pool settings every PostgreSQL user of the backend starts from.
///
/// sqlx pings a connection (a round trip) every time it is taken from the pool and again every
/// time it goes back. Under load the first ping is pure cost: the connection was in use a
/// moment ago. So only a connection idle for [`PING_IDLE_AFTER`] (one PostgreSQL may have
/// dropped meanwhile: a restart, a failover, an idle timeout) is pinged before use; a connection
/// that broke since its last use fails its query, which every caller already treats as the
/// store being unavailable, and sqlx closes it.
pub fn pool_options() -> sqlx::postgres::PgPoolOptions {
    sqlx::postgres::PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IDLE_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// The NOTIFY channel raised after appends to `events`.
pub const APPEND_CHANNEL: &str = "chaos_events_appended";

/// The advisory lock every event append holds (shared, for its transaction) from before its
/// transaction gets an id until it commits: `pg_advisory_xact_lock_shared(APPEND_LOCK)`. Readers
/// find the in-flight appends through it (see [`PgEventLog`]). Persisted in running code on both
/// sides: do not change without a coordinated deploy.
pub const APPEND_LOCK: (i32, i32) = (0x6368_6173, 1); // 'chas', 1; also in the trigger below

#[cfg(test)]
#[test]
fn the_trigger_takes_the_append_lock() {
    let trigger = SCHEMA
        .iter()
        .find(|s| s.contains("FUNCTION chaos_take_append_lock"))
        .unwrap();
    assert!(trigger.contains(&format!(
        "pg_advisory_xact_lock_shared({}, {})",
        APPEND_LOCK.0, APPEND_LOCK.1
    )));
}

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
    // A keyed command's scoped idempotency key, on its first event only (the key is in every
    // event's metadata too, for consumers): the unique index refuses a second command under the
    // same key at the append, so a fresh key costs no lookup (`crate::command`). Until
    // 2026-12-01 the key was indexed as `metadata->>'idempotency_key'` on every row: each insert
    // parsed the metadata twice, and every keyed command read the index before deciding.
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS command_key text",
    // A store from before: mark each key's first event (its first command's), then drop the
    // old index. Runs once (the old index is gone after).
    "DO $$ BEGIN
        IF to_regclass('events_idempotency') IS NOT NULL THEN
            UPDATE events e SET command_key = f.k
            FROM (SELECT DISTINCT ON (metadata->>'idempotency_key')
                         metadata->>'idempotency_key' AS k, aggregate_type, aggregate_id, sequence
                  FROM events WHERE (metadata->>'idempotency_key') IS NOT NULL
                  ORDER BY metadata->>'idempotency_key', tx_id, global_position) f
            WHERE (e.aggregate_type, e.aggregate_id, e.sequence)
                = (f.aggregate_type, f.aggregate_id, f.sequence);
            DROP INDEX events_idempotency;
        END IF;
     END $$",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_command_key ON events (command_key)
        WHERE command_key IS NOT NULL",
    // Our snapshots (`crate::snapshot`): one per aggregate, the newest, tagged with the version
    // of the state's shape so a changed shape is ignored rather than misread.
    "CREATE TABLE IF NOT EXISTS aggregate_snapshots (
        aggregate_type text NOT NULL,
        aggregate_id   text NOT NULL,
        state_version  integer NOT NULL,
        last_sequence  bigint NOT NULL CHECK (last_sequence > 0),
        payload        json NOT NULL,
        taken_at       timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (aggregate_type, aggregate_id)
    )",
    // Values unique across aggregates (`crate::reservations`): character names, guild names.
    "CREATE TABLE IF NOT EXISTS reservations (
        scope          text NOT NULL,
        value_key      text NOT NULL,
        value          text NOT NULL,
        aggregate_type text NOT NULL,
        aggregate_id   text NOT NULL,
        reserved_at    timestamptz NOT NULL DEFAULT now(),
        confirmed      boolean NOT NULL DEFAULT false,
        PRIMARY KEY (scope, value_key)
    )",
    // Character names reserved before the generic reservations existed.
    "DO $$ BEGIN
        IF to_regclass('character_names') IS NOT NULL THEN
            INSERT INTO reservations
                (scope, value_key, value, aggregate_type, aggregate_id, reserved_at, confirmed)
            SELECT 'character-name', name_key, name, 'character', character_id, reserved_at, true
            FROM character_names
            ON CONFLICT DO NOTHING;
        END IF;
     END $$",
    // Streams the relay stopped because one of their events cannot be published
    // (`command-api/src/relay`): nothing of the aggregate from `from_sequence` on is published
    // until an operator resumes it.
    "CREATE TABLE IF NOT EXISTS relay_stopped_streams (
        relay          text NOT NULL,
        aggregate_type text NOT NULL,
        aggregate_id   text NOT NULL,
        from_sequence  bigint NOT NULL,
        reason         text NOT NULL,
        stopped_at     timestamptz NOT NULL DEFAULT now(),
        resume_requested boolean NOT NULL DEFAULT false,
        PRIMARY KEY (relay, aggregate_type, aggregate_id)
    )",
    // Every insert into `events` holds the append lock from before its transaction has an id
    // (a statement-level trigger runs before the first row is written), whoever the writer is:
    // the group committer takes it itself too, but a writer that bypasses it (postgres-es's own
    // persist, a repair script) must not be able to slip past the reader. A transaction that did
    // other writes before inserting events would already have an id: appenders never do.
    "CREATE OR REPLACE FUNCTION chaos_take_append_lock() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
        PERFORM pg_advisory_xact_lock_shared(1667785075, 1);
        RETURN NULL;
     END $$",
    "CREATE OR REPLACE TRIGGER events_append_lock BEFORE INSERT ON events
     FOR EACH STATEMENT EXECUTE FUNCTION chaos_take_append_lock()",
    // The horizon below which every event append has finished (committed or rolled back): the
    // oldest transaction id among appends still in flight, else the next one to be assigned.
    // The snapshot is taken first, so an append that gets its id after it is at or above its
    // xmax, and one that had its id by then is in its `xip` and is seen holding the lock (see
    // PgEventLog for the argument). Appends in other databases of the cluster are ignored.
    //
    // An append's id is read from its backend (`backend_xid`, set in the same step that makes
    // the id visible to snapshots), not from its `transactionid` lock in pg_locks: PostgreSQL
    // takes that lock a moment after the id is assigned, and a horizon computed in between
    // missed the append and let the relay pass its events for good (stop 23: 7 events of one
    // group commit never reached Kafka; decision 39). The backend table is copied once per
    // transaction, so the copy is discarded first: it is read after the snapshot.
    "CREATE OR REPLACE FUNCTION chaos_append_horizon(cls integer, obj integer) RETURNS xid8
     LANGUAGE plpgsql VOLATILE AS $$
     DECLARE
        s pg_snapshot;
        oldest xid8;
     BEGIN
        PERFORM pg_stat_clear_snapshot();
        s := pg_current_snapshot();
        SELECT min(x) INTO oldest
        FROM pg_snapshot_xip(s) AS x
        WHERE (x::text::bigint % 4294967296) IN (
            SELECT b.backend_xid::text::bigint
            FROM pg_locks a
            JOIN pg_stat_get_activity(NULL) b ON b.pid = a.pid
            WHERE a.locktype = 'advisory' AND a.granted AND a.objsubid = 2
              AND a.classid = cls::oid AND a.objid = obj::oid
              AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND b.backend_xid IS NOT NULL);
        RETURN coalesce(oldest, pg_snapshot_xmax(s));
     END $$",
    // Present for postgres-es's snapshot mode; unused: we run event-store mode with snapshots of
    // our own (DESIGN.md 3, `aggregate_snapshots`).
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

/// Most rows a read reserves room for up front (a read's limit can be far above what it finds).
const READ_CAPACITY_HINT: u32 = 65_536;

/// `tx_text`, not `tx_id`: an `ORDER BY tx_id` would bind to a select-list alias of that name and
/// sort the text (so "1000000" before "999999", skipping rows when xids gain a digit).
const SELECT_COLUMNS: &str =
    "tx_id::text AS tx_text, global_position, aggregate_type, aggregate_id, \
     sequence, event_type, event_version, payload::text, metadata::text";

/// A row of [`SELECT_COLUMNS`] (a history page), read by position: by name, each value was a
/// lookup in the row's column map. The global-order reader decodes a binary `COPY` instead
/// ([`crate::copy_out`]).
fn row_to_event(row: &PgRow) -> Result<StoredEvent> {
    let tx_text: String = row.try_get(0)?;
    let tx_id = tx_text
        .parse()
        .map_err(|_| Error::Corrupt(format!("tx_id {tx_text}")))?;
    Ok(StoredEvent {
        position: Position {
            tx_id,
            global_position: row.try_get(1)?,
        },
        aggregate_type: row.try_get(2)?,
        aggregate_id: row.try_get(3)?,
        sequence: row.try_get(4)?,
        event_type: row.try_get(5)?,
        event_version: row.try_get(6)?,
        payload: JsonText::stored(row.try_get(7)?),
        metadata: JsonText::stored(row.try_get(8)?),
    })
}

/// The global-order reader over PostgreSQL.
///
/// Rows are read in `(tx_id, global_position)` order, and only below the *append horizon*: the
/// oldest transaction id among event appends still in flight (else the next id to be assigned).
/// Every append holds [`APPEND_LOCK`] from before its transaction has an id until it commits, so:
/// an append with an id below the horizon had that id when the horizon was computed, and was
/// either still holding the lock then (so the horizon would be at or below it) or already
/// finished. "Had that id" is read where PostgreSQL publishes it, in the backend's own entry
/// (`pg_stat_activity.backend_xid`), not from the transaction-id lock it takes a moment later
/// (decision 39). The rows are read by the next statement, with a snapshot taken after that,
/// so every row below the horizon that will ever exist is already visible: the cursor never
/// passes a row that commits later. Unlike the snapshot's `xmin`, the horizon ignores every other transaction
/// on the cluster — a `pg_dump`, a long analyst query or a migration does not hold the relay back.
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

/// The append horizon (see [`PgEventLog`]), read on `db`: the readers take it on the connection
/// they read the rows on.
pub async fn append_horizon(db: impl sqlx::PgExecutor<'_>) -> Result<u64> {
    let text: String = sqlx::query_scalar("SELECT chaos_append_horizon($1, $2)::text")
        .bind(APPEND_LOCK.0)
        .bind(APPEND_LOCK.1)
        .fetch_one(db)
        .await?;
    text.parse()
        .map_err(|_| Error::Corrupt(format!("append horizon {text}")))
}

#[async_trait]
impl EventLog for PgEventLog {
    async fn read_after(&self, after: Position, limit: u32) -> Result<Vec<StoredEvent>> {
        // Both statements on one connection: one trip through the pool instead of two.
        let mut conn = self.pool.acquire().await?;
        let horizon = append_horizon(&mut *conn).await?;
        // A binary `COPY` of the rows (decision 47). It takes no parameters: the bounds are
        // numbers, written into the statement.
        let Position {
            tx_id,
            global_position,
        } = after;
        let sql = format!(
            "COPY (SELECT {columns} FROM events
                   WHERE (tx_id, global_position) > ('{tx_id}'::xid8, {global_position})
                     AND tx_id < '{horizon}'::xid8
                   ORDER BY events.tx_id, events.global_position
                   LIMIT {limit})
             TO STDOUT (FORMAT binary)",
            columns = copy_out::COLUMNS
        );
        let mut rows = copy_out::CopyRows::with_capacity(limit.min(READ_CAPACITY_HINT) as usize);
        // Rows are decoded as they arrive, while PostgreSQL is still sending the rest.
        let mut copy = conn.copy_out_raw(&sql).await?;
        while let Some(piece) = copy.try_next().await? {
            rows.feed(&piece)?;
        }
        rows.finish()
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
        Ok(self.backlog(after).await?.events)
    }

    async fn backlog(&self, after: Position) -> Result<Backlog> {
        // One transaction (read committed: each statement still sees what committed before it)
        // for a planner setting: this counts the few events after a position near the end, but
        // on a table not yet analysed (a new database's first minute) PostgreSQL estimates the
        // range at a third of the table and plans a parallel scan, whose workers cost 27 ms a
        // call to launch in the bench where the count itself takes 0.3.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL max_parallel_workers_per_gather = 0")
            .execute(&mut *tx)
            .await?;
        let horizon = append_horizon(&mut *tx).await?;
        let row = sqlx::query(
            "SELECT count(*) AS events,
                    count(*) FILTER (WHERE tx_id >= $3::text::xid8) AS held_back,
                    (SELECT extract(epoch FROM max(now() - s.xact_start))::float8
                     FROM pg_locks a JOIN pg_stat_activity s ON s.pid = a.pid
                     WHERE a.locktype = 'advisory' AND a.granted AND a.objsubid = 2
                       AND a.classid = $4::int::oid AND a.objid = $5::int::oid
                       AND a.database = (SELECT oid FROM pg_database
                                         WHERE datname = current_database())) AS oldest
             FROM events
             WHERE (tx_id, global_position) > ($1::text::xid8, $2)",
        )
        .bind(after.tx_id.to_string())
        .bind(after.global_position)
        .bind(horizon.to_string())
        .bind(APPEND_LOCK.0)
        .bind(APPEND_LOCK.1)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let events: i64 = row.try_get("events")?;
        let held_back: i64 = row.try_get("held_back")?;
        let oldest: Option<f64> = row.try_get("oldest")?;
        Ok(Backlog {
            events: u64::try_from(events).unwrap_or(0),
            held_back: u64::try_from(held_back).unwrap_or(0),
            oldest_inflight_append: oldest.map(|s| Duration::from_secs_f64(s.max(0.0))),
        })
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

    /// Saves `name`'s position without waiting for the WAL flush (an asynchronous commit,
    /// decision 53): every reader of a checkpoint does again what follows it (the relay re-sends,
    /// a rebuild re-applies; both are dropped downstream as duplicates), so a position lost to a
    /// crash of PostgreSQL costs a little repeated work, never a gap. The events it points past
    /// were committed, and flushed, before it. Under the contended cast load the relay's
    /// synchronous saves were 17 of the box's 609 fsync calls a second, each waited for.
    pub async fn save(&self, name: &str, position: Position) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Where the command with this scoped idempotency key starts: the stream and sequence of its
/// first event, the one that carries the key as `command_key` (see
/// [`crate::repository::Repository::by_idempotency_key`]).
pub async fn command_first_event(
    pool: &PgPool,
    scoped_key: &str,
) -> Result<Option<(String, String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence FROM events WHERE command_key = $1",
    )
    .bind(scoped_key)
    .fetch_optional(pool)
    .await?)
}

/// One page of an aggregate's history, in sequence order: events after sequence `after`, at most
/// `limit`, none beyond `up_to` when given.
pub async fn history_page(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    after: i64,
    limit: u32,
    up_to: Option<i64>,
) -> Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {SELECT_COLUMNS} FROM events
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 AND sequence <= $4
         ORDER BY sequence
         LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after)
        .bind(up_to.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(row_to_event).collect()
}

/// The stored snapshot of an aggregate, whatever its state version.
pub async fn load_snapshot(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<crate::snapshot::StoredSnapshot>> {
    let row = sqlx::query(
        "SELECT state_version, last_sequence, payload FROM aggregate_snapshots
         WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(crate::snapshot::StoredSnapshot {
            state_version: u32::try_from(row.try_get::<i32, _>("state_version")?).unwrap_or(0),
            last_sequence: u64::try_from(row.try_get::<i64, _>("last_sequence")?).unwrap_or(0),
            payload: row.try_get("payload")?,
        })
    })
    .transpose()
}

/// Stores a snapshot unless a newer one (same state version, higher sequence) is already there.
pub async fn save_snapshot(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    snapshot: &crate::snapshot::StoredSnapshot,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO aggregate_snapshots AS s
             (aggregate_type, aggregate_id, state_version, last_sequence, payload)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
         SET state_version = EXCLUDED.state_version, last_sequence = EXCLUDED.last_sequence,
             payload = EXCLUDED.payload, taken_at = now()
         WHERE s.state_version <> EXCLUDED.state_version
            OR s.last_sequence < EXCLUDED.last_sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(i32::try_from(snapshot.state_version).unwrap_or(i32::MAX))
    .bind(i64::try_from(snapshot.last_sequence).unwrap_or(i64::MAX))
    .bind(&snapshot.payload)
    .execute(pool)
    .await?;
    Ok(())
}

/// Reserves `value` in `scope` for an aggregate; see [`crate::reservations`]. True when the
/// value is (now) the aggregate's.
pub async fn reserve(
    pool: &PgPool,
    request: &crate::reservations::ReservationRequest<'_>,
) -> Result<bool> {
    let reserved: Option<String> = sqlx::query_scalar(
        "INSERT INTO reservations AS r (scope, value_key, value, aggregate_type, aggregate_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (scope, value_key) DO UPDATE
            SET value = EXCLUDED.value, aggregate_type = EXCLUDED.aggregate_type,
                aggregate_id = EXCLUDED.aggregate_id, reserved_at = now()
            WHERE (r.aggregate_type = EXCLUDED.aggregate_type AND r.aggregate_id = EXCLUDED.aggregate_id)
               OR (NOT r.confirmed AND r.reserved_at <= now() - make_interval(secs => $6)
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
    .fetch_optional(pool)
    .await?;
    Ok(reserved.is_some())
}

/// Marks a reservation as used: the aggregate now exists, so it is never taken over.
pub async fn confirm_reservation(
    pool: &PgPool,
    request: &crate::reservations::ReservationRequest<'_>,
) -> Result<()> {
    sqlx::query(
        "UPDATE reservations SET confirmed = true
         WHERE scope = $1 AND value_key = $2 AND aggregate_type = $3 AND aggregate_id = $4",
    )
    .bind(request.scope)
    .bind(request.key())
    .bind(request.aggregate_type)
    .bind(request.aggregate_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Announces appends on [`APPEND_CHANNEL`] after they commit, coalescing bursts into at most one
/// NOTIFY per `interval`, so an idle relay wakes at once without a NOTIFY per command. A lost
/// notification only costs latency: readers poll as a fallback.
///
/// The interval can be as long as the relay's `batch_interval_ms` without delaying it: a relay
/// whose last read found events reads again at that interval without waiting for a
/// notification, so under load it uses none; only a relay that found nothing waits for one, and
/// the first commit after a quiet interval is announced at once (decision 49).
#[derive(Debug, Clone)]
pub struct AppendNotifier {
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl AppendNotifier {
    /// Starts the background task that sends the notifications, at most one per `interval`.
    pub fn spawn(pool: PgPool, interval: Duration) -> Self {
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let signal = wake.clone();
        tokio::spawn(async move {
            // One connection of its own for the notifications (up to 1 / `interval` a second):
            // taking one from the pool and giving it back each time costs two pings. A
            // notification's transaction gets an id and a commit record, which need not wait
            // for the disk (a notification lost in a crash only makes a reader poll), so the
            // connection commits asynchronously; it never goes back to the pool with that
            // setting (detached), and is dropped on a failure and made again at the next one.
            let mut conn: Option<sqlx::PgConnection> = None;
            loop {
                signal.notified().await;
                if conn.is_none() {
                    conn = notifier_connection(&pool).await;
                }
                if let Some(c) = conn.as_mut() {
                    if let Err(e) = notify(c).await {
                        conn = None;
                        tracing::debug!(error = %e, "append notification failed; readers will poll");
                    }
                }
                tokio::time::sleep(interval).await;
            }
        });
        Self { wake }
    }

    /// Called after a commit; never blocks.
    pub fn appended(&self) {
        self.wake.notify_one();
    }
}

async fn notifier_connection(pool: &PgPool) -> Option<sqlx::PgConnection> {
    let made = async {
        let mut conn = pool.acquire().await?.detach();
        sqlx::query("SET synchronous_commit = off")
            .execute(&mut conn)
            .await?;
        Ok::<_, sqlx::Error>(conn)
    };
    match made.await {
        Ok(conn) => Some(conn),
        Err(e) => {
            tracing::debug!(error = %e, "no connection for append notifications; readers will poll");
            None
        }
    }
}

async fn notify(conn: &mut sqlx::PgConnection) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(APPEND_CHANNEL)
        .execute(conn)
        .await
        .map(|_| ())
}
