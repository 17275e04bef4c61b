use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often lag is measured against the partitions' high watermarks.
const LAG_REFRESH: Duration = Duration::from_secs(2);

/// How long a consumer may go without delivering a message while a partition it is meant to
/// read holds messages it has not consumed, before it is taken for stuck and made again (see
/// [`KafkaRunner::with_stall_after`]).
pub const STALL_AFTER: Duration = Duration::from_secs(30);

use anyhow::Context;
use chaos_platform::kafka::KafkaConfig;
use chaos_schemas::{headers, AvroCodec, PublishedEvent};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

use super::{FeedOffset, ProjectionSink, ProjectorMetrics, Verdict};

/// How a [`KafkaRunner`] gathers its batches.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Most messages applied in one batch.
    pub max_batch: usize,
    /// How long to keep filling a batch once its first message arrived (a deadline from that
    /// message, not a wait for each next one; what has arrived by then joins it).
    pub window: Duration,
    /// How long the broker may hold a fetch to gather [`FETCH_MIN_BYTES`]; zero answers a
    /// fetch as soon as one message is there (librdkafka's default). A consumer that can wait
    /// (the warehouse, the process managers) makes a few large fetches a second instead of
    /// hundreds of small ones, which costs it and Kafka less CPU per event (decision 40).
    pub fetch_wait: Duration,
}

/// When a batch whose first message arrived now stops waiting for more: [`Batching::window`]
/// from now. Messages already received by then still join it, up to `max_batch` (tokio's
/// `timeout_at` polls the receive before the deadline, so a consumer catching up still makes
/// full batches); waiting for each next message with the window instead let a steady trickle,
/// one message inside the window after another, hold a batch open until `max_batch`.
fn batch_deadline(batching: &Batching) -> tokio::time::Instant {
    tokio::time::Instant::now() + batching.window
}

/// What a fetch with a [`Batching::fetch_wait`] waits to gather: more than a few hundred
/// milliseconds of events at any rate this game reaches, so the wait bounds it in steady state
/// while a consumer catching up still gets full fetches at once.
pub const FETCH_MIN_BYTES: u32 = 1 << 20;

impl Batching {
    /// Batches of up to `max_batch` gathered for `window`; fetches answered at once.
    pub fn new(max_batch: usize, window: Duration) -> Self {
        Self {
            max_batch,
            window,
            fetch_wait: Duration::ZERO,
        }
    }

    /// From a configuration's `max_batch`, `batch_window_ms` and `fetch_wait_ms`.
    pub fn from_millis(max_batch: usize, window_ms: u64, fetch_wait_ms: u64) -> Self {
        Self::new(max_batch, Duration::from_millis(window_ms))
            .fetch_wait(Duration::from_millis(fetch_wait_ms))
    }

    /// Lets the broker hold each fetch for up to `wait` (see [`Batching::fetch_wait`]).
    pub fn fetch_wait(self, wait: Duration) -> Self {
        Self {
            fetch_wait: wait,
            ..self
        }
    }
}

/// Consumes topics in a consumer group and feeds the projection in batches.
///
/// Offsets are stored (and then auto-committed) only after the sink acknowledged the batch and
/// every dead letter was acknowledged by Kafka. Batches are processed to completion before the
/// next poll, so a partition revoked during a poll has no work in flight.
///
/// A consumer that stops delivering while its partitions hold messages it has not consumed, or
/// cannot say where it stands while Kafka answers (seen in CI: after a broker restart a
/// consumer's client kept no usable broker connection and no assignment, the projector silent
/// for minutes), is made again: see [`Self::with_stall_after`].
pub struct KafkaRunner {
    name: String,
    topics: Vec<String>,
    dead_letter_topic: String,
    /// The consumer's settings, to make it again after a stall.
    config: ClientConfig,
    /// Replaced whole after a stall; a batch keeps the consumer it was read from.
    consumer: Mutex<Arc<StreamConsumer>>,
    stall: Mutex<StallWatch>,
    stall_after: Duration,
    lag: Mutex<LagClock>,
    dead_letters: FutureProducer,
    /// Asks the brokers where the partitions start and end (and which partitions the topics
    /// have): a client of its own, in no group, on other connections than the consumer's.
    offsets: BaseConsumer,
    codec: AvroCodec,
    projection: Box<dyn ProjectionSink>,
    metrics: ProjectorMetrics,
    batching: Batching,
    lag_checked: Mutex<Instant>,
}

impl std::fmt::Debug for KafkaRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaRunner")
            .field("name", &self.name)
            .field("topics", &self.topics)
            .finish()
    }
}

/// A message of a batch, once looked at. The decoded events themselves are kept apart, in
/// order (one per `Event`), so they move to the sink without a copy.
enum Decoded<'a> {
    Event(BorrowedMessage<'a>),
    Poison(BorrowedMessage<'a>, String),
    /// Of a type the sink does not want ([`ProjectionSink::wants`]): never decoded.
    Skipped(BorrowedMessage<'a>),
}

/// The value of header `key`, if the message has it as UTF-8.
fn header<'m>(message: &'m BorrowedMessage<'_>, key: &str) -> Option<&'m str> {
    use rdkafka::message::Headers;
    message
        .headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

impl KafkaRunner {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        kafka: &KafkaConfig,
        group_id: &str,
        topics: Vec<String>,
        dead_letter_topic: String,
        codec: AvroCodec,
        projection: impl ProjectionSink + 'static,
        metrics: ProjectorMetrics,
        batching: Batching,
    ) -> anyhow::Result<Self> {
        let mut config = kafka.client_config();
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            // A member killed without leaving keeps its partitions until this expires
            // (librdkafka's default is 45 s). Overridable through `kafka.options`.
            .set("session.timeout.ms", "10000");
        if !batching.fetch_wait.is_zero() {
            config
                .set(
                    "fetch.wait.max.ms",
                    batching.fetch_wait.as_millis().to_string(),
                )
                .set("fetch.min.bytes", FETCH_MIN_BYTES.to_string());
        }
        for (k, v) in &kafka.options {
            config.set(k, v);
        }
        let consumer = subscribed(&config, &topics)?;
        let mut producer = kafka.client_config();
        producer
            .set("enable.idempotence", "true")
            .set("acks", "all");
        // No `group.id`: it never joins the group, and sends nothing until asked.
        let offsets = kafka
            .client_config()
            .create()
            .context("creating the Kafka client that measures the partitions' ends")?;
        metrics.init(name);
        Ok(Self {
            name: name.to_owned(),
            topics,
            dead_letter_topic,
            config,
            consumer: Mutex::new(Arc::new(consumer)),
            stall: Mutex::default(),
            stall_after: STALL_AFTER,
            lag: Mutex::default(),
            dead_letters: producer
                .create()
                .context("creating the dead-letter producer")?,
            offsets,
            codec,
            projection: Box::new(projection),
            metrics,
            batching,
            lag_checked: Mutex::new(
                Instant::now()
                    .checked_sub(LAG_REFRESH)
                    .unwrap_or_else(Instant::now),
            ),
        })
    }

    /// librdkafka queues an error for every failed connection attempt while Kafka is away, and
    /// once it is back those stale errors come before the messages. Waiting a backoff for each
    /// kept the projectors and process managers "unavailable" for minutes after a 12 s outage
    /// (one error per 5 s). So after an error, every error already queued is taken without
    /// waiting: the first message behind them is returned (Kafka is back), `None` when nothing
    /// more is queued (still away: back off).
    fn skip_queued_errors<'c>(&self, consumer: &'c StreamConsumer) -> Option<BorrowedMessage<'c>> {
        use futures::FutureExt;
        let mut skipped = 0u32;
        // Bounded, in case errors were produced as fast as they are taken.
        while skipped < 10_000 {
            match consumer.recv().now_or_never()? {
                Ok(m) => {
                    tracing::info!(projection = %self.name, skipped, "Kafka is back");
                    return Some(m);
                }
                Err(_) => skipped += 1,
            }
        }
        None
    }

    /// After a consumer error (Kafka away; the client reconnects by itself): the first message
    /// behind the errors already queued if Kafka is back ([`Self::skip_queued_errors`]), else
    /// `None` once `backoff` has passed (doubled for the next time, up to 5 s) or `shutdown`
    /// came.
    async fn recover<'c>(
        &self,
        consumer: &'c StreamConsumer,
        error: &rdkafka::error::KafkaError,
        backoff: &mut Duration,
        shutdown: &CancellationToken,
    ) -> Option<BorrowedMessage<'c>> {
        tracing::warn!(projection = %self.name, error = %error, "Kafka unavailable; waiting");
        if let Some(m) = self.skip_queued_errors(consumer) {
            *backoff = Duration::from_millis(100);
            return Some(m);
        }
        tokio::select! {
            () = tokio::time::sleep(*backoff) => {}
            () = shutdown.cancelled() => {}
        }
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
        None
    }

    /// Checks for a stalled consumer after `after` instead of [`STALL_AFTER`] (tests).
    pub fn with_stall_after(mut self, after: Duration) -> Self {
        self.stall_after = after;
        self
    }

    /// The consumer batches are read from now.
    fn consumer(&self) -> Arc<StreamConsumer> {
        self.consumer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(projection = %self.name, topics = ?self.topics, "projector consuming");
        let mut backoff = Duration::from_millis(100);
        loop {
            let consumer = self.consumer();
            let first = tokio::select! {
                m = consumer.recv() => Some(m),
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => None,
            };
            let Some(first) = first else {
                if self.idle_check(&consumer) {
                    self.remake_consumer(consumer);
                }
                continue;
            };
            let first = match first {
                Ok(m) => {
                    backoff = Duration::from_millis(100);
                    self.metrics.ready.with_label_values(&[&self.name]).set(1);
                    m
                }
                Err(e) => {
                    // Kafka is away (a restart, a network cut): the client reconnects by
                    // itself; report unready and wait, never exit.
                    self.metrics.ready.with_label_values(&[&self.name]).set(0);
                    self.metrics.retries.with_label_values(&[&self.name]).inc();
                    match self.recover(&consumer, &e, &mut backoff, &shutdown).await {
                        Some(m) => {
                            self.metrics.ready.with_label_values(&[&self.name]).set(1);
                            m
                        }
                        None if shutdown.is_cancelled() => break,
                        None => continue,
                    }
                }
            };
            self.stall
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            let mut messages = vec![first];
            let deadline = batch_deadline(&self.batching);
            while messages.len() < self.batching.max_batch {
                match tokio::time::timeout_at(deadline, consumer.recv()).await {
                    Ok(Ok(m)) => messages.push(m),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "Kafka consumer error while filling a batch");
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.process(&consumer, messages, &shutdown).await?;
        }
        tracing::info!(projection = %self.name, "projector stopped");
        Ok(())
    }

    /// Nothing arrived for a second: at most every [`LAG_REFRESH`], measures how far the
    /// consumer stands from each partition's end (its lag metrics, for the partitions assigned
    /// to it) and says whether it is stuck: a partition it should read has stayed behind its
    /// end, at the same consumed offset, for the stall time while it delivered nothing. With no
    /// assignment, the group's committed offsets over every partition of the topics are
    /// watched instead: a group that moves on is fine, one where nothing moves while messages
    /// wait is stuck. Kafka unreachable is no stall (the runner waits for it): the watch starts
    /// over.
    fn idle_check(&self, consumer: &StreamConsumer) -> bool {
        if !self.lag_due() {
            return false;
        }
        let seen = tokio::task::block_in_place(|| self.consumed_and_ends(consumer));
        let mut watch = self
            .stall
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = match seen {
            Ok(seen) => seen,
            Err(e) => {
                tracing::debug!(projection = %self.name, error = %e, "cannot measure the consumer's lag");
                watch.clear();
                return false;
            }
        };
        self.publish_lag(&seen);
        watch.observe(Instant::now(), &seen, self.stall_after)
    }

    /// Where the consumer stands on each partition it reads (its position, else the group's
    /// committed offset, else the partition's start), with the partition's end; every partition
    /// of the topics, by the group's committed offsets, when it has no assignment.
    ///
    /// The partitions and their ends are asked through a client of their own ([`Self::ends`]),
    /// other connections to the same brokers: an error there means Kafka is away (`Err`: no
    /// stall, the runner waits for it). A consumer that cannot answer while Kafka does is broken
    /// itself (seen in CI: after a broker restart a consumer was left without a usable broker
    /// connection and without an assignment, for good) and counts as a partition standing
    /// still ([`Seen::unanswered`]).
    fn consumed_and_ends(&self, consumer: &StreamConsumer) -> anyhow::Result<Vec<Seen>> {
        const WAIT: Duration = Duration::from_secs(2);
        let mut partitions = assigned_partitions(consumer)?;
        let assigned = !partitions.is_empty();
        if !assigned {
            for topic in &self.topics {
                let metadata = self.offsets.fetch_metadata(Some(topic), WAIT)?;
                for t in metadata.topics() {
                    for p in t.partitions() {
                        partitions.push((topic.clone(), p.id()));
                    }
                }
            }
        }
        let ends = self.ends(&partitions, WAIT)?;
        let consumed = match consumed_offsets(consumer, &partitions, assigned, WAIT) {
            Ok(consumed) => consumed,
            Err(e) => {
                tracing::debug!(projection = %self.name, error = %e, "the Kafka consumer does not answer while Kafka does");
                return Ok(vec![Seen::unanswered()]);
            }
        };
        Ok(Seen::zip(partitions, ends, &consumed, assigned))
    }

    /// Each partition's first and end offsets, asked through [`Self::offsets`]' client: one
    /// ListOffsets request per broker for the first offsets and one for the ends, whatever the
    /// number of partitions. (Asking per partition, as `fetch_watermarks` does, was two
    /// requests per partition every 2 s: 12 partitions and three runners made a tenth of all
    /// the requests Kafka served under the command benchmark.)
    fn ends(
        &self,
        partitions: &[(String, i32)],
        wait: Duration,
    ) -> anyhow::Result<Vec<(i64, i64)>> {
        // Nothing else polls this client: take the events librdkafka queued for it (connection
        // errors while Kafka is away), which would otherwise pile up.
        while self.offsets.poll(Duration::ZERO).is_some() {}
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.offsets_at(partitions, rdkafka::Offset::Beginning, wait)?;
        let end = self.offsets_at(partitions, rdkafka::Offset::End, wait)?;
        Ok(first.into_iter().zip(end).collect())
    }

    /// Each partition's offset at `at` (the beginning or the end: ListOffsets' special
    /// timestamps), in the order of `partitions`.
    fn offsets_at(
        &self,
        partitions: &[(String, i32)],
        at: rdkafka::Offset,
        wait: Duration,
    ) -> anyhow::Result<Vec<i64>> {
        let mut asked = rdkafka::TopicPartitionList::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            asked.add_partition_offset(topic, *partition, at)?;
        }
        let answered = self.offsets.offsets_for_times(asked, wait)?;
        partitions
            .iter()
            .map(|(topic, partition)| {
                let element = answered
                    .find_partition(topic, *partition)
                    .with_context(|| format!("no offset for {topic} [{partition}]"))?;
                element.error()?;
                match element.offset() {
                    rdkafka::Offset::Offset(offset) => Ok(offset),
                    other => anyhow::bail!("{topic} [{partition}]: no offset ({other:?})"),
                }
            })
            .collect()
    }

    /// Replaces a stuck consumer by a new one in the same group, subscribed to the same topics:
    /// it joins the group and resumes from the committed offsets (the sinks are idempotent, so
    /// messages read again change nothing). If the new one cannot be made, the old one stays
    /// and the next check tries again.
    fn remake_consumer(&self, stuck: Arc<StreamConsumer>) {
        let stalled: Vec<String> = self
            .stall
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stalled(Instant::now(), self.stall_after);
        let fresh = match subscribed(&self.config, &self.topics) {
            Ok(fresh) => Arc::new(fresh),
            Err(e) => {
                tracing::error!(projection = %self.name, error = %e, "cannot make a new Kafka consumer in place of a stalled one");
                return;
            }
        };
        tracing::error!(
            projection = %self.name,
            stalled_for = ?self.stall_after,
            partitions = ?stalled,
            "the Kafka consumer delivered nothing while messages waited: replacing it with a new member of the group"
        );
        let old = std::mem::replace(
            &mut *self
                .consumer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            fresh,
        );
        self.stall
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.metrics
            .consumer_restarts
            .with_label_values(&[&self.name])
            .inc();
        // Closing the old consumer leaves the group and commits its stored offsets, which waits
        // on the broker, perhaps for long: not on this thread.
        let closing = std::thread::Builder::new()
            .name("kafka-close".into())
            .spawn(move || drop((stuck, old)));
        if let Err(e) = closing {
            tracing::warn!(error = %e, "closing the stalled consumer on a thread of its own");
        }
    }

    /// Stops the consumer's deliveries without telling the runner (its assigned partitions
    /// paused), as a stuck consumer would: for tests of the stall watch. Errs while the
    /// consumer has no assignment yet.
    #[doc(hidden)]
    pub fn simulate_stall(&self) -> anyhow::Result<()> {
        let consumer = self.consumer();
        let assignment = consumer.assignment()?;
        anyhow::ensure!(assignment.count() > 0, "the consumer has no assignment yet");
        consumer.pause(&assignment)?;
        Ok(())
    }

    /// Stops (`stalled`) or restarts the deliveries of one partition only, without telling the
    /// runner, as a fetcher stuck on one broker would while the others deliver: for tests of
    /// the lag metrics.
    #[doc(hidden)]
    pub fn simulate_partition_stall(
        &self,
        topic: &str,
        partition: i32,
        stalled: bool,
    ) -> anyhow::Result<()> {
        let mut one = rdkafka::TopicPartitionList::new();
        one.add_partition(topic, partition);
        let consumer = self.consumer();
        if stalled {
            consumer.pause(&one)?;
        } else {
            consumer.resume(&one)?;
        }
        Ok(())
    }

    async fn process<'a>(
        &self,
        consumer: &StreamConsumer,
        messages: Vec<BorrowedMessage<'a>>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut decoded = Vec::with_capacity(messages.len());
        let mut events: Vec<PublishedEvent> = Vec::with_capacity(messages.len());
        for m in messages {
            if self.skip(&m).await {
                decoded.push(Decoded::Skipped(m));
                continue;
            }
            match self.decode(&m, shutdown).await? {
                Ok(event) => {
                    events.push(event);
                    decoded.push(Decoded::Event(m));
                }
                Err(reason) => decoded.push(Decoded::Poison(m, reason)),
            }
        }
        // Where each partition stands once this batch (poison and skipped included) is handled.
        let mut next: HashMap<(String, i32), i64> = HashMap::new();
        for d in &decoded {
            let (Decoded::Event(m) | Decoded::Poison(m, _) | Decoded::Skipped(m)) = d;
            let offset = next
                .entry((m.topic().to_owned(), m.partition()))
                .or_insert(0);
            *offset = (*offset).max(m.offset() + 1);
        }
        let checkpoint: Vec<FeedOffset> = next
            .into_iter()
            .map(|((topic, partition), offset)| FeedOffset::new(topic, partition, offset))
            .collect();
        let spans = super::trace::event_spans(&self.name, &events);
        let mut backoff = Duration::from_millis(50);
        let verdicts = loop {
            match self.projection.apply_batch(&events, &checkpoint).await {
                Ok(v) => break v,
                Err(e) => {
                    self.metrics.retries.with_label_values(&[&self.name]).inc();
                    self.metrics.ready.with_label_values(&[&self.name]).set(0);
                    tracing::warn!(error = %e, "read-model write failed; retrying the batch");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => anyhow::bail!("shutdown while retrying"),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        self.metrics.ready.with_label_values(&[&self.name]).set(1);
        super::trace::record_verdicts(&spans, &verdicts);
        drop(spans);
        let mut verdicts = verdicts.into_iter();
        let mut last_per_partition: HashMap<(String, i32), (i64, Option<i64>)> = HashMap::new();
        for d in &decoded {
            let (message, reason) = match d {
                Decoded::Skipped(m) => (m, None),
                Decoded::Event(m) => match verdicts.next() {
                    Some(Verdict::Applied) => {
                        self.metrics.applied.with_label_values(&[&self.name]).inc();
                        (m, None)
                    }
                    Some(Verdict::Ignored) => (m, None),
                    Some(Verdict::Duplicate) => {
                        self.metrics
                            .duplicates
                            .with_label_values(&[&self.name])
                            .inc();
                        (m, None)
                    }
                    Some(Verdict::DeadLetter(reason)) => (m, Some(reason.clone())),
                    None => (m, Some("no verdict for the event".to_owned())),
                },
                Decoded::Poison(m, reason) => (m, Some(reason.clone())),
            };
            if let Some(reason) = reason {
                self.dead_letter(message, &reason).await?;
            }
            consumer
                .store_offset_from_message(message)
                .context("storing the offset")?;
            last_per_partition.insert(
                (message.topic().to_owned(), message.partition()),
                (message.offset() + 1, message.timestamp().to_millis()),
            );
        }
        self.lag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .handled(last_per_partition);
        if self.lag_due() {
            let seen = tokio::task::block_in_place(|| self.busy_seen(consumer));
            match seen {
                Ok(seen) => self.publish_lag(&seen),
                Err(e) => {
                    tracing::debug!(projection = %self.name, error = %e, "cannot measure the consumer's lag");
                }
            }
        }
        Ok(())
    }

    /// Whether the sink does not want this message: by the record its schema id names (the
    /// registry is asked once per id; the body is not read), else by the relay's
    /// `aggregate_type` and `event_type` headers (a message that is no wire-format message, a
    /// registry that does not answer). A message with neither is decoded (and the sink
    /// decides); so is every message of a sink that does not filter
    /// ([`ProjectionSink::filters`]). Not the headers first: librdkafka parses a message's
    /// headers into a list of its own, which cost a fifth of the process managers' CPU.
    async fn skip(&self, message: &BorrowedMessage<'_>) -> bool {
        if !self.projection.filters() {
            return false;
        }
        let record = match message.payload() {
            Some(payload) => self.codec.record_of(payload).await.ok().flatten(),
            None => None,
        };
        if let Some(record) = record {
            return !self
                .projection
                .wants(record.aggregate_type, record.event_type);
        }
        match (
            header(message, headers::AGGREGATE_TYPE),
            header(message, headers::EVENT_TYPE),
        ) {
            (Some(aggregate_type), Some(event_type)) => {
                !self.projection.wants(aggregate_type, event_type)
            }
            _ => false,
        }
    }

    /// Decodes a message: `Ok(Err(reason))` is poison (no value, undecodable, unknown schema)
    /// for the dead-letter topic; a transient failure (registry down) is retried here until it
    /// passes or shutdown.
    async fn decode(
        &self,
        message: &BorrowedMessage<'_>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Result<PublishedEvent, String>> {
        let Some(payload) = message.payload() else {
            return Ok(Err("message has no value".into()));
        };
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.codec.decode(payload).await {
                Ok(event) => return Ok(Ok(event)),
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "schema registry unavailable; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => anyhow::bail!("shutdown while decoding"),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Ok(Err(format!("cannot decode: {e}"))),
            }
        }
    }

    async fn dead_letter(&self, message: &BorrowedMessage<'_>, reason: &str) -> anyhow::Result<()> {
        tracing::warn!(
            projection = %self.name,
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            reason,
            "dead-lettering a message"
        );
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "projection",
                value: Some(self.name.as_str()),
            })
            .insert(Header {
                key: "source_topic",
                value: Some(message.topic()),
            })
            .insert(Header {
                key: "source_partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "source_offset",
                value: Some(offset.as_str()),
            });
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.dead_letter_topic).headers(headers);
        if let Some(k) = message.key() {
            record = record.key(k);
        }
        if let Some(p) = message.payload() {
            record = record.payload(p);
        }
        self.dead_letters
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map_err(|(e, _)| {
                anyhow::anyhow!(
                    "dead-lettering {}/{}@{} failed: {e}",
                    message.topic(),
                    message.partition(),
                    message.offset()
                )
            })?;
        self.metrics
            .dead_letters
            .with_label_values(&[&self.name])
            .inc();
        Ok(())
    }

    /// Whether lag is due to be measured again (at most every [`LAG_REFRESH`], busy or idle);
    /// if so, the clock starts again.
    fn lag_due(&self) -> bool {
        let mut checked = self
            .lag_checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if checked.elapsed() < LAG_REFRESH {
            return false;
        }
        *checked = Instant::now();
        true
    }

    /// Where a busy consumer stands on every partition assigned to it, with each partition's
    /// end: the offset after the last message handled of it, else its fetch position (ahead of
    /// what was handled while messages wait in the client's queue). A partition that delivers
    /// nothing while the others keep the runner busy (a fetcher stuck on one broker) is
    /// measured too, so its lag grows instead of standing at what it last was. What was handled
    /// of a partition before another member of the group took it and moved it on is stale: the
    /// group's committed offset is then past it, and the position counts.
    fn busy_seen(&self, consumer: &StreamConsumer) -> anyhow::Result<Vec<Seen>> {
        const WAIT: Duration = Duration::from_millis(500);
        let partitions = assigned_partitions(consumer)?;
        let handled = self
            .lag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next_offsets(&partitions);
        // One request for every partition; without an answer, what was handled stands.
        let committed = consumed_offsets(consumer, &partitions, false, WAIT).unwrap_or_default();
        let positions = consumed_offsets(consumer, &[], true, WAIT)?;
        let consumed = busy_offsets(handled, &committed, positions);
        let ends = self.ends(&partitions, WAIT)?;
        Ok(Seen::zip(partitions, ends, &consumed, true))
    }

    /// Sets the lag metrics of the assigned partitions in `seen` (see [`LagClock::seconds`]).
    fn publish_lag(&self, seen: &[Seen]) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut clock = self
            .lag
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in seen.iter().filter(|s| s.assigned) {
            let label = s.partition.to_string();
            let behind = (s.end - s.consumed).max(0);
            self.metrics
                .lag_events
                .with_label_values(&[&self.name, &s.topic, &label])
                .set(behind);
            let seconds = clock.seconds(s, now_ms, Instant::now());
            self.metrics
                .lag_seconds
                .with_label_values(&[&self.name, &s.topic, &label])
                .set(seconds);
        }
        clock.measured();
    }
}

/// Where a bounded run stops: per (topic, partition), the offset to reach (every message below it
/// handled). See [`KafkaRunner::run_until`].
pub type Until = HashMap<(String, i32), i64>;

/// A bounded run (an operator's rebuild from Kafka): consume up to offsets sampled beforehand,
/// then stop, instead of following the topics forever.
impl KafkaRunner {
    /// The high watermark of every partition of the runner's topics now.
    pub async fn high_watermarks(&self) -> anyhow::Result<Until> {
        let consumer = self.consumer();
        tokio::task::block_in_place(|| {
            let mut until = Until::new();
            for topic in &self.topics {
                let metadata = consumer
                    .fetch_metadata(Some(topic), Duration::from_secs(10))
                    .with_context(|| format!("reading the metadata of {topic}"))?;
                for t in metadata.topics() {
                    for p in t.partitions() {
                        let (_, high) = consumer
                            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                            .with_context(|| {
                                format!("reading the watermarks of {topic}/{}", p.id())
                            })?;
                        until.insert((topic.clone(), p.id()), high);
                    }
                }
            }
            Ok(until)
        })
    }

    /// Where the consumer group stands on each partition of `until` (its committed offset, else
    /// the partition's first offset).
    pub async fn group_positions(&self, until: &Until) -> anyhow::Result<Until> {
        const WAIT: Duration = Duration::from_secs(10);
        let consumer = self.consumer();
        tokio::task::block_in_place(|| {
            let partitions: Vec<(String, i32)> = until.keys().cloned().collect();
            let mut at = consumed_offsets(&consumer, &partitions, false, WAIT)
                .context("reading the group's committed offsets")?;
            for (topic, partition) in partitions {
                if !at.contains_key(&(topic.clone(), partition)) {
                    let (start, _) = consumer.fetch_watermarks(&topic, partition, WAIT)?;
                    at.insert((topic, partition), start);
                }
            }
            Ok(at)
        })
    }

    /// Consumes as [`Self::run`] does until every partition in `until` has been handled up to its
    /// offset (messages appended since may be handled too: sinks are idempotent), then commits the
    /// group's offsets and returns how many messages it handled. Once `shutdown` is cancelled it
    /// stops after the batch in hand (its offsets committed: a re-run resumes there). `progress`
    /// gets the running count after each batch.
    pub async fn run_until(
        &self,
        until: &Until,
        shutdown: &CancellationToken,
        mut progress: impl FnMut(u64),
    ) -> anyhow::Result<u64> {
        let mut pending: Until = self
            .group_positions(until)
            .await?
            .into_iter()
            .filter(|(tp, at)| until.get(tp).is_some_and(|end| at < end))
            .collect();
        let mut handled = 0u64;
        let mut backoff = Duration::from_millis(100);
        // A bounded run keeps one consumer (an operator watches its progress).
        let consumer = self.consumer();
        while !pending.is_empty() && !shutdown.is_cancelled() {
            let first = tokio::select! {
                m = consumer.recv() => m,
                () = shutdown.cancelled() => break,
            };
            let first = match first {
                Ok(m) => {
                    backoff = Duration::from_millis(100);
                    m
                }
                Err(e) => match self.recover(&consumer, &e, &mut backoff, shutdown).await {
                    Some(m) => m,
                    None if shutdown.is_cancelled() => break,
                    None => continue,
                },
            };
            let mut messages = vec![first];
            let deadline = batch_deadline(&self.batching);
            while messages.len() < self.batching.max_batch {
                match tokio::time::timeout_at(deadline, consumer.recv()).await {
                    Ok(Ok(m)) => messages.push(m),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "Kafka consumer error while filling a batch");
                        break;
                    }
                    Err(_) => break,
                }
            }
            let mut reached: Vec<((String, i32), i64)> = Vec::new();
            for m in &messages {
                reached.push(((m.topic().to_owned(), m.partition()), m.offset() + 1));
            }
            handled += messages.len() as u64;
            self.process(&consumer, messages, shutdown).await?;
            for (tp, next) in reached {
                if until.get(&tp).is_some_and(|end| next >= *end) {
                    pending.remove(&tp);
                }
            }
            progress(handled);
        }
        tokio::task::block_in_place(|| {
            consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        })
        .or_else(|e| match e {
            // Nothing stored since the last commit.
            rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            ) => Ok(()),
            e => Err(e),
        })
        .context("committing the group's offsets")?;
        Ok(handled)
    }
}

/// Where the consumer stands on `partitions`: its position on those assigned to it, else the
/// group's committed offset (asked of the broker through the consumer); a partition with
/// neither is left out.
fn consumed_offsets(
    consumer: &StreamConsumer,
    partitions: &[(String, i32)],
    assigned: bool,
    wait: Duration,
) -> anyhow::Result<HashMap<(String, i32), i64>> {
    use rdkafka::{Offset, TopicPartitionList};
    let mut consumed: HashMap<(String, i32), i64> = HashMap::new();
    if assigned {
        for e in consumer.position()?.elements() {
            if let Offset::Offset(o) = e.offset() {
                consumed.insert((e.topic().to_owned(), e.partition()), o);
            }
        }
    }
    let mut unknown = TopicPartitionList::new();
    for (topic, partition) in partitions {
        if !consumed.contains_key(&(topic.clone(), *partition)) {
            unknown.add_partition(topic, *partition);
        }
    }
    if unknown.count() > 0 {
        for e in consumer.committed_offsets(unknown, wait)?.elements() {
            if let Offset::Offset(o) = e.offset() {
                consumed.insert((e.topic().to_owned(), e.partition()), o);
            }
        }
    }
    Ok(consumed)
}

/// Where a busy consumer stands on each partition: the offset after the last message it
/// handled of it, unless the group's committed offset is past that (another member moved the
/// partition on while it was not this one's), else its fetch position.
fn busy_offsets(
    handled: HashMap<(String, i32), i64>,
    committed: &HashMap<(String, i32), i64>,
    positions: HashMap<(String, i32), i64>,
) -> HashMap<(String, i32), i64> {
    let mut consumed = positions;
    for (key, next) in handled {
        if committed.get(&key).is_none_or(|&c| c <= next) {
            consumed.insert(key, next);
        }
    }
    consumed
}

/// The partitions assigned to `consumer`.
fn assigned_partitions(consumer: &StreamConsumer) -> anyhow::Result<Vec<(String, i32)>> {
    Ok(consumer
        .assignment()?
        .elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect())
}

/// A new consumer with `config`, subscribed to `topics`.
fn subscribed(config: &ClientConfig, topics: &[String]) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = config.create().context("creating the Kafka consumer")?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).context("subscribing")?;
    Ok(consumer)
}

/// A partition as an idle check saw it: where the consumer (or, without an assignment, the
/// group) stands, and the partition's end.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    topic: String,
    partition: i32,
    consumed: i64,
    end: i64,
    /// Assigned to this consumer (else one of the topics' partitions seen through the group).
    assigned: bool,
}

impl Seen {
    /// The partitions with their (first, end) offsets and where the consumer stands on each
    /// (a partition it has no offset for stands at its first).
    fn zip(
        partitions: Vec<(String, i32)>,
        ends: Vec<(i64, i64)>,
        consumed: &HashMap<(String, i32), i64>,
        assigned: bool,
    ) -> Vec<Seen> {
        partitions
            .into_iter()
            .zip(ends)
            .map(|((topic, partition), (start, end))| {
                let at = consumed
                    .get(&(topic.clone(), partition))
                    .copied()
                    .unwrap_or(start)
                    .max(start);
                Seen {
                    topic,
                    partition,
                    consumed: at,
                    end,
                    assigned,
                }
            })
            .collect()
    }

    /// The consumer could not say where it stands while Kafka answered: a stand-in partition
    /// that stays behind at one offset, so that a consumer that keeps not answering is stalled
    /// after the stall time like one that keeps not moving.
    fn unanswered() -> Self {
        Self {
            topic: UNANSWERED.to_owned(),
            partition: -1,
            consumed: 0,
            end: 1,
            assigned: false,
        }
    }
}

/// The topic name [`Seen::unanswered`] stands under (not a valid Kafka topic name).
const UNANSWERED: &str = "(the consumer, which does not answer)";

/// What a partition's lag in seconds is worked out from, between measurements (every
/// [`LAG_REFRESH`], busy or idle).
#[derive(Debug, Default)]
struct LagClock {
    /// Per partition, the offset after the last message handled of it and that message's
    /// timestamp (Kafka's, in ms), since the runner started.
    handled: HashMap<(String, i32), (i64, Option<i64>)>,
    /// The partitions with a message handled since the last measurement.
    fresh: std::collections::HashSet<(String, i32)>,
    /// The partitions found behind at the last measurement, with the offset they stood at and
    /// since when.
    standing: HashMap<(String, i32), (i64, Instant)>,
}

impl LagClock {
    /// Records a batch: per partition, the offset after its last message and the message's
    /// timestamp.
    fn handled(&mut self, batch: HashMap<(String, i32), (i64, Option<i64>)>) {
        for (key, at) in batch {
            self.fresh.insert(key.clone());
            self.handled.insert(key, at);
        }
    }

    /// The offset after the last message handled of each of `partitions` (those assigned now;
    /// the others are forgotten, so a partition assigned again later starts from its position).
    fn next_offsets(&mut self, partitions: &[(String, i32)]) -> HashMap<(String, i32), i64> {
        self.handled.retain(|key, _| partitions.contains(key));
        self.handled
            .iter()
            .map(|(key, &(next, _))| (key.clone(), next))
            .collect()
    }

    /// How far behind `seen` is, in seconds: 0 when caught up; the age of the last message
    /// handled of it if it delivered since the last measurement (a consumer catching up);
    /// else how long it has stood behind at this offset. The last is what a partition that
    /// stopped delivering shows, growing from the first measurement that found it behind; a
    /// quiet partition whose next message has just been written shows about 0, not the age of
    /// the message it handled long before.
    fn seconds(&mut self, seen: &Seen, now_ms: i64, now: Instant) -> i64 {
        let key = (seen.topic.clone(), seen.partition);
        if seen.consumed >= seen.end {
            self.standing.remove(&key);
            return 0;
        }
        let since = standing_since(self.standing.get(&key), seen.consumed, now);
        self.standing.insert(key.clone(), (seen.consumed, since));
        let handled_age = self
            .handled
            .get(&key)
            .and_then(|&(_, t)| t)
            .filter(|_| self.fresh.contains(&key))
            .map(|t| (now_ms - t) / 1000);
        let seconds = handled_age.unwrap_or_else(|| {
            i64::try_from(now.duration_since(since).as_secs()).unwrap_or(i64::MAX)
        });
        seconds.max(0)
    }

    /// A measurement is over: what was handled before it is no longer news.
    fn measured(&mut self) {
        self.fresh.clear();
    }
}

/// Since when a partition has stood at `consumed`: since `last` (the offset it stood at when
/// last looked at, and since when) if that offset is the same, else from `now`.
fn standing_since(last: Option<&(i64, Instant)>, consumed: i64, now: Instant) -> Instant {
    match last {
        Some(&(at, since)) if at == consumed => since,
        _ => now,
    }
}

/// The partitions found behind their end by idle checks in a row, with the consumed offset
/// they stood at and since when. Cleared whenever a message arrives.
#[derive(Debug, Default)]
struct StallWatch {
    behind: HashMap<(String, i32), (i64, Instant)>,
}

impl StallWatch {
    fn clear(&mut self) {
        self.behind.clear();
    }

    /// Records what a check saw at `now`; true when a partition has stood behind its end at
    /// the same consumed offset for `after` or longer.
    fn observe(&mut self, now: Instant, seen: &[Seen], after: Duration) -> bool {
        let mut behind = HashMap::with_capacity(seen.len());
        for s in seen.iter().filter(|s| s.consumed < s.end) {
            let key = (s.topic.clone(), s.partition);
            let since = standing_since(self.behind.get(&key), s.consumed, now);
            behind.insert(key, (s.consumed, since));
        }
        self.behind = behind;
        !self.stalled(now, after).is_empty()
    }

    /// The partitions stalled at `now`, as `topic/partition@offset`.
    fn stalled(&self, now: Instant, after: Duration) -> Vec<String> {
        let mut stalled: Vec<String> = self
            .behind
            .iter()
            .filter(|(_, &(_, since))| now.duration_since(since) >= after)
            .map(|((topic, partition), (at, _))| {
                if topic == UNANSWERED {
                    topic.clone()
                } else {
                    format!("{topic}/{partition}@{at}")
                }
            })
            .collect();
        stalled.sort();
        stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(partition: i32, consumed: i64, end: i64) -> Seen {
        Seen {
            topic: "t".into(),
            partition,
            consumed,
            end,
            assigned: true,
        }
    }

    const AFTER: Duration = Duration::from_secs(30);

    #[test]
    fn a_partition_behind_at_the_same_offset_for_the_stall_time_is_a_stall() {
        let t0 = Instant::now();
        let mut watch = StallWatch::default();
        assert!(!watch.observe(t0, &[seen(0, 5, 9), seen(1, 3, 3)], AFTER));
        assert!(!watch.observe(t0 + Duration::from_secs(29), &[seen(0, 5, 12)], AFTER));
        assert!(watch.observe(t0 + AFTER, &[seen(0, 5, 12), seen(1, 3, 3)], AFTER));
        assert_eq!(watch.stalled(t0 + AFTER, AFTER), vec!["t/0@5".to_owned()]);
    }

    #[test]
    fn a_consumer_that_keeps_not_answering_is_a_stall() {
        let t0 = Instant::now();
        let mut watch = StallWatch::default();
        assert!(!watch.observe(t0, &[Seen::unanswered()], AFTER));
        // It answered once in between: the clock starts again.
        assert!(!watch.observe(t0 + Duration::from_secs(10), &[seen(0, 9, 9)], AFTER));
        assert!(!watch.observe(t0 + AFTER, &[Seen::unanswered()], AFTER));
        assert!(!watch.observe(
            t0 + AFTER * 2 - Duration::from_secs(1),
            &[Seen::unanswered()],
            AFTER
        ));
        assert!(watch.observe(t0 + AFTER * 2, &[Seen::unanswered()], AFTER));
        assert_eq!(
            watch.stalled(t0 + AFTER * 2, AFTER),
            vec![UNANSWERED.to_owned()]
        );
    }

    #[test]
    fn lag_seconds_are_the_age_of_what_was_just_handled_else_the_time_standing() {
        let t0 = Instant::now();
        let ms = |secs: i64| 1_800_000_000_000 + secs * 1000;
        let mut clock = LagClock::default();
        // Catching up: a message handled since the last measurement, written 40 s ago.
        clock.handled(HashMap::from([(("t".into(), 0), (6, Some(ms(0))))]));
        assert_eq!(clock.seconds(&seen(0, 6, 100), ms(40), t0), 40);
        clock.measured();
        // Then it delivered nothing more: how long it has stood at offset 6, from 0.
        assert_eq!(clock.seconds(&seen(0, 6, 100), ms(42), t0), 0);
        clock.measured();
        let later = t0 + Duration::from_secs(12);
        assert_eq!(clock.seconds(&seen(0, 6, 100), ms(54), later), 12);
        // Caught up: 0, and the standing clock is forgotten.
        assert_eq!(clock.seconds(&seen(0, 100, 100), ms(55), later), 0);
        // A quiet partition whose next message was just written: about 0, not the age of the
        // message handled long before.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!(clock.seconds(&seen(0, 100, 101), ms(3655), much_later), 0);
    }

    #[test]
    fn a_busy_consumer_stands_where_it_handled_unless_the_group_moved_on() {
        let key = |p: i32| ("t".to_owned(), p);
        let handled = HashMap::from([(key(0), 10), (key(1), 10), (key(2), 10)]);
        // Committed offsets trail what was handled; partition 1 was moved on to 15 by another
        // member while it was not this one's; nothing was handled of partition 3 yet.
        let committed = HashMap::from([(key(0), 8), (key(1), 15)]);
        // Fetch positions run ahead of what was handled while messages wait in the queue.
        let positions = HashMap::from([(key(0), 40), (key(1), 15), (key(2), 30), (key(3), 7)]);
        let consumed = busy_offsets(handled, &committed, positions);
        assert_eq!(consumed[&key(0)], 10);
        assert_eq!(consumed[&key(1)], 15);
        assert_eq!(consumed[&key(2)], 10);
        assert_eq!(consumed[&key(3)], 7);
    }

    #[test]
    fn moving_or_caught_up_or_cleared_is_no_stall() {
        let t0 = Instant::now();
        let later = t0 + AFTER * 2;
        // The consumed offset moved: the clock starts again.
        let mut moving = StallWatch::default();
        moving.observe(t0, &[seen(0, 5, 9)], AFTER);
        assert!(!moving.observe(later, &[seen(0, 6, 9)], AFTER));
        // Caught up in between: forgotten.
        let mut caught_up = StallWatch::default();
        caught_up.observe(t0, &[seen(0, 5, 9)], AFTER);
        caught_up.observe(t0 + Duration::from_secs(1), &[seen(0, 9, 9)], AFTER);
        assert!(!caught_up.observe(later, &[seen(0, 9, 12)], AFTER));
        // A message arrived (the watch is cleared).
        let mut cleared = StallWatch::default();
        cleared.observe(t0, &[seen(0, 5, 9)], AFTER);
        cleared.clear();
        assert!(!cleared.observe(later, &[seen(0, 5, 9)], AFTER));
    }
}
