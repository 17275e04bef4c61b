use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_eventstore::pg::{PgCheckpoints, PgEventLog};
use chaos_eventstore::publish::to_published;
use chaos_eventstore::{EventLog, StoredEvent};
use chaos_schemas::AvroCodec;
use futures::future::try_join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

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

impl Relay {
    pub fn new(
        pool: PgPool,
        kafka: KafkaConfig,
        codec: AvroCodec,
        config: RelayConfig,
        metrics: RelayMetrics,
    ) -> anyhow::Result<Self> {
        // Exported at 0 from the start, so rate() sees the first events published.
        let topic = kafka.topic(&chaos_schemas::topic_for(
            chaos_domain::character::AGGREGATE_TYPE,
        ));
        metrics.published.with_label_values(&[&topic]);
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
        tracing::info!(?position, "relay active, resuming from checkpoint");
        let mut lock_checked = Instant::now();
        // Due at once; `checked_sub` because an Instant cannot go back before the machine's boot.
        let mut lag_checked = Instant::now()
            .checked_sub(LAG_REFRESH)
            .unwrap_or_else(Instant::now);
        let mut backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            if lock_checked.elapsed() >= LOCK_CHECK {
                if !lock.still_held().await {
                    anyhow::bail!("lost the relay lock");
                }
                lock_checked = Instant::now();
            }
            if lag_checked.elapsed() >= LAG_REFRESH {
                if let Ok(lag) = self.log.count_after(position).await {
                    self.metrics
                        .lag_events
                        .set(i64::try_from(lag).unwrap_or(i64::MAX));
                }
                lag_checked = Instant::now();
            }
            let started = Instant::now();
            let batch = match self.log.read_after(position, self.config.batch_size).await {
                Ok(batch) => batch,
                Err(e) => {
                    self.metrics.failures.with_label_values(&["read"]).inc();
                    tracing::warn!(error = %e, "reading the event store failed; retrying");
                    backoff = self.pause(backoff, shutdown).await;
                    continue;
                }
            };
            let Some(last) = batch.last().map(|e| e.position) else {
                self.metrics.lag_events.set(0);
                tokio::select! {
                    () = self.log.wait_for_append(Duration::from_millis(self.config.poll_interval_ms)) => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
                continue;
            };
            if let Err(e) = self.publish(&batch).await {
                self.metrics.failures.with_label_values(&["produce"]).inc();
                tracing::warn!(error = %format!("{e:#}"), from = ?position, "publishing a batch failed; re-sending it");
                // A failed idempotent producer may be fenced; start a fresh one.
                self.producer = producer(&self.kafka)?;
                backoff = self.pause(backoff, shutdown).await;
                continue;
            }
            // Only after every ack: a crash before this line re-sends the batch (duplicates,
            // never gaps).
            if let Err(e) = self.checkpoints.save(&self.config.checkpoint, last).await {
                self.metrics
                    .failures
                    .with_label_values(&["checkpoint"])
                    .inc();
                tracing::warn!(error = %e, "saving the checkpoint failed; the batch will be re-sent");
                backoff = self.pause(backoff, shutdown).await;
                continue;
            }
            position = last;
            backoff = Duration::from_millis(100);
            self.metrics
                .batch_duration
                .observe(started.elapsed().as_secs_f64());
            tracing::debug!(events = batch.len(), ?position, "batch published");
        }
    }

    async fn pause(&self, backoff: Duration, shutdown: &CancellationToken) -> Duration {
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => {}
        }
        (backoff * 2).min(Duration::from_secs(5))
    }

    /// Produces the batch and waits for every acknowledgement.
    async fn publish(&self, batch: &[StoredEvent]) -> anyhow::Result<()> {
        let mut encoded = Vec::with_capacity(batch.len());
        for stored in batch {
            let event = to_published(stored).with_context(|| {
                format!(
                    "event {}/{}#{} cannot be mapped to its published form",
                    stored.aggregate_type, stored.aggregate_id, stored.sequence
                )
            })?;
            let topic = self.kafka.topic(&event.topic());
            let payload = self.codec.encode(&topic, &event).await?;
            encoded.push((topic, event, payload));
        }
        let deliveries = encoded.iter().map(|(topic, event, payload)| {
            let mut headers = OwnedHeaders::new_with_capacity(8);
            for (key, value) in event.headers() {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                });
            }
            let record = FutureRecord::to(topic)
                .key(event.key())
                .payload(payload)
                .headers(headers);
            let send = self
                .producer
                .send(record, Timeout::After(Duration::from_secs(30)));
            async move {
                send.await.map_err(|(e, _)| {
                    anyhow::anyhow!(
                        "delivery to {topic} of {}#{} failed: {e}",
                        event.key(),
                        event.envelope.sequence
                    )
                })
            }
        });
        try_join_all(deliveries).await?;
        for (topic, _, _) in &encoded {
            self.metrics.published.with_label_values(&[topic]).inc();
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
