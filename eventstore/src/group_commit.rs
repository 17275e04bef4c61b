//! Group commit: the appends of many concurrent commands written by one statement.
//!
//! postgres-es writes each command in its own transaction, one `INSERT` per event: BEGIN, n
//! inserts, COMMIT, and a WAL flush per command. Under load most of PostgreSQL's and the
//! command API's time went to that per-transaction work, not to the rows. [`GroupCommitRepository`]
//! keeps postgres-es for everything it reads and hands appends to a [`GroupCommitter`]: commands
//! waiting to be written queue up while the previous batch is being flushed, and the next writer
//! takes all of them in one `INSERT … SELECT FROM unnest(…)` — one round trip, one transaction,
//! one WAL flush, still `synchronous_commit = on`.
//!
//! Atomicity and optimistic concurrency are unchanged for each command: a batch is one
//! transaction, so either all its commands' events are stored or none; the primary key
//! `(aggregate_type, aggregate_id, sequence)` still refuses a stale append. When a batch is
//! refused for a key violation, each of its commands is written again on its own so that only the
//! command that lost the race sees the conflict. Two commands for the same aggregate never share
//! a batch: the later one is written after the earlier one (where it may then conflict, exactly as
//! it would have without batching).
//!
//! The batching is the same for every database; only the writing of one batch differs
//! ([`BatchWriter`]): PostgreSQL's is one statement ([`PgBatchWriter`]), the embedded SQLite
//! store's one `BEGIN IMMEDIATE` transaction with a single writer (`crate::sqlite`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::pg::AppendNotifier;

/// How the committer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// Writers with a batch in flight at once (each holds one pool connection while writing).
    pub writers: usize,
    /// Upper bound on the events written by one statement.
    pub max_batch_events: usize,
    /// Appends waiting for a writer before callers are made to wait for room.
    pub queue: usize,
    /// PostgreSQL: the least time between two announcements of commits to the relay's listener
    /// (`crate::pg::AppendNotifier`).
    pub notify_interval: Duration,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        Self {
            writers: 3,
            max_batch_events: 1024,
            queue: 8192,
            notify_interval: Duration::from_millis(20),
        }
    }
}

/// What operators watch of the group commit (registered in the process's registry).
#[derive(Debug, Clone)]
pub struct AppendMetrics {
    /// Events per statement: how much batching the load produces.
    pub batch_events: Histogram,
    /// Time to write one batch (one round trip and one WAL flush).
    pub batch_seconds: Histogram,
    /// Batches refused for a key violation and re-written keeping their winners.
    pub batches_split: IntCounter,
}

impl AppendMetrics {
    /// Registers the metrics; panics if they are already registered (a programming error).
    pub fn new(registry: &Registry) -> Self {
        let batch_events = Histogram::with_opts(
            HistogramOpts::new(
                "chaos_eventstore_append_batch_events",
                "Events written per group-commit statement",
            )
            .buckets(vec![
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
            ]),
        )
        .expect("valid metric");
        let batch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "chaos_eventstore_append_batch_seconds",
                "Time to write one group-commit batch",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
        )
        .expect("valid metric");
        let batches_split = IntCounter::new(
            "chaos_eventstore_append_batches_split_total",
            "Group-commit batches refused for a key violation and re-written keeping their winners",
        )
        .expect("valid metric");
        for collector in [
            Box::new(batch_events.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(batch_seconds.clone()),
            Box::new(batches_split.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered twice");
        }
        Self {
            batch_events,
            batch_seconds,
            batches_split,
        }
    }
}

/// One event row, ready to bind.
#[derive(Debug, Clone)]
pub struct Row {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// JSON text.
    pub payload: String,
    /// JSON text.
    pub metadata: String,
    /// The command's scoped idempotency key, on the first row of a keyed command only: a
    /// unique index refuses a second command under the same key (see `crate::command`).
    pub command_key: Option<String>,
}

/// Why a batch was not written; cloned to every command of a failed batch.
#[derive(Debug, Clone)]
pub enum Failure {
    /// A row's (aggregate type, id, sequence) is taken: somebody's append is stale.
    Conflict,
    Unavailable(String),
}

/// Writes one batch of rows atomically: all of them in one transaction, or none.
#[async_trait::async_trait]
pub trait BatchWriter: Send + Sync + 'static {
    async fn write(&self, rows: &[&Row]) -> Result<(), Failure>;

    /// Writes several commands' rows after [`Self::write`] refused them together for a key
    /// violation: each command is stored whole or not at all, the winners are kept, and the
    /// answer says per command whether it was stored (`false`: it lost a race, a conflict).
    /// The default writes each command on its own.
    async fn write_each(&self, commands: &[Vec<&Row>]) -> Result<Vec<bool>, Failure> {
        let mut stored = Vec::with_capacity(commands.len());
        for rows in commands {
            match self.write(rows).await {
                Ok(()) => stored.push(true),
                Err(Failure::Conflict) => stored.push(false),
                Err(e) => return Err(e),
            }
        }
        Ok(stored)
    }
}

/// PostgreSQL: one `INSERT … SELECT FROM unnest(…)` statement, hence one transaction.
#[derive(Debug)]
pub struct PgBatchWriter {
    pool: PgPool,
    /// Connections kept between batches, with when each was last used (at most one per writer
    /// task). Going back to the pool and out again costs two pings (round trips) per batch;
    /// a connection kept here is pinged only after [`crate::pg::PING_IDLE_AFTER`] unused.
    held: std::sync::Mutex<Vec<(PoolConnection<Postgres>, Instant)>>,
}

impl PgBatchWriter {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            held: std::sync::Mutex::default(),
        }
    }

    async fn connection(&self) -> Result<PoolConnection<Postgres>, Failure> {
        let kept = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        if let Some((mut conn, used)) = kept {
            if used.elapsed() < crate::pg::PING_IDLE_AFTER
                || sqlx::Connection::ping(&mut *conn).await.is_ok()
            {
                return Ok(conn);
            }
            conn.close_on_drop();
        }
        self.pool.acquire().await.map_err(|e| classify(&e))
    }

    /// Keeps `conn` for the next batch unless its statement failed for another reason than a
    /// key violation (it may be broken: back to the pool, which tests it).
    fn keep<T>(&self, conn: PoolConnection<Postgres>, outcome: &Result<T, Failure>) {
        if matches!(outcome, Ok(_) | Err(Failure::Conflict)) {
            self.held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((conn, Instant::now()));
        }
    }
}

#[async_trait::async_trait]
impl BatchWriter for PgBatchWriter {
    async fn write(&self, rows: &[&Row]) -> Result<(), Failure> {
        let mut conn = self.connection().await?;
        let outcome = insert(&mut conn, rows).await;
        self.keep(conn, &outcome);
        outcome
    }

    /// One transaction: insert every row, skipping taken keys; a command whose rows were not all
    /// inserted lost its race, and the rows of it that were inserted are deleted again before the
    /// commit (never visible to anyone). Winners are committed with one WAL flush.
    async fn write_each(&self, commands: &[Vec<&Row>]) -> Result<Vec<bool>, Failure> {
        let all: Vec<&Row> = commands.iter().flatten().copied().collect();
        let mut tx = self.pool.begin().await.map_err(|e| classify(&e))?;
        let inserted: Vec<(String, String, i64)> = sqlx::query_as(&format!(
            "{INSERT_ROWS} ON CONFLICT DO NOTHING
             RETURNING aggregate_type, aggregate_id, sequence"
        ))
        .bind(text(&all, |r| &r.aggregate_type))
        .bind(text(&all, |r| &r.aggregate_id))
        .bind(all.iter().map(|r| r.sequence).collect::<Vec<i64>>())
        .bind(text(&all, |r| &r.event_type))
        .bind(text(&all, |r| &r.event_version))
        .bind(text(&all, |r| &r.payload))
        .bind(text(&all, |r| &r.metadata))
        .bind(
            all.iter()
                .map(|r| r.command_key.as_deref())
                .collect::<Vec<Option<&str>>>(),
        )
        .bind(crate::pg::APPEND_LOCK.0)
        .bind(crate::pg::APPEND_LOCK.1)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| classify(&e))?;
        let inserted: HashSet<(String, String, i64)> = inserted.into_iter().collect();
        let key = |r: &Row| (r.aggregate_type.clone(), r.aggregate_id.clone(), r.sequence);
        let mut stored = Vec::with_capacity(commands.len());
        let mut undo: Vec<&Row> = Vec::new();
        for rows in commands {
            let won = rows.iter().all(|r| inserted.contains(&key(r)));
            if !won {
                undo.extend(rows.iter().filter(|r| inserted.contains(&key(r))));
            }
            stored.push(won);
        }
        if !undo.is_empty() {
            sqlx::query(
                "DELETE FROM events e USING unnest($1::text[], $2::text[], $3::bigint[]) AS u(t, i, s)
                 WHERE e.aggregate_type = u.t AND e.aggregate_id = u.i AND e.sequence = u.s",
            )
            .bind(text(&undo, |r| &r.aggregate_type))
            .bind(text(&undo, |r| &r.aggregate_id))
            .bind(undo.iter().map(|r| r.sequence).collect::<Vec<i64>>())
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(&e))?;
        }
        tx.commit().await.map_err(|e| classify(&e))?;
        Ok(stored)
    }
}

impl From<Failure> for PersistenceError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Conflict => PersistenceError::OptimisticLockError,
            Failure::Unavailable(m) => PersistenceError::ConnectionError(m.into()),
        }
    }
}

/// A unique violation is a conflict (PostgreSQL and SQLite alike); anything else an outage.
pub fn classify(e: &sqlx::Error) -> Failure {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Failure::Conflict,
        other => Failure::Unavailable(other.to_string()),
    }
}

#[derive(Debug)]
struct Append {
    rows: Vec<Row>,
    reply: oneshot::Sender<Result<(), Failure>>,
}

impl Append {
    fn aggregate(&self) -> Option<(&str, &str)> {
        self.rows
            .first()
            .map(|r| (r.aggregate_type.as_str(), r.aggregate_id.as_str()))
    }
}

/// Writes the appends of concurrent commands together (see the module documentation).
#[derive(Debug, Clone)]
pub struct GroupCommitter {
    queue: mpsc::Sender<Append>,
}

impl GroupCommitter {
    /// Starts `config.writers` writer tasks on PostgreSQL; `notifier` announces commits.
    pub fn postgres(
        pool: PgPool,
        config: GroupCommitConfig,
        notifier: Option<AppendNotifier>,
        metrics: Option<AppendMetrics>,
    ) -> Self {
        let committed = notifier.map(|n| Arc::new(move || n.appended()) as Committed);
        Self::spawn(
            Arc::new(PgBatchWriter::new(pool)),
            config,
            committed,
            metrics,
        )
    }

    /// Starts `config.writers` writer tasks over `sink`; `committed` runs after every commit.
    /// They stop when every handle is dropped.
    pub fn spawn(
        sink: Arc<dyn BatchWriter>,
        config: GroupCommitConfig,
        committed: Option<Committed>,
        metrics: Option<AppendMetrics>,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(config.queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..config.writers.max(1) {
            let writer = Writer {
                sink: sink.clone(),
                receiver: receiver.clone(),
                max_batch_events: config.max_batch_events.max(1),
                committed: committed.clone(),
                metrics: metrics.clone(),
            };
            tokio::spawn(writer.run());
        }
        Self { queue }
    }

    /// Appends one command's events atomically; they must all belong to one aggregate.
    pub async fn append(
        &self,
        aggregate_type: &str,
        events: &[SerializedEvent],
    ) -> Result<(), PersistenceError> {
        if events.is_empty() {
            return Ok(());
        }
        let command_key = events[0]
            .metadata
            .get(crate::pg::META_IDEMPOTENCY_KEY)
            .and_then(Value::as_str)
            .map(str::to_owned);
        let rows = events
            .iter()
            .zip(std::iter::once(command_key).chain(std::iter::repeat(None)))
            .map(|(e, command_key)| {
                Ok(Row {
                    aggregate_type: aggregate_type.to_owned(),
                    aggregate_id: e.aggregate_id.clone(),
                    sequence: i64::try_from(e.sequence)
                        .map_err(|err| PersistenceError::UnknownError(Box::new(err)))?,
                    event_type: e.event_type.clone(),
                    event_version: e.event_version.clone(),
                    payload: serde_json::to_string(&e.payload)?,
                    metadata: serde_json::to_string(&e.metadata)?,
                    command_key,
                })
            })
            .collect::<Result<Vec<_>, PersistenceError>>()?;
        self.append_rows(rows).await
    }

    /// Appends one command's rows atomically (all of one aggregate, in sequence order, the
    /// command's key on the first): what [`Self::append`] does after encoding, for a caller that
    /// encodes its events straight to text (`crate::command`).
    pub async fn append_rows(&self, rows: Vec<Row>) -> Result<(), PersistenceError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        let closed = || PersistenceError::ConnectionError("the event writer has stopped".into());
        self.queue
            .send(Append { rows, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?.map_err(Into::into)
    }
}

/// Runs after every commit (wakes readers).
pub type Committed = Arc<dyn Fn() + Send + Sync>;

struct Writer {
    sink: Arc<dyn BatchWriter>,
    receiver: Arc<Mutex<mpsc::Receiver<Append>>>,
    max_batch_events: usize,
    committed: Option<Committed>,
    metrics: Option<AppendMetrics>,
}

impl Writer {
    async fn run(self) {
        while let Some(batch) = self.next_batch().await {
            for round in rounds(batch) {
                self.write(round).await;
            }
        }
    }

    /// Waits for one append, then takes whatever else is already waiting, up to the bound.
    async fn next_batch(&self) -> Option<Vec<Append>> {
        let mut receiver = self.receiver.lock().await;
        let first = receiver.recv().await?;
        let mut events = first.rows.len();
        let mut batch = vec![first];
        while events < self.max_batch_events {
            match receiver.try_recv() {
                Ok(next) => {
                    events += next.rows.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        Some(batch)
    }

    async fn write(&self, batch: Vec<Append>) {
        let rows: Vec<&Row> = batch.iter().flat_map(|a| &a.rows).collect();
        let started = std::time::Instant::now();
        let result = self.sink.write(&rows).await;
        if let Some(m) = &self.metrics {
            m.batch_events.observe(rows.len() as f64);
            m.batch_seconds.observe(started.elapsed().as_secs_f64());
        }
        match result {
            Ok(()) => {
                self.committed();
                for append in batch {
                    let _ = append.reply.send(Ok(()));
                }
            }
            Err(Failure::Conflict) if batch.len() > 1 => {
                // Somebody's append is stale: keep the winners, refuse only the losers.
                if let Some(m) = &self.metrics {
                    m.batches_split.inc();
                }
                let commands: Vec<Vec<&Row>> =
                    batch.iter().map(|a| a.rows.iter().collect()).collect();
                match self.sink.write_each(&commands).await {
                    Ok(stored) => {
                        if stored.contains(&true) {
                            self.committed();
                        }
                        for (append, won) in batch.into_iter().zip(stored) {
                            let _ = append.reply.send(if won {
                                Ok(())
                            } else {
                                Err(Failure::Conflict)
                            });
                        }
                    }
                    Err(failure) => {
                        for append in batch {
                            let _ = append.reply.send(Err(failure.clone()));
                        }
                    }
                }
            }
            Err(failure) => {
                for append in batch {
                    let _ = append.reply.send(Err(failure.clone()));
                }
            }
        }
    }

    fn committed(&self) {
        if let Some(committed) = &self.committed {
            committed();
        }
    }
}

/// Splits a batch so that no aggregate appears twice in one round, keeping arrival order per
/// aggregate.
fn rounds(batch: Vec<Append>) -> Vec<Vec<Append>> {
    let mut rounds: Vec<Vec<Append>> = Vec::new();
    let mut members: Vec<HashSet<(String, String)>> = Vec::new();
    for append in batch {
        let key = append
            .aggregate()
            .map(|(t, i)| (t.to_owned(), i.to_owned()))
            .unwrap_or_default();
        // The first round after the last one holding this aggregate.
        let after = members
            .iter()
            .rposition(|m| m.contains(&key))
            .map_or(0, |i| i + 1);
        if after == rounds.len() {
            rounds.push(Vec::new());
            members.push(HashSet::new());
        }
        members[after].insert(key);
        rounds[after].push(append);
    }
    rounds
}

/// The insert every append uses: the rows as arrays, and first (a one-time filter, before any row
/// is written and so before the transaction has an id) the shared append lock that tells readers
/// an append is in flight (`crate::pg::APPEND_LOCK`, see `crate::pg::PgEventLog`).
const INSERT_ROWS: &str = "INSERT INTO events
         (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
          command_key)
     SELECT t, i, s, et, ev, p::json, m::json, k
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                 $6::text[], $7::text[], $8::text[]) AS r(t, i, s, et, ev, p, m, k)
     WHERE (SELECT pg_advisory_xact_lock_shared($9, $10)) IS NOT NULL";

fn text<'a>(rows: &[&'a Row], f: fn(&'a Row) -> &'a str) -> Vec<&'a str> {
    rows.iter().map(|r| f(r)).collect()
}

/// One statement, hence one transaction, for every row.
async fn insert(conn: &mut PgConnection, rows: &[&Row]) -> Result<(), Failure> {
    sqlx::query(INSERT_ROWS)
        .bind(text(rows, |r| &r.aggregate_type))
        .bind(text(rows, |r| &r.aggregate_id))
        .bind(rows.iter().map(|r| r.sequence).collect::<Vec<i64>>())
        .bind(text(rows, |r| &r.event_type))
        .bind(text(rows, |r| &r.event_version))
        .bind(text(rows, |r| &r.payload))
        .bind(text(rows, |r| &r.metadata))
        .bind(
            rows.iter()
                .map(|r| r.command_key.as_deref())
                .collect::<Vec<Option<&str>>>(),
        )
        .bind(crate::pg::APPEND_LOCK.0)
        .bind(crate::pg::APPEND_LOCK.1)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|e| classify(&e))
}

/// postgres-es for reads, the [`GroupCommitter`] for appends.
#[derive(Clone)]
pub struct GroupCommitRepository {
    reads: Arc<PostgresEventRepository>,
    committer: GroupCommitter,
}

impl std::fmt::Debug for GroupCommitRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitRepository")
            .field("committer", &self.committer)
            .finish_non_exhaustive()
    }
}

impl GroupCommitRepository {
    pub fn new(pool: PgPool, committer: GroupCommitter) -> Self {
        Self {
            reads: Arc::new(PostgresEventRepository::new(pool)),
            committer,
        }
    }

    /// See [`GroupCommitter::append_rows`].
    pub async fn append_rows(&self, rows: Vec<Row>) -> Result<(), PersistenceError> {
        self.committer.append_rows(rows).await
    }
}

impl PersistedEventRepository for GroupCommitRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.reads.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.reads
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.reads.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match snapshot_update {
            // Event-store mode never updates snapshots; other modes keep postgres-es's writer.
            Some(_) => self.reads.persist::<A>(events, snapshot_update).await,
            None => self.committer.append(A::TYPE, events).await,
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.reads.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.reads.stream_all_events::<A>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(id: &str) -> Append {
        let (reply, _) = oneshot::channel();
        Append {
            rows: vec![Row {
                aggregate_type: "character".into(),
                aggregate_id: id.into(),
                sequence: 1,
                event_type: "X".into(),
                event_version: "1".into(),
                payload: "{}".into(),
                metadata: "{}".into(),
                command_key: None,
            }],
            reply,
        }
    }

    fn ids(rounds: &[Vec<Append>]) -> Vec<Vec<String>> {
        rounds
            .iter()
            .map(|r| r.iter().map(|a| a.rows[0].aggregate_id.clone()).collect())
            .collect()
    }

    #[test]
    fn an_aggregate_never_appears_twice_in_a_round_and_keeps_its_order() {
        let batch = ["a", "b", "a", "c", "a", "b", "d"].map(append).into();
        assert_eq!(
            ids(&rounds(batch)),
            vec![vec!["a", "b", "c", "d"], vec!["a", "b"], vec!["a"]]
        );
    }

    #[test]
    fn distinct_aggregates_share_one_round() {
        let batch = ["a", "b", "c"].map(append).into();
        assert_eq!(ids(&rounds(batch)), vec![vec!["a", "b", "c"]]);
    }
}
