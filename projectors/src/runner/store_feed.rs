//! The store-fed feed: a projection fed straight from the event store in its global order,
//! instead of from Kafka. The embedded mode runs on it, and operators use it to rebuild a read
//! model from PostgreSQL when Kafka's copy is not trusted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_eventstore::publish::to_published;
use chaos_eventstore::{EventLog, Position};
use chaos_schemas::PublishedEvent;
use tokio_util::sync::CancellationToken;

use crate::warehouse::STORE_FEED as FEED;

use super::{FeedOffset, ProjectionSink, ProjectorMetrics, Verdict};

#[derive(Debug, Clone)]
pub struct StoreFeed {
    name: String,
    log: Arc<dyn EventLog>,
    projection: Arc<dyn ProjectionSink>,
    metrics: ProjectorMetrics,
    batch: u32,
    poll: Duration,
    checkpoint: Option<Arc<dyn FeedCheckpoint>>,
}

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
            checkpoint: None,
        }
    }

    /// Events read and applied per batch (default 1000): larger suits sinks with a high cost per
    /// batch (the warehouse's appends).
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
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
        loop {
            if stop.is_cancelled() {
                return Ok(done);
            }
            let stored = self.log.read_after(done.position, self.batch).await?;
            let Some(last) = stored.last().map(|e| e.position) else {
                return Ok(done);
            };
            let mut events: Vec<PublishedEvent> = Vec::with_capacity(stored.len());
            for s in &stored {
                match to_published(s) {
                    Ok(e) => events.push(e),
                    Err(e) => {
                        // Not decodable from the store: record it and carry on, as with Kafka.
                        self.dead_letter(&s.aggregate_id, s.sequence, &e.to_string());
                        done.dead_letters += 1;
                    }
                }
            }
            // The store feed's offset is the next global position (embedded store: `tx_id` 0).
            let checkpoint = [FeedOffset::new(FEED, 0, last.global_position + 1)];
            let spans = super::trace::event_spans(&self.name, &events);
            let verdicts = self.projection.apply_batch(&events, &checkpoint).await?;
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
                        done.dead_letters += 1;
                    }
                }
            }
            done.position = last;
            done.events += stored.len() as u64;
            if let Some(checkpoint) = &self.checkpoint {
                checkpoint.save(last).await?;
            }
            progress(&done);
        }
    }

    /// Follows the store from `from` until `shutdown`, waking on appends.
    pub async fn run(&self, from: Position, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut position = from;
        let mut backoff = Duration::from_millis(50);
        while !shutdown.is_cancelled() {
            let started = Instant::now();
            match self.catch_up_until(position, &shutdown, |_| {}).await {
                Ok(done) => {
                    position = done.position;
                    backoff = Duration::from_millis(50);
                    if done.events > 0 {
                        tracing::debug!(events = done.events, elapsed = ?started.elapsed(), "projected");
                        continue;
                    }
                    let lag = self.log.count_after(position).await.unwrap_or(0);
                    self.metrics
                        .lag_events
                        .with_label_values(&[&self.name, "store", "0"])
                        .set(i64::try_from(lag).unwrap_or(i64::MAX));
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

    fn dead_letter(&self, aggregate_id: &str, sequence: i64, reason: &str) {
        self.metrics
            .dead_letters
            .with_label_values(&[&self.name])
            .inc();
        tracing::error!(projection = %self.name, aggregate_id, sequence, reason, "dead letter");
    }
}
