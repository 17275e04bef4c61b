use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_eventstore::pg::{PgCheckpoints, PgEventLog};
use chaos_eventstore::publish::to_published;
use chaos_eventstore::{EventLog, Position, StoredEvent};
use chaos_platform::telemetry;
use chaos_schemas::{AvroCodec, PublishedEvent};
use futures::future::try_join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::streams::StoppedStreams;
use super::{LeaderLock, RelayConfig, RelayMetrics};
use chaos_platform::kafka::KafkaConfig;

/// How often the active relay re-confirms it still holds the lock.
const LOCK_CHECK: Duration = Duration::from_secs(1);
/// How often the lag gauge is refreshed.
const LAG_REFRESH: Duration = Duration::from_secs(2);

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

/// An event ready for Kafka.
struct Outgoing {
    topic: String,
    event: PublishedEvent,
    payload: Vec<u8>,
}

/// A batch read from the store and ready for Kafka.
struct Batch {
    outgoing: Vec<Outgoing>,
    /// The position of the last event read (published or held back): the next checkpoint.
    last: Position,
    read: usize,
}

/// A failure before producing, with the `chaos_relay_failures_total` stage it counts under.
struct StageError {
    stage: &'static str,
    error: anyhow::Error,
}

/// What became of mapping and encoding one stored event.
enum Prepared {
    Ready(Box<Outgoing>),
    /// It can never be published as it is: its stream stops here.
    Poison(String),
}

impl Relay {
    pub fn new(
        pool: PgPool,
        kafka: KafkaConfig,
        codec: AvroCodec,
        config: RelayConfig,
        metrics: RelayMetrics,
    ) -> anyhow::Result<Self> {
        // Exported at 0 from the start, so rate() sees the first events published.
        for topic in chaos_schemas::registry::topics() {
            metrics.published.with_label_values(&[&kafka.topic(&topic)]);
        }
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
        let mut position = self.checkpoints.load(&self.config.checkpoint).await?;
        let mut stopped = StoppedStreams::load(self.pool.clone(), &self.config.checkpoint).await?;
        self.metrics.stopped_streams.set(stopped.len() as i64);
        tracing::info!(
            ?position,
            stopped_streams = stopped.len(),
            "relay active, resuming from checkpoint"
        );
        let mut lock_checked = Instant::now();
        // Due at once; `checked_sub` because an Instant cannot go back before the machine's boot.
        let mut lag_checked = Instant::now()
            .checked_sub(LAG_REFRESH)
            .unwrap_or_else(Instant::now);
        let mut backoff = Duration::from_millis(100);
        // The next batch of a backlog, read and prepared while Kafka acknowledged the one
        // before it.
        let mut ahead: Option<Batch> = None;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            if lock_checked.elapsed() >= LOCK_CHECK {
                if !lock.still_held().await {
                    anyhow::bail!("lost the relay lock");
                }
                lock_checked = Instant::now();
                match self.resume_streams(&mut stopped, position).await {
                    Ok(0) => {}
                    // The batch read ahead skipped the resumed streams: read it again.
                    Ok(_) => ahead = None,
                    Err(e) => {
                        ahead = None;
                        tracing::warn!(error = %format!("{e:#}"), "resuming stopped streams failed; will retry");
                    }
                }
            }
            if lag_checked.elapsed() >= LAG_REFRESH {
                self.refresh_lag(position).await;
                lag_checked = Instant::now();
            }
            let started = Instant::now();
            let batch = match ahead.take() {
                Some(batch) => batch,
                None => match self.next_batch(position, &mut stopped).await {
                    Ok(Some(batch)) => batch,
                    Ok(None) => {
                        tokio::select! {
                            () = self.log.wait_for_append(Duration::from_millis(self.config.poll_interval_ms)) => {}
                            () = shutdown.cancelled() => return Ok(()),
                        }
                        continue;
                    }
                    Err(e) => {
                        self.metrics.failures.with_label_values(&[e.stage]).inc();
                        tracing::warn!(error = %format!("{:#}", e.error), from = ?position, stage = e.stage, "reading or preparing a batch failed; retrying it");
                        backoff = self.pause(backoff, shutdown).await;
                        continue;
                    }
                },
            };
            // A full batch means more is waiting (a backlog): the next one is read and prepared
            // while Kafka acknowledges this one. Live, batches are what was appended since the
            // last one, and reading ahead would only split them into more, smaller ones.
            let backlog = batch.read >= self.config.batch_size as usize;
            let (produced, next) = if backlog {
                let (produced, next) = tokio::join!(
                    self.produce(&batch.outgoing),
                    self.next_batch(batch.last, &mut stopped)
                );
                (produced, Some(next))
            } else {
                (self.produce(&batch.outgoing).await, None)
            };
            if let Err(e) = produced {
                self.metrics.failures.with_label_values(&["produce"]).inc();
                tracing::warn!(error = %format!("{e:#}"), from = ?position, "publishing a batch failed; re-sending it");
                // A failed idempotent producer may be fenced; start a fresh one.
                self.producer = producer(&self.kafka)?;
                backoff = self.pause(backoff, shutdown).await;
                continue;
            }
            // Only after every ack: a crash before this line re-sends the batch (duplicates,
            // never gaps).
            if let Err(e) = self
                .checkpoints
                .save(&self.config.checkpoint, batch.last)
                .await
            {
                self.metrics
                    .failures
                    .with_label_values(&["checkpoint"])
                    .inc();
                tracing::warn!(error = %e, "saving the checkpoint failed; the batch will be re-sent");
                backoff = self.pause(backoff, shutdown).await;
                continue;
            }
            position = batch.last;
            // A read ahead that failed or found nothing is simply done again.
            ahead = next.and_then(|next| next.ok().flatten());
            backoff = Duration::from_millis(100);
            self.metrics
                .batch_duration
                .observe(started.elapsed().as_secs_f64());
            tracing::debug!(events = batch.read, ?position, "batch published");
            if !backlog && self.config.batch_interval_ms > 0 {
                let due = started + Duration::from_millis(self.config.batch_interval_ms);
                tokio::select! {
                    () = tokio::time::sleep_until(due.into()) => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    }

    /// The events after `after` (up to a batch), mapped and encoded; `None` if there are none.
    async fn next_batch(
        &self,
        after: Position,
        stopped: &mut StoppedStreams,
    ) -> Result<Option<Batch>, StageError> {
        let stored = self
            .log
            .read_after(after, self.config.batch_size)
            .await
            .map_err(|e| StageError {
                stage: "read",
                error: e.into(),
            })?;
        let Some(last) = stored.last().map(|e| e.position) else {
            return Ok(None);
        };
        let outgoing = self
            .prepare(&stored, stopped)
            .await
            .map_err(|error| StageError {
                stage: "produce",
                error,
            })?;
        Ok(Some(Batch {
            outgoing,
            last,
            read: stored.len(),
        }))
    }

    /// Lag counts every committed event after the checkpoint, held back or not: a relay stalled
    /// behind a stuck append shows a growing lag and held-back count, never 0.
    async fn refresh_lag(&self, position: Position) {
        match self.log.backlog(position).await {
            Ok(backlog) => {
                let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                self.metrics.lag_events.set(gauge(backlog.events));
                self.metrics.held_back_events.set(gauge(backlog.held_back));
                self.metrics.oldest_inflight_append_seconds.set(
                    backlog
                        .oldest_inflight_append
                        .map_or(0.0, |d| d.as_secs_f64()),
                );
            }
            Err(e) => tracing::debug!(error = %e, "measuring the relay's lag failed"),
        }
    }

    async fn pause(&self, backoff: Duration, shutdown: &CancellationToken) -> Duration {
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => {}
        }
        (backoff * 2).min(Duration::from_secs(5))
    }

    /// Maps and encodes one event. `Err` is transient (the registry is unreachable): retry.
    async fn prepare_one(&self, stored: &StoredEvent) -> anyhow::Result<Prepared> {
        let event = match to_published(stored) {
            Ok(event) => event,
            Err(e) => return Ok(Prepared::Poison(format!("cannot be mapped: {e}"))),
        };
        let topic = self.kafka.topic(&event.topic());
        match self.codec.encode(&topic, &event).await {
            Ok(payload) => Ok(Prepared::Ready(Box::new(Outgoing {
                topic,
                event,
                payload,
            }))),
            Err(e) if e.is_transient() => Err(e.into()),
            Err(e) => Ok(Prepared::Poison(format!(
                "cannot be registered or encoded: {e}"
            ))),
        }
    }

    /// The batch's publishable events, in order. An event that can never be published stops its
    /// aggregate's stream there (and every later event of that aggregate is held with it); other
    /// aggregates flow on.
    async fn prepare(
        &self,
        batch: &[StoredEvent],
        stopped: &mut StoppedStreams,
    ) -> anyhow::Result<Vec<Outgoing>> {
        let mut outgoing = Vec::with_capacity(batch.len());
        for stored in batch {
            if stopped.is_stopped(
                &stored.aggregate_type,
                &stored.aggregate_id,
                stored.sequence,
            ) {
                continue;
            }
            match self.prepare_one(stored).await? {
                Prepared::Ready(out) => outgoing.push(*out),
                Prepared::Poison(reason) => {
                    tracing::error!(
                        aggregate_type = %stored.aggregate_type,
                        aggregate_id = %stored.aggregate_id,
                        sequence = stored.sequence,
                        reason,
                        "stopping the aggregate's stream: an event cannot be published"
                    );
                    stopped
                        .stop(
                            &stored.aggregate_type,
                            &stored.aggregate_id,
                            stored.sequence,
                            &reason,
                        )
                        .await
                        .context("recording a stopped stream")?;
                    self.metrics
                        .poison_events
                        .with_label_values(&[&stored.aggregate_type])
                        .inc();
                    self.metrics.stopped_streams.set(stopped.len() as i64);
                }
            }
        }
        Ok(outgoing)
    }

    /// Republishes the streams an operator asked to resume: the aggregate's events from the
    /// stopped one up to the checkpoint, in order; later ones come through the cursor. Returns
    /// how many streams it handled.
    async fn resume_streams(
        &self,
        stopped: &mut StoppedStreams,
        position: Position,
    ) -> anyhow::Result<usize> {
        stopped.refresh().await?;
        let requested = stopped.resume_requested().await?;
        let handled = requested.len();
        for resume in requested {
            let mut events = Vec::new();
            let mut after = resume.from_sequence - 1;
            loop {
                let page = chaos_eventstore::pg::history_page(
                    &self.pool,
                    &resume.aggregate_type,
                    &resume.aggregate_id,
                    after,
                    1000,
                    None,
                )
                .await?;
                let Some(last) = page.last().map(|e| e.sequence) else {
                    break;
                };
                after = last;
                let done = page.iter().any(|e| e.position > position);
                events.extend(page.into_iter().filter(|e| e.position <= position));
                if done {
                    break;
                }
            }
            let mut outgoing = Vec::with_capacity(events.len());
            let mut poison = None;
            for stored in &events {
                match self.prepare_one(stored).await? {
                    Prepared::Ready(out) => outgoing.push(*out),
                    Prepared::Poison(reason) => {
                        poison = Some((stored.sequence, reason));
                        break;
                    }
                }
            }
            self.produce(&outgoing).await?;
            match poison {
                Some((sequence, reason)) => {
                    // Still broken: published up to it, stopped again at it.
                    sqlx::query(
                        "UPDATE relay_stopped_streams
                         SET from_sequence = $4, reason = $5, resume_requested = false, stopped_at = now()
                         WHERE relay = $1 AND aggregate_type = $2 AND aggregate_id = $3",
                    )
                    .bind(&self.config.checkpoint)
                    .bind(&resume.aggregate_type)
                    .bind(&resume.aggregate_id)
                    .bind(sequence)
                    .bind(&reason)
                    .execute(&self.pool)
                    .await?;
                    tracing::error!(aggregate_id = %resume.aggregate_id, sequence, reason, "stream still cannot be published");
                }
                None => {
                    stopped.resumed(&resume).await?;
                    tracing::info!(
                        aggregate_type = %resume.aggregate_type,
                        aggregate_id = %resume.aggregate_id,
                        republished = outgoing.len(),
                        "stopped stream resumed"
                    );
                }
            }
        }
        self.metrics.stopped_streams.set(stopped.len() as i64);
        Ok(handled)
    }

    /// Produces the events and waits for every acknowledgement.
    async fn produce(&self, outgoing: &[Outgoing]) -> anyhow::Result<()> {
        let deliveries = outgoing.iter().map(|out| {
            let mut headers = OwnedHeaders::new_with_capacity(8);
            for (key, value) in out.event.headers() {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                });
            }
            let record = FutureRecord::to(&out.topic)
                .key(out.event.key())
                .payload(&out.payload)
                .headers(headers);
            let send = self
                .producer
                .send(record, Timeout::After(Duration::from_secs(30)));
            // The command's trace goes on here: one span per sampled event, until Kafka acks.
            let traceparent = out.event.envelope.traceparent.as_deref();
            let span = if telemetry::exporting() && telemetry::sampled(traceparent) {
                let span = tracing::info_span!(
                    "relay.publish",
                    otel.kind = "producer",
                    topic = %out.topic,
                    event_type = %out.event.envelope.event_type,
                    aggregate_id = %out.event.envelope.aggregate_id,
                    sequence = out.event.envelope.sequence,
                );
                telemetry::follow(&span, traceparent);
                span
            } else {
                tracing::Span::none()
            };
            async move {
                send.await.map_err(|(e, _)| {
                    anyhow::anyhow!(
                        "delivery to {} of {}#{} failed: {e}",
                        out.topic,
                        out.event.key(),
                        out.event.envelope.sequence
                    )
                })
            }
            .instrument(span)
        });
        try_join_all(deliveries).await?;
        for out in outgoing {
            self.metrics
                .published
                .with_label_values(&[&out.topic])
                .inc();
        }
        Ok(())
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
