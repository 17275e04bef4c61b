use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_eventstore::pg::{PgCheckpoints, PgEventLog};
use chaos_eventstore::publish::to_published;
use chaos_eventstore::{EventLog, StoredEvent};
use chaos_schemas::AvroCodec;
use std::collections::VecDeque;

use chaos_eventstore::Position;
use prometheus::IntCounterVec;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{LeaderLock, RelayConfig, RelayMetrics};
use chaos_platform::kafka::KafkaConfig;

/// How often the active relay re-confirms it still holds the lock.
const LOCK_CHECK: Duration = Duration::from_secs(1);
/// How often the lag gauge is refreshed.
const LAG_REFRESH: Duration = Duration::from_secs(2);

/// A batch handed to the producer whose acknowledgements are outstanding.
struct Pending {
    last: Position,
    deliveries: Vec<DeliveryFuture>,
    /// Events per topic, counted as published once acknowledged.
    topics: Vec<(String, u64)>,
    started: Instant,
}

/// Saves the relay's checkpoint in the background: the publishing loop hands it each newly
/// acknowledged position and never waits for the database; positions handed over while a save
/// runs are coalesced into the next one. A crash loses at most the unsaved tail, which is then
/// re-sent (duplicates, never gaps).
struct CheckpointSaver {
    latest: watch::Sender<Position>,
    task: tokio::task::JoinHandle<()>,
}

impl CheckpointSaver {
    fn spawn(
        checkpoints: PgCheckpoints,
        name: String,
        start: Position,
        failures: IntCounterVec,
    ) -> Self {
        let (latest, mut changes) = watch::channel(start);
        let task = tokio::spawn(async move {
            let mut saved = start;
            loop {
                let closed = changes.changed().await.is_err();
                let position = *changes.borrow_and_update();
                if position != saved {
                    match checkpoints.save(&name, position).await {
                        Ok(()) => saved = position,
                        Err(e) => {
                            failures.with_label_values(&["checkpoint"]).inc();
                            tracing::warn!(error = %e, "saving the checkpoint failed; retrying");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            changes.mark_changed();
                            if !closed {
                                continue;
                            }
                        }
                    }
                }
                if closed {
                    return;
                }
            }
        });
        Self { latest, task }
    }

    fn save(&self, position: Position) {
        self.latest.send_replace(position);
    }

    /// Stops the saver; with `save_last`, after saving the last position handed over.
    async fn finish(self, save_last: bool) {
        let Self { latest, task } = self;
        if save_last {
            drop(latest);
            let _ = task.await;
        } else {
            task.abort();
        }
    }
}

pub struct Relay {
    pool: PgPool,
    log: PgEventLog,
    checkpoints: PgCheckpoints,
    kafka: KafkaConfig,
    producer: FutureProducer,
    codec: AvroCodec,
    config: RelayConfig,
    metrics: RelayMetrics,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn producer(kafka: &KafkaConfig) -> anyhow::Result<FutureProducer> {
    let mut config = kafka.client_config();
    // Idempotent, fully acknowledged, ordered per partition even across internal retries.
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "1000000");
    for (k, v) in &kafka.options {
        config.set(k, v);
    }
    config.create().context("creating the Kafka producer")
}

impl Relay {
    pub fn new(
        pool: PgPool,
        kafka: KafkaConfig,
        codec: AvroCodec,
        config: RelayConfig,
        metrics: RelayMetrics,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            log: PgEventLog::new(pool.clone()),
            checkpoints: PgCheckpoints::new(pool.clone()),
            producer: producer(&kafka)?,
            pool,
            kafka,
            codec,
            config,
            metrics,
        })
    }

    /// Publishes while holding the lock; returns on shutdown or when the lock is lost.
    async fn lead(
        &mut self,
        lock: &mut LeaderLock,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let start = self.checkpoints.load(&self.config.checkpoint).await?;
        tracing::info!(position = ?start, "relay active, resuming from checkpoint");
        let saver = CheckpointSaver::spawn(
            self.checkpoints.clone(),
            self.config.checkpoint.clone(),
            start,
            self.metrics.failures.clone(),
        );
        let outcome = self.publish_from(start, &saver, lock, shutdown).await;
        // The last acknowledged position, unless another relay may already be ahead of it.
        let still_leader = lock.still_held().await;
        saver.finish(still_leader).await;
        outcome
    }

    /// The publishing loop. Up to `max_in_flight` batches are handed to the producer before the
    /// oldest one's acknowledgements are awaited, so reading and encoding the next batch overlap
    /// with the broker's round trip; batches are settled strictly in order, and only a settled
    /// batch moves the checkpoint (saved in the background by `saver`).
    async fn publish_from(
        &mut self,
        start: Position,
        saver: &CheckpointSaver,
        lock: &mut LeaderLock,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        // Everything up to `acked` is acknowledged; everything up to `sent` is with the producer.
        let (mut acked, mut sent) = (start, start);
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut lock_checked = Instant::now();
        let mut lag_checked = Instant::now() - LAG_REFRESH;
        let mut backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_cancelled() {
                // Drain: settle what the producer has, so a clean stop re-sends nothing.
                while let Some(batch) = pending.pop_front() {
                    match self.settle(batch).await {
                        Ok(last) => {
                            acked = last;
                            saver.save(acked);
                        }
                        Err(_) => break,
                    }
                }
                return Ok(());
            }
            if lock_checked.elapsed() >= LOCK_CHECK {
                if !lock.still_held().await {
                    anyhow::bail!("lost the relay lock");
                }
                lock_checked = Instant::now();
            }
            if lag_checked.elapsed() >= LAG_REFRESH {
                if let Ok(lag) = self.log.count_after(acked).await {
                    self.metrics
                        .lag_events
                        .set(i64::try_from(lag).unwrap_or(i64::MAX));
                }
                lag_checked = Instant::now();
            }
            if pending.len() < self.config.max_in_flight.max(1) {
                match self.log.read_after(sent, self.config.batch_size).await {
                    Ok(batch) if !batch.is_empty() => match self.send(&batch).await {
                        Ok(handed) => {
                            sent = handed.last;
                            pending.push_back(handed);
                            continue;
                        }
                        Err(e) => {
                            self.metrics.failures.with_label_values(&["produce"]).inc();
                            tracing::warn!(error = %format!("{e:#}"), from = ?acked, "producing a batch failed; re-sending from the last acknowledged event");
                            self.restart_from(&mut pending, &mut sent, acked)?;
                            backoff = self.pause(backoff, shutdown).await;
                            continue;
                        }
                    },
                    Ok(_) => {}
                    Err(e) => {
                        self.metrics.failures.with_label_values(&["read"]).inc();
                        tracing::warn!(error = %e, "reading the event store failed; retrying");
                        backoff = self.pause(backoff, shutdown).await;
                        continue;
                    }
                }
            }
            let Some(oldest) = pending.pop_front() else {
                // Caught up: nothing to read, nothing in flight.
                self.metrics.lag_events.set(0);
                tokio::select! {
                    () = self.log.wait_for_append(Duration::from_millis(self.config.poll_interval_ms)) => {}
                    () = shutdown.cancelled() => {}
                }
                continue;
            };
            match self.settle(oldest).await {
                Ok(last) => {
                    acked = last;
                    saver.save(acked);
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    self.metrics.failures.with_label_values(&["produce"]).inc();
                    tracing::warn!(error = %format!("{e:#}"), from = ?acked, "a batch was not acknowledged; re-sending from the last acknowledged event");
                    self.restart_from(&mut pending, &mut sent, acked)?;
                    backoff = self.pause(backoff, shutdown).await;
                }
            }
        }
    }

    /// Forgets every batch in flight and starts a fresh producer (a failed idempotent producer
    /// may be fenced): publishing resumes after `acked`. Re-sent events are duplicates, never gaps.
    fn restart_from(
        &mut self,
        pending: &mut VecDeque<Pending>,
        sent: &mut Position,
        acked: Position,
    ) -> anyhow::Result<()> {
        pending.clear();
        *sent = acked;
        self.producer = producer(&self.kafka)?;
        Ok(())
    }

    async fn pause(&self, backoff: Duration, shutdown: &CancellationToken) -> Duration {
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => {}
        }
        (backoff * 2).min(Duration::from_secs(5))
    }

    /// Encodes the batch and hands it to the producer, in order, without waiting for acks.
    async fn send(&self, batch: &[StoredEvent]) -> anyhow::Result<Pending> {
        let last = batch.last().context("an empty batch")?.position;
        let mut deliveries = Vec::with_capacity(batch.len());
        let mut topics: Vec<(String, u64)> = Vec::new();
        for stored in batch {
            let event = to_published(stored).with_context(|| {
                format!(
                    "event {}/{}#{} cannot be mapped to its published form",
                    stored.aggregate_type, stored.aggregate_id, stored.sequence
                )
            })?;
            let topic = self.kafka.topic(&event.topic());
            let payload = self.codec.encode(&topic, &event).await?;
            let mut headers = OwnedHeaders::new_with_capacity(8);
            for (key, value) in event.headers() {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                });
            }
            let record = FutureRecord::to(&topic)
                .key(event.key())
                .payload(&payload)
                .headers(headers);
            let delivery = self.producer.send_result(record).map_err(|(e, _)| {
                anyhow::anyhow!(
                    "handing {}#{} to the producer failed: {e}",
                    event.key(),
                    event.envelope.sequence
                )
            })?;
            deliveries.push(delivery);
            match topics.iter_mut().find(|(t, _)| *t == topic) {
                Some((_, n)) => *n += 1,
                None => topics.push((topic, 1)),
            }
        }
        Ok(Pending {
            last,
            deliveries,
            topics,
            started: Instant::now(),
        })
    }

    /// Waits for every acknowledgement of a batch; returns its last position.
    async fn settle(&self, batch: Pending) -> anyhow::Result<Position> {
        for delivery in batch.deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, message))) => anyhow::bail!(
                    "delivery to {} failed: {e}",
                    rdkafka::Message::topic(&message)
                ),
                Err(_) => anyhow::bail!("the producer dropped a delivery"),
            }
        }
        for (topic, n) in &batch.topics {
            self.metrics
                .published
                .with_label_values(&[topic])
                .inc_by(*n);
        }
        self.metrics
            .batch_duration
            .observe(batch.started.elapsed().as_secs_f64());
        Ok(batch.last)
    }

    fn flush(&self) {
        let _ = self.producer.flush(Timeout::After(Duration::from_secs(10)));
    }
}

/// Runs until `shutdown`: stands by until the lock is free, then publishes.
pub async fn run(mut relay: Relay, shutdown: CancellationToken) -> anyhow::Result<()> {
    let retry = Duration::from_millis(relay.config.standby_retry_ms);
    let mut announced_standby = false;
    while !shutdown.is_cancelled() {
        match LeaderLock::try_acquire(&relay.pool, relay.config.lock_key).await {
            Ok(Some(mut lock)) => {
                announced_standby = false;
                relay.metrics.active.set(1);
                let outcome = relay.lead(&mut lock, &shutdown).await;
                relay.metrics.active.set(0);
                relay.flush();
                lock.release().await;
                if let Err(e) = outcome {
                    tracing::warn!(error = %format!("{e:#}"), "relay stepped down");
                }
            }
            Ok(None) => {
                if !announced_standby {
                    tracing::info!("another relay is active; standing by");
                    announced_standby = true;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot reach PostgreSQL for the relay lock"),
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = shutdown.cancelled() => {}
        }
    }
    Ok(())
}
