//! The store-fed feed: a projection fed straight from the event store in its global order,
//! instead of from Kafka. The embedded mode runs on it, and operators use it to rebuild a read
//! model from PostgreSQL when Kafka's copy is not trusted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_eventstore::publish::to_published;
use chaos_eventstore::{EventLog, Position, StoredEvent};
use chaos_schemas::PublishedEvent;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::warehouse::STORE_FEED as FEED;

use super::{FeedOffset, ProjectionSink, ProjectorMetrics, Verdict};

/// A batch read from the store and decoded.
struct Decoded {
    stored: Vec<StoredEvent>,
    events: Vec<PublishedEvent>,
    /// Index in `stored`, and why.
    undecodable: Vec<(usize, String)>,
}

#[derive(Debug, Clone)]
pub struct StoreFeed {
    name: String,
    log: Arc<dyn EventLog>,
    projection: Arc<dyn ProjectionSink>,
    metrics: ProjectorMetrics,
    batch: u32,
    poll: Duration,
    linger: Duration,
    checkpoint: Option<Arc<dyn FeedCheckpoint>>,
    dead_letters: Option<Arc<dyn DeadLetterRecorder>>,
}

/// How often a feed that never runs out of events under load refreshes its lag gauge.
const LAG_REFRESH: Duration = Duration::from_secs(1);

/// Where a store-fed sink without checkpoints of its own resumes (a process manager in the
/// embedded mode): saved after every batch it handled.
#[async_trait::async_trait]
pub trait FeedCheckpoint: Send + Sync + std::fmt::Debug {
    async fn load(&self) -> anyhow::Result<Position>;
    async fn save(&self, position: Position) -> anyhow::Result<()>;
}

/// A named checkpoint in the embedded (SQLite) event store.
#[derive(Debug, Clone)]
pub struct SqliteCheckpoint {
    pub repo: chaos_eventstore::sqlite::SqliteEventRepository,
    pub name: String,
}

#[async_trait::async_trait]
impl FeedCheckpoint for SqliteCheckpoint {
    async fn load(&self) -> anyhow::Result<Position> {
        Ok(self.repo.load_checkpoint(&self.name).await?)
    }
    async fn save(&self, position: Position) -> anyhow::Result<()> {
        Ok(self.repo.save_checkpoint(&self.name, position).await?)
    }
}

/// A named checkpoint kept with the read models it describes (the embedded mode's SQLite read
/// models): the documents and the position they reflect live and die together, so a deleted or
/// replaced read-model file starts again from the first event.
#[derive(Debug, Clone)]
pub struct ReadModelCheckpoint {
    pub store: chaos_readmodel::SqliteStore,
    pub name: String,
}

#[async_trait::async_trait]
impl FeedCheckpoint for ReadModelCheckpoint {
    async fn load(&self) -> anyhow::Result<Position> {
        Ok(self.store.load_checkpoint(&self.name).await?.map_or(
            Position::START,
            |global_position| Position {
                tx_id: 0,
                global_position,
            },
        ))
    }
    async fn save(&self, position: Position) -> anyhow::Result<()> {
        Ok(self
            .store
            .save_checkpoint(&self.name, position.global_position)
            .await?)
    }
}

/// A read-model checkpoint whose name follows the served model version: `name` of the layout
/// served now, looked up at every load and save. After a rebuild's switch the feed saves under
/// the new version's name, which is where a restart resumes and `chaosctl lag` reads (a
/// [`ReadModelCheckpoint`] named at start would keep saving under the old version's).
#[derive(Debug, Clone)]
pub struct ServedCheckpoint {
    pub store: chaos_readmodel::SqliteStore,
    pub served: chaos_readmodel::Served,
    pub name: fn(&chaos_readmodel::Keys) -> String,
}

impl ServedCheckpoint {
    async fn current(&self) -> anyhow::Result<ReadModelCheckpoint> {
        Ok(ReadModelCheckpoint {
            store: self.store.clone(),
            name: (self.name)(&self.served.keys().await?),
        })
    }
}

#[async_trait::async_trait]
impl FeedCheckpoint for ServedCheckpoint {
    async fn load(&self) -> anyhow::Result<Position> {
        self.current().await?.load().await
    }
    async fn save(&self, position: Position) -> anyhow::Result<()> {
        self.current().await?.save(position).await
    }
}

/// A named checkpoint in PostgreSQL (a rebuild from the event store).
#[derive(Debug, Clone)]
pub struct PgCheckpoint {
    pub checkpoints: chaos_eventstore::pg::PgCheckpoints,
    pub name: String,
}

#[async_trait::async_trait]
impl FeedCheckpoint for PgCheckpoint {
    async fn load(&self) -> anyhow::Result<Position> {
        Ok(self.checkpoints.load(&self.name).await?)
    }
    async fn save(&self, position: Position) -> anyhow::Result<()> {
        Ok(self.checkpoints.save(&self.name, position).await?)
    }
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    pub position: Position,
    pub events: u64,
    pub applied: u64,
    pub dead_letters: u64,
}

impl StoreFeed {
    pub fn new(
        name: &str,
        log: Arc<dyn EventLog>,
        projection: Arc<dyn ProjectionSink>,
        metrics: ProjectorMetrics,
    ) -> Self {
        metrics.init(name);
        Self {
            name: name.to_owned(),
            log,
            projection,
            metrics,
            batch: 1000,
            poll: Duration::from_millis(500),
            linger: Duration::ZERO,
            checkpoint: None,
            dead_letters: None,
        }
    }

    /// Records dead letters in `recorder` (the embedded mode has no dead-letter topic) and
    /// applies the redrives operators ask for there (see [`DeadLetterRecorder`]).
    pub fn with_dead_letters(mut self, recorder: Arc<dyn DeadLetterRecorder>) -> Self {
        self.dead_letters = Some(recorder);
        self
    }

    /// Events read and applied per batch (default 1000): larger suits sinks with a high cost per
    /// batch (the warehouse's appends).
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// After catching up with less than a full batch, waits `linger` before reading again
    /// (default: none), so a sink with a high cost per batch writes a few large batches under a
    /// steady load instead of many small ones, at the price of up to `linger` more lag.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Saves the position after every batch to `checkpoint`.
    pub fn with_checkpoint(mut self, checkpoint: Arc<dyn FeedCheckpoint>) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// Where to resume: the saved checkpoint, or the start.
    pub async fn resume_position(&self) -> anyhow::Result<Position> {
        match &self.checkpoint {
            Some(c) => c.load().await,
            None => Ok(Position::START),
        }
    }

    /// Applies everything after `from` up to the store's current end. `progress` is called
    /// after each batch with the running totals (for operator progress bars).
    pub async fn catch_up(
        &self,
        from: Position,
        progress: impl FnMut(&CatchUp),
    ) -> anyhow::Result<CatchUp> {
        self.catch_up_until(from, &CancellationToken::new(), progress)
            .await
    }

    /// As [`Self::catch_up`], but stops after the batch in hand once `stop` is cancelled (a
    /// shutdown during a long catch-up): the position returned is where it stopped.
    pub async fn catch_up_until(
        &self,
        from: Position,
        stop: &CancellationToken,
        mut progress: impl FnMut(&CatchUp),
    ) -> anyhow::Result<CatchUp> {
        let mut done = CatchUp {
            position: from,
            events: 0,
            applied: 0,
            dead_letters: 0,
        };
        // Behind a full batch, three stages overlap: a reader task fetches the batches after
        // it (`ReadAhead`), the next one is decoded and handed to the sink to prepare on the
        // blocking pool, and the one in hand is applied (the sink's writes run elsewhere: a
        // store, the DuckDB writer's thread). A catch-up runs at the pace of the slowest stage,
        // not of their sum. Batches read ahead are dropped unapplied if `stop` comes first;
        // the position only moves past applied batches.
        let mut ahead: Option<Decoded> = None;
        let mut reader: Option<ReadAhead> = None;
        loop {
            if stop.is_cancelled() {
                return Ok(done);
            }
            let Decoded {
                stored,
                events,
                undecodable,
            } = match ahead.take() {
                Some(decoded) => decoded,
                None => {
                    // Read here: any reader before has ended on a batch that was not full.
                    reader = None;
                    decode(
                        self.projection.as_ref(),
                        self.log.read_after(done.position, self.batch).await?,
                    )
                }
            };
            let Some(last) = stored.last().map(|e| e.position) else {
                return Ok(done);
            };
            let full = stored.len() as u64 >= u64::from(self.batch);
            for (i, error) in &undecodable {
                // Not decodable from the store: record it and carry on, as with Kafka.
                let s = &stored[*i];
                self.dead_letter(&s.aggregate_id, s.sequence, error);
                self.record(
                    s.position,
                    &s.aggregate_type,
                    &s.aggregate_id,
                    s.sequence,
                    error,
                )
                .await?;
                done.dead_letters += 1;
            }
            // The store feed's offset is the next global position (embedded store: `tx_id` 0).
            let checkpoint = [FeedOffset::new(FEED, 0, last.global_position + 1)];
            let spans = super::trace::event_spans(&self.name, &events);
            let batch_started = Instant::now();
            let applying = self.projection.apply_batch(&events, &checkpoint);
            let (verdicts, next) = if full {
                // Only behind a full batch is there likely more to read.
                let reader = reader
                    .get_or_insert_with(|| ReadAhead::start(self.log.clone(), last, self.batch));
                let projection = self.projection.clone();
                let reading = async move {
                    let stored = reader.next().await?;
                    let next = tokio::task::spawn_blocking(move || {
                        let next = decode(projection.as_ref(), stored);
                        if !next.events.is_empty() {
                            projection.prepare(&next.events);
                        }
                        next
                    })
                    .await?;
                    anyhow::Ok(next)
                };
                let (verdicts, next) = tokio::join!(applying, reading);
                (verdicts?, Some(next))
            } else {
                (applying.await?, None)
            };
            super::trace::record_verdicts(&spans, &verdicts);
            drop(spans);
            for (event, verdict) in events.iter().zip(verdicts) {
                match verdict {
                    Verdict::Ignored => {}
                    Verdict::Applied => {
                        done.applied += 1;
                        self.metrics.applied.with_label_values(&[&self.name]).inc();
                    }
                    Verdict::Duplicate => {
                        self.metrics
                            .duplicates
                            .with_label_values(&[&self.name])
                            .inc();
                    }
                    Verdict::DeadLetter(reason) => {
                        let sequence = i64::try_from(event.envelope.sequence).unwrap_or(i64::MAX);
                        self.dead_letter(event.key(), sequence, &reason);
                        let position = stored
                            .iter()
                            .find(|s| s.position.global_position == event.envelope.global_position)
                            .map_or(Position::START, |s| s.position);
                        let envelope = &event.envelope;
                        self.record(
                            position,
                            &envelope.aggregate_type,
                            &envelope.aggregate_id,
                            sequence,
                            &reason,
                        )
                        .await?;
                        done.dead_letters += 1;
                    }
                }
            }
            tracing::debug!(feed = %self.name, events = stored.len(), elapsed = ?batch_started.elapsed(), "batch applied");
            done.position = last;
            done.events += stored.len() as u64;
            if let Some(checkpoint) = &self.checkpoint {
                checkpoint.save(last).await?;
            }
            progress(&done);
            // A failed read ahead fails after the applied batch is accounted for.
            if let Some(next) = next {
                ahead = Some(next?);
            }
        }
    }

    /// Follows the store from `from` until `shutdown`, waking on appends.
    pub async fn run(&self, from: Position, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut position = from;
        let mut backoff = Duration::from_millis(50);
        let mut lag_refreshed: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            let started = Instant::now();
            match self.catch_up_until(position, &shutdown, |_| {}).await {
                Ok(done) => {
                    position = done.position;
                    backoff = Duration::from_millis(50);
                    if done.events > 0 {
                        tracing::debug!(feed = %self.name, events = done.events, elapsed = ?started.elapsed(), "projected");
                        // Under a steady load the feed may never find the store drained: the
                        // gauge is refreshed here too, at most every LAG_REFRESH.
                        if lag_refreshed.is_none_or(|at| at.elapsed() >= LAG_REFRESH) {
                            self.refresh_lag(position).await;
                            lag_refreshed = Some(Instant::now());
                        }
                        if done.events < u64::from(self.batch) && !self.linger.is_zero() {
                            tokio::select! {
                                () = tokio::time::sleep(self.linger) => {}
                                () = shutdown.cancelled() => {
                                    // What came in while lingering is applied before stopping
                                    // (one batch at most, so the stop stays bounded): a linger
                                    // must not leave a stopped feed further behind than a
                                    // feed without one.
                                    let last = CancellationToken::new();
                                    if let Err(e) = self
                                        .catch_up_until(position, &last, |_| last.cancel())
                                        .await
                                    {
                                        tracing::warn!(error = %format!("{e:#}"), "the last batch before stopping failed; the next start applies it");
                                    }
                                }
                            }
                        }
                        continue;
                    }
                    if let Err(e) = self.redrive().await {
                        tracing::warn!(error = %format!("{e:#}"), "redriving dead letters failed; will retry");
                    }
                    self.refresh_lag(position).await;
                    lag_refreshed = Some(Instant::now());
                    tokio::select! {
                        () = self.log.wait_for_append(self.poll) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
                Err(e) => {
                    self.metrics.retries.with_label_values(&[&self.name]).inc();
                    tracing::warn!(error = %format!("{e:#}"), "store-fed projection failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        Ok(())
    }

    async fn refresh_lag(&self, position: Position) {
        let lag = self.log.count_after(position).await.unwrap_or(0);
        self.metrics
            .lag_events
            .with_label_values(&[&self.name, "store", "0"])
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
    }

    async fn record(
        &self,
        position: Position,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
        reason: &str,
    ) -> anyhow::Result<()> {
        let Some(recorder) = &self.dead_letters else {
            return Ok(());
        };
        recorder
            .record(&DeadLetter {
                id: 0,
                feed: self.name.clone(),
                position,
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                sequence,
                reason: reason.to_owned(),
            })
            .await
    }

    /// Applies the redrives operators asked for: each dead letter's event is read again from the
    /// store and applied to this feed's sink alone (sinks are idempotent), and the outcome
    /// recorded.
    pub async fn redrive(&self) -> anyhow::Result<u64> {
        let Some(recorder) = &self.dead_letters else {
            return Ok(0);
        };
        let mut done = 0;
        for dead in recorder.redrives(&self.name).await? {
            let before = Position {
                tx_id: dead.position.tx_id,
                global_position: dead.position.global_position - 1,
            };
            let found = self.log.read_after(before, 1).await?;
            let outcome = match found
                .first()
                .filter(|s| s.position == dead.position)
                .map(to_published)
            {
                None => "the event is no longer in the event store".to_owned(),
                Some(Err(e)) => format!("dead-lettered again: {e}"),
                Some(Ok(event)) => {
                    match self
                        .projection
                        .apply_batch(std::slice::from_ref(&event), &[])
                        .await?
                        .pop()
                    {
                        Some(Verdict::Applied) => "applied".to_owned(),
                        Some(Verdict::Duplicate) => "already applied".to_owned(),
                        Some(Verdict::DeadLetter(reason)) => {
                            format!("dead-lettered again: {reason}")
                        }
                        Some(Verdict::Ignored) | None => "ignored by the sink".to_owned(),
                    }
                }
            };
            tracing::info!(projection = %self.name, aggregate_id = %dead.aggregate_id, sequence = dead.sequence, outcome, "dead letter redriven");
            recorder.redriven(dead.id, &outcome).await?;
            done += 1;
        }
        Ok(done)
    }

    fn dead_letter(&self, aggregate_id: &str, sequence: i64, reason: &str) {
        self.metrics
            .dead_letters
            .with_label_values(&[&self.name])
            .inc();
        tracing::error!(projection = %self.name, aggregate_id, sequence, reason, "dead letter");
    }
}

/// A dead letter of a store-fed feed, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record's id (0 before it is recorded).
    pub id: i64,
    /// The feed (projection) that could not apply it.
    pub feed: String,
    /// The event's place in the store's global order.
    pub position: Position,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub reason: String,
}

/// A persistent record of a store-fed feed's dead letters (the embedded mode has no dead-letter
/// topic), and of the redrives operators ask for (`chaosctl dead-letters redrive --embedded`).
/// A dead letter is recorded before the feed's checkpoint moves past it.
#[async_trait::async_trait]
pub trait DeadLetterRecorder: Send + Sync + std::fmt::Debug {
    /// Records a dead letter; recording the same feed and position again updates its reason.
    async fn record(&self, dead: &DeadLetter) -> anyhow::Result<()>;
    /// The dead letters of `feed` an operator asked to redrive and not redriven yet.
    async fn redrives(&self, feed: &str) -> anyhow::Result<Vec<DeadLetter>>;
    /// Records what a redrive did.
    async fn redriven(&self, id: i64, outcome: &str) -> anyhow::Result<()>;
}

/// The dead-letter record in the embedded event store (`store_dead_letters` in `events.db`).
#[derive(Debug, Clone)]
pub struct SqliteDeadLetters {
    pool: sqlx::SqlitePool,
}

/// One row of [`SqliteDeadLetters`], as operators see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedDeadLetter {
    pub dead: DeadLetter,
    /// Unix seconds.
    pub recorded_at: f64,
    pub redrive_requested: bool,
    pub redriven_at: Option<f64>,
    pub redrive_outcome: Option<String>,
}

impl SqliteDeadLetters {
    /// Creates the table if needed. The table's name and columns are read by chaosctl: do not
    /// change them.
    pub async fn new(pool: sqlx::SqlitePool) -> anyhow::Result<Self> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS store_dead_letters (
                id                INTEGER PRIMARY KEY AUTOINCREMENT,
                feed              TEXT NOT NULL,
                tx_id             INTEGER NOT NULL,
                global_position   INTEGER NOT NULL,
                aggregate_type    TEXT NOT NULL,
                aggregate_id      TEXT NOT NULL,
                sequence          INTEGER NOT NULL,
                reason            TEXT NOT NULL,
                recorded_at       REAL NOT NULL DEFAULT (unixepoch('subsec')),
                redrive_requested INTEGER NOT NULL DEFAULT 0,
                redriven_at       REAL,
                redrive_outcome   TEXT,
                UNIQUE (feed, global_position)
            )",
        )
        .execute(&pool)
        .await?;
        Ok(Self { pool })
    }

    /// Every recorded dead letter (of `feed` if given), oldest first.
    pub async fn list(&self, feed: Option<&str>) -> anyhow::Result<Vec<RecordedDeadLetter>> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT id, feed, tx_id, global_position, aggregate_type, aggregate_id, sequence,
                    reason, recorded_at, redrive_requested, redriven_at, redrive_outcome
             FROM store_dead_letters WHERE ?1 IS NULL OR feed = ?1 ORDER BY id",
        )
        .bind(feed)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecordedDeadLetter {
                    dead: DeadLetter {
                        id: r.try_get("id")?,
                        feed: r.try_get("feed")?,
                        position: Position {
                            tx_id: u64::try_from(r.try_get::<i64, _>("tx_id")?).unwrap_or(0),
                            global_position: r.try_get("global_position")?,
                        },
                        aggregate_type: r.try_get("aggregate_type")?,
                        aggregate_id: r.try_get("aggregate_id")?,
                        sequence: r.try_get("sequence")?,
                        reason: r.try_get("reason")?,
                    },
                    recorded_at: r.try_get("recorded_at")?,
                    redrive_requested: r.try_get::<i64, _>("redrive_requested")? != 0,
                    redriven_at: r.try_get("redriven_at")?,
                    redrive_outcome: r.try_get("redrive_outcome")?,
                })
            })
            .collect()
    }

    /// Asks for the redrive of dead letter `id` unless it was redriven or asked for already;
    /// true if this call asked.
    pub async fn request_redrive(&self, id: i64) -> anyhow::Result<bool> {
        Ok(sqlx::query(
            "UPDATE store_dead_letters SET redrive_requested = 1
             WHERE id = ? AND redrive_requested = 0 AND redriven_at IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }
}

#[async_trait::async_trait]
impl DeadLetterRecorder for SqliteDeadLetters {
    async fn record(&self, dead: &DeadLetter) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO store_dead_letters
                 (feed, tx_id, global_position, aggregate_type, aggregate_id, sequence, reason)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (feed, global_position) DO UPDATE SET reason = excluded.reason",
        )
        .bind(&dead.feed)
        .bind(i64::try_from(dead.position.tx_id).unwrap_or(i64::MAX))
        .bind(dead.position.global_position)
        .bind(&dead.aggregate_type)
        .bind(&dead.aggregate_id)
        .bind(dead.sequence)
        .bind(&dead.reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn redrives(&self, feed: &str) -> anyhow::Result<Vec<DeadLetter>> {
        Ok(self
            .list(Some(feed))
            .await?
            .into_iter()
            .filter(|r| r.redrive_requested && r.redriven_at.is_none())
            .map(|r| r.dead)
            .collect())
    }

    async fn redriven(&self, id: i64, outcome: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE store_dead_letters SET redriven_at = unixepoch('subsec'), redrive_outcome = ?
             WHERE id = ?",
        )
        .bind(outcome)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Decodes the events `projection` wants; the others are left out (their verdict is
/// `Ignored`), the undecodable ones named by their index in `stored`.
fn decode(projection: &dyn ProjectionSink, stored: Vec<StoredEvent>) -> Decoded {
    let mut events: Vec<PublishedEvent> = Vec::with_capacity(stored.len());
    let mut undecodable = Vec::new();
    for (i, s) in stored.iter().enumerate() {
        if !projection.wants(&s.aggregate_type, &s.event_type) {
            continue;
        }
        match to_published(s) {
            Ok(e) => events.push(e),
            Err(e) => undecodable.push((i, e.to_string())),
        }
    }
    Decoded {
        stored,
        events,
        undecodable,
    }
}

/// A task reading the store's batches after a position, one after another, a batch ahead of
/// the one taken; it ends after a batch that is not full (the store's end, for now) or a failed
/// read, and is stopped when dropped.
struct ReadAhead {
    batches: tokio::sync::mpsc::Receiver<anyhow::Result<Vec<StoredEvent>>>,
    _task: AbortOnDropHandle<()>,
}

impl ReadAhead {
    fn start(log: Arc<dyn EventLog>, after: Position, batch: u32) -> Self {
        let (tx, batches) = tokio::sync::mpsc::channel(1);
        let task = AbortOnDropHandle::new(tokio::spawn(async move {
            let mut at = after;
            loop {
                let read = log.read_after(at, batch).await.map_err(anyhow::Error::from);
                let more = match &read {
                    Ok(stored) if stored.len() >= batch as usize => {
                        at = stored.last().map_or(at, |e| e.position);
                        true
                    }
                    _ => false,
                };
                if tx.send(read).await.is_err() || !more {
                    return;
                }
            }
        }));
        Self {
            batches,
            _task: task,
        }
    }

    /// The next batch: after the one taken before (`after` for the first).
    async fn next(&mut self) -> anyhow::Result<Vec<StoredEvent>> {
        self.batches
            .recv()
            .await
            .unwrap_or_else(|| Err(anyhow::anyhow!("the store's reader stopped")))
    }
}
