//! The Kafka runner against the real broker and schema registry (deploy/local/services.sh):
//! poison messages and sequence gaps are dead-lettered with a reason, duplicates are skipped,
//! the projection carries on, and committed offsets mean a restarted member re-applies nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_domain::{AccountId, CharacterEvent, CharacterName, GameEvent};
use chaos_platform::kafka::{delete_topics, ensure_topics, KafkaConfig};
use chaos_projectors::runner::{
    Batching, FeedOffset, KafkaRunner, ProjectionSink, ProjectorMetrics, Verdict,
};
use chaos_readmodel::{DocumentStore, Keys, MemoryStore, StoreError, ViewProjection};
use chaos_schemas::{frame, unframe, AnyEvent, AvroCodec, EventEnvelope, PublishedEvent};
use chrono::{DateTime, TimeZone, Utc};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The local broker, under a topic prefix of this test's own.
fn kafka_config() -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        topic_prefix: format!("t{}.", uuid::Uuid::new_v4().simple()),
        partitions: 1,
        replication_factor: 1,
        options: Default::default(),
        security_protocol: "plaintext".into(),
        sasl_mechanism: String::new(),
        sasl_username: String::new(),
        sasl_password: Default::default(),
        ssl_ca_location: String::new(),
    }
}

/// The character topic and the dead-letter topic `dead` under `kafka`'s prefix, created.
async fn character_topics(kafka: &KafkaConfig, dead: &str) -> (String, String) {
    let topic = kafka.topic("chaos.character.events");
    let dead = kafka.topic(dead);
    ensure_topics(kafka, &[topic.clone(), dead.clone()], &[])
        .await
        .unwrap();
    (topic, dead)
}

/// Sends `payload` keyed by `key` to `topic`, waiting for the broker's acknowledgement.
async fn send(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
}

/// How far character `id`'s sheet in `store` has applied the character's stream (0: no sheet).
async fn sheet_position(store: &MemoryStore, id: &str) -> u64 {
    store
        .get(&Keys::new("t:", "v1").doc("sheet", id))
        .await
        .unwrap()
        .map_or(0, |d| d.position(&format!("character/{id}")))
}

/// A runner of the Redis projection's views into `store`, reading `topic` in a consumer group of
/// the topic's own, spawned: its metrics, what stops it, and its task.
fn spawn_sheet_runner(
    kafka: &KafkaConfig,
    topic: &str,
    dead: &str,
    store: Arc<MemoryStore>,
    batching: Batching,
) -> (
    ProjectorMetrics,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let metrics = ProjectorMetrics::new(&prometheus::Registry::new());
    let projection =
        ViewProjection::new(store, Keys::new("t:", "v1"), chaos_readmodel::views::all());
    let runner = KafkaRunner::new(
        "redis",
        kafka,
        &format!("test-group-{topic}"),
        vec![topic.to_owned()],
        dead.to_owned(),
        AvroCodec::new(&registry_url()).unwrap(),
        projection,
        metrics.clone(),
        batching,
    )
    .unwrap();
    let stop = CancellationToken::new();
    let handle = {
        let stop = stop.clone();
        tokio::spawn(async move { runner.run(stop).await })
    };
    (metrics, stop, handle)
}

fn registry_url() -> String {
    env(
        "SCHEMA_REGISTRY_URL",
        "http://127.0.0.1:8081/apis/ccompat/v7",
    )
}

fn published(id: &str, sequence: u64, event: CharacterEvent) -> PublishedEvent {
    PublishedEvent {
        envelope: EventEnvelope {
            event_id: uuid::Uuid::new_v4(),
            event_type: event.type_name().to_owned(),
            aggregate_type: "character".into(),
            aggregate_id: id.to_owned(),
            sequence,
            global_position: i64::try_from(sequence).unwrap(),
            occurred_at: event.occurred_at(),
            correlation_id: None,
            causation_id: None,
            traceparent: None,
        },
        event: AnyEvent::Character(event),
    }
}

/// Event 1 of character `id`: created as a level-1 ranger named `name` at `at`.
fn created(id: &str, name: &str, at: DateTime<Utc>) -> PublishedEvent {
    published(
        id,
        1,
        CharacterEvent::CharacterCreated {
            owner: AccountId::from_uuid(uuid::Uuid::from_u128(1)),
            name: CharacterName::parse(name).unwrap(),
            class: "ranger".into(),
            level: 1,
            max_hp: 100,
            max_mana: 80,
            zone: "whispering_woods".into(),
            skills: vec!["strike".into()],
            created_at: at,
        },
    )
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_and_gaps_are_dead_lettered_and_the_projection_carries_on() {
    let kafka = kafka_config();
    let registry = registry_url();
    let (topic, dead) = character_topics(&kafka, "chaos.deadletter.redis").await;

    let t = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    let created = created(&id, "Dex", t);
    let entered = |sequence, to: &str| {
        published(
            &id,
            sequence,
            CharacterEvent::ZoneEntered {
                from_zone: "whispering_woods".into(),
                to_zone: to.into(),
                entered_at: t,
            },
        )
    };
    let codec = AvroCodec::new(&registry).unwrap();
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    let mut messages: Vec<Vec<u8>> = Vec::new();
    messages.push(codec.encode(&topic, &created).await.unwrap());
    messages.push(b"definitely not avro".to_vec());
    messages.push(
        codec
            .encode(&topic, &entered(2, "starter_meadow"))
            .await
            .unwrap(),
    );
    messages.push(codec.encode(&topic, &created).await.unwrap()); // a re-send: duplicate
    messages.push(
        codec
            .encode(&topic, &entered(5, "chaos_wastes"))
            .await
            .unwrap(),
    ); // gap
    for payload in &messages {
        send(&producer, &topic, &id, payload).await;
    }

    let store = Arc::new(MemoryStore::default());
    let run = |store: Arc<MemoryStore>, batching: Batching| {
        spawn_sheet_runner(&kafka, &topic, &dead, store, batching)
    };
    let batching = Batching::new(100, Duration::from_millis(5));
    let (metrics, stop, handle) = run(store.clone(), batching);
    let key = Keys::new("t:", "v1").doc("sheet", &id);
    wait_until("the sheet to reach version 2 and both dead letters", || {
        let (store, id, metrics) = (store.clone(), id.clone(), metrics.clone());
        async move {
            sheet_position(&store, &id).await == 2
                && metrics.dead_letters.with_label_values(&["redis"]).get() == 2
        }
    })
    .await;
    assert_eq!(metrics.applied.with_label_values(&["redis"]).get(), 2);
    assert_eq!(metrics.duplicates.with_label_values(&["redis"]).get(), 1);
    let sheet = store.get(&key).await.unwrap().unwrap();
    assert_eq!(
        sheet.body.to_value().unwrap()["character"]["zone"],
        "starter_meadow",
        "the gap event was not applied"
    );
    assert_eq!(sheet.applied, 2);

    // The dead-letter topic holds the original bytes with the reason.
    let mut config = kafka.client_config();
    config
        .set("group.id", format!("dlq-reader-{dead}"))
        .set("auto.offset.reset", "earliest");
    let reader: StreamConsumer = config.create().unwrap();
    reader.subscribe(&[&dead]).unwrap();
    let mut reasons = Vec::new();
    while reasons.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(30), reader.recv())
            .await
            .unwrap()
            .unwrap();
        let headers = m.headers().expect("dead letters carry headers");
        let reason = headers
            .iter()
            .find(|h| h.key == "reason")
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .expect("a reason header");
        reasons.push((reason, m.payload().map(<[u8]>::to_vec)));
    }
    assert!(reasons[0].0.contains("cannot decode"), "{reasons:?}");
    assert_eq!(reasons[0].1.as_deref(), Some(&b"definitely not avro"[..]));
    assert!(reasons[1].0.contains("sequence gap"), "{reasons:?}");

    // Stop, then start a new member of the same group: the stored offsets mean nothing is
    // consumed again, so nothing is applied or dead-lettered twice. This member lets the broker
    // hold its fetches, as the warehouse does: a lone event, far below the fetch's minimum
    // size, still arrives.
    stop.cancel();
    handle.await.unwrap().unwrap();
    let (metrics, stop, handle) = run(
        store.clone(),
        batching.fetch_wait(Duration::from_millis(200)),
    );
    let next = codec
        .encode(&topic, &entered(3, "ember_caverns"))
        .await
        .unwrap();
    send(&producer, &topic, &id, &next).await;
    wait_until("the next event after the restart", || {
        let (store, id) = (store.clone(), id.clone());
        async move { sheet_position(&store, &id).await == 3 }
    })
    .await;
    assert_eq!(metrics.applied.with_label_values(&["redis"]).get(), 1);
    assert_eq!(metrics.duplicates.with_label_values(&["redis"]).get(), 0);
    assert_eq!(metrics.dead_letters.with_label_values(&["redis"]).get(), 0);
    stop.cancel();
    handle.await.unwrap().unwrap();
    // Passed: leave nothing behind (a failure keeps the topics for inspection).
    delete_topics(&kafka.client_config(), &[topic, dead])
        .await
        .unwrap();
}

/// Wants only `CharacterCreated`; says so to the feed (filters) or not.
#[derive(Debug)]
struct Picky {
    filters: bool,
    seen: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ProjectionSink for Picky {
    fn name(&self) -> &str {
        "picky"
    }

    fn wants(&self, _aggregate_type: &str, event_type: &str) -> bool {
        event_type == "CharacterCreated"
    }

    fn filters(&self) -> bool {
        self.filters
    }

    async fn apply_batch(
        &self,
        events: &[PublishedEvent],
        _checkpoint: &[FeedOffset],
    ) -> Result<Vec<Verdict>, StoreError> {
        let mut seen = self.seen.lock().unwrap();
        Ok(events
            .iter()
            .map(|e| {
                seen.push(e.envelope.event_type.clone());
                if self.wants(&e.envelope.aggregate_type, &e.envelope.event_type) {
                    Verdict::Applied
                } else {
                    Verdict::Ignored
                }
            })
            .collect())
    }
}

/// A sink that filters gets the messages it does not want acknowledged by the record their
/// schema id names (no headers needed), else by their headers, never decoded (an undecodable
/// one is not a dead letter); a sink that does not filter gets every message decoded, its
/// headers unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtering_sink_skips_unwanted_messages_undecoded_by_schema_id_or_headers() {
    let kafka = kafka_config();
    let registry = registry_url();
    let (topic, dead) = character_topics(&kafka, "chaos.deadletter.picky").await;
    let id = uuid::Uuid::new_v4().to_string();
    let created = created(
        &id,
        "Pik",
        Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap(),
    );
    let codec = AvroCodec::new(&registry).unwrap();
    // The registered id of an unwanted record, framing a body that is not that record's.
    let entered = published(
        &id,
        2,
        CharacterEvent::ZoneEntered {
            from_zone: "whispering_woods".into(),
            to_zone: "ashen_steppe".into(),
            entered_at: Utc.with_ymd_and_hms(2026, 12, 2, 12, 1, 0).unwrap(),
        },
    );
    let (entered_schema, _) = unframe(&codec.encode(&topic, &entered).await.unwrap()).unwrap();
    let not_its_body = frame(entered_schema, b"\xff\xff not a ZoneEntered");
    let headers_of = |pairs: &[(&str, String)]| {
        pairs.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value.as_str()),
            })
        })
    };
    // An unwanted event type whose body does not decode, by its headers; another by its
    // schema id, without headers; then a wanted event.
    let unwanted = headers_of(&[
        ("aggregate_type", "character".to_owned()),
        ("event_type", "ZoneEntered".to_owned()),
    ]);
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    let sends: [(&[u8], OwnedHeaders); 3] = [
        (b"not avro at all", unwanted),
        (&not_its_body, OwnedHeaders::new()),
        (
            &codec.encode(&topic, &created).await.unwrap(),
            headers_of(&created.headers()),
        ),
    ];
    for (payload, headers) in sends {
        producer
            .send(
                FutureRecord::to(&topic)
                    .key(&id)
                    .payload(payload)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    for filters in [true, false] {
        let metrics = ProjectorMetrics::new(&prometheus::Registry::new());
        let sink = Arc::new(Picky {
            filters,
            seen: Default::default(),
        });
        let runner = KafkaRunner::new(
            "picky",
            &kafka,
            &format!("picky-{filters}"),
            vec![topic.clone()],
            dead.clone(),
            AvroCodec::new(&registry).unwrap(),
            SharedSink(sink.clone()),
            metrics.clone(),
            Batching::new(100, Duration::from_millis(5)),
        )
        .unwrap();
        let stop = CancellationToken::new();
        let handle = {
            let stop = stop.clone();
            tokio::spawn(async move { runner.run(stop).await })
        };
        let expected_dead = if filters { 0 } else { 2 };
        wait_until(
            "the wanted event (and the dead letters of a sink that decodes)",
            || {
                let (sink, metrics) = (sink.clone(), metrics.clone());
                async move {
                    !sink.seen.lock().unwrap().is_empty()
                        && metrics.dead_letters.with_label_values(&["picky"]).get() == expected_dead
                }
            },
        )
        .await;
        stop.cancel();
        handle.await.unwrap().unwrap();
        assert_eq!(*sink.seen.lock().unwrap(), vec!["CharacterCreated"]);
        assert_eq!(metrics.applied.with_label_values(&["picky"]).get(), 1);
        assert_eq!(
            metrics.dead_letters.with_label_values(&["picky"]).get(),
            expected_dead,
            "filters: {filters}"
        );
    }
    delete_topics(&kafka.client_config(), &[topic, dead])
        .await
        .unwrap();
}

/// A sink shared with the test, which reads what it saw.
#[derive(Debug)]
struct SharedSink(Arc<Picky>);

#[async_trait::async_trait]
impl ProjectionSink for SharedSink {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn wants(&self, aggregate_type: &str, event_type: &str) -> bool {
        self.0.wants(aggregate_type, event_type)
    }

    fn filters(&self) -> bool {
        self.0.filters()
    }

    async fn apply_batch(
        &self,
        events: &[PublishedEvent],
        checkpoint: &[FeedOffset],
    ) -> Result<Vec<Verdict>, StoreError> {
        self.0.apply_batch(events, checkpoint).await
    }
}

/// Records the aggregate of every event it is given, for the test holding the other clone.
#[derive(Debug, Default, Clone)]
struct Recorder {
    aggregates: Arc<std::sync::Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl ProjectionSink for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn apply_batch(
        &self,
        events: &[PublishedEvent],
        _checkpoint: &[FeedOffset],
    ) -> Result<Vec<Verdict>, StoreError> {
        let mut seen = self.aggregates.lock().unwrap();
        seen.extend(events.iter().map(|e| e.envelope.aggregate_id.clone()));
        Ok(vec![Verdict::Applied; events.len()])
    }
}

/// A runner of group `group` feeding a [`Recorder`] from `topic`, started: the runner, what it
/// recorded, its metrics, and how to stop it.
struct Recording {
    runner: Arc<KafkaRunner>,
    sink: Recorder,
    metrics: ProjectorMetrics,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Recording {
    fn start(
        kafka: &KafkaConfig,
        group: &str,
        topic: &str,
        dead: &str,
        stall_after: Option<Duration>,
    ) -> Self {
        let metrics = ProjectorMetrics::new(&prometheus::Registry::new());
        let sink = Recorder::default();
        // The group is the test's own (its topic is): a group name shared by runs would tie a
        // run to what an earlier one left in it (a member not yet timed out after a kill or a
        // broker restart), or to a run beside it on the same Kafka.
        let mut runner = KafkaRunner::new(
            "recorder",
            kafka,
            &format!("{group}-{topic}"),
            vec![topic.to_owned()],
            dead.to_owned(),
            AvroCodec::new(&registry_url()).unwrap(),
            sink.clone(),
            metrics.clone(),
            Batching::new(100, Duration::from_millis(5)),
        )
        .unwrap();
        if let Some(after) = stall_after {
            runner = runner.with_stall_after(after);
        }
        let runner = Arc::new(runner);
        let stop = CancellationToken::new();
        let handle = {
            let (runner, stop) = (runner.clone(), stop.clone());
            tokio::spawn(async move { runner.run(stop).await })
        };
        Self {
            runner,
            sink,
            metrics,
            stop,
            handle,
        }
    }

    /// A check for [`wait_until`]: whether an event of aggregate `id` was recorded.
    fn saw(&self, id: &str) -> impl FnMut() -> std::future::Ready<bool> {
        let (sink, id) = (self.sink.clone(), id.to_owned());
        move || std::future::ready(sink.aggregates.lock().unwrap().contains(&id))
    }

    async fn stop(self) {
        self.stop.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

/// A character topic with `partitions` partitions and a dead-letter topic, under this test's
/// own prefix, and a producer of `CharacterCreated` events to it.
struct TestTopic {
    kafka: KafkaConfig,
    topic: String,
    dead: String,
    codec: AvroCodec,
    producer: FutureProducer,
}

impl TestTopic {
    async fn create(partitions: i32) -> Arc<Self> {
        let kafka = KafkaConfig {
            partitions,
            ..kafka_config()
        };
        let (topic, dead) = character_topics(&kafka, "chaos.deadletter.recorder").await;
        Arc::new(Self {
            codec: AvroCodec::new(&registry_url()).unwrap(),
            producer: kafka.client_config().create().unwrap(),
            kafka,
            topic,
            dead,
        })
    }

    /// Sends the creation of character `id` (to `partition`, else where its key falls).
    async fn send(&self, partition: Option<i32>, id: &str) {
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let payload = self
            .codec
            .encode(&self.topic, &created(id, "Sta", at))
            .await
            .unwrap();
        let mut record = FutureRecord::to(&self.topic).key(id).payload(&payload);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap();
    }

    fn recording(&self, group: &str, stall_after: Option<Duration>) -> Recording {
        Recording::start(&self.kafka, group, &self.topic, &self.dead, stall_after)
    }

    async fn delete(&self) {
        delete_topics(
            &self.kafka.client_config(),
            &[self.topic.clone(), self.dead.clone()],
        )
        .await
        .unwrap();
    }
}

/// A consumer that stops delivering while its partition holds messages (after a broker restart
/// in CI, a consumer whose client kept no usable broker connection) is replaced by a new member
/// of the group, which resumes from the committed offsets: the feed goes on by itself, and says
/// so. A paused partition stands in for the broken client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_is_replaced_and_the_feed_goes_on() {
    let topic = TestTopic::create(1).await;
    let (before, after) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    topic.send(None, &before).await;

    let recording = topic.recording("stall-group", Some(Duration::from_secs(3)));
    wait_until("the first event", recording.saw(&before)).await;
    recording.runner.simulate_stall().unwrap();
    topic.send(None, &after).await;
    wait_until(
        "the event sent while the consumer was stalled",
        recording.saw(&after),
    )
    .await;
    assert_eq!(
        recording
            .metrics
            .consumer_restarts
            .with_label_values(&["recorder"])
            .get(),
        1
    );
    recording.stop().await;
    topic.delete().await;
}

/// A partition that stops delivering while the others keep the runner busy (a fetcher stuck on
/// one broker) shows its lag, in events and in seconds, growing: the lag of a busy runner was
/// measured only on the partitions of the batch in hand, so a stuck one kept showing what it
/// last was (0) and no lag alert could fire. Once it delivers again, its lag is 0 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_stops_delivering_while_the_others_keep_the_runner_busy_shows_its_lag() {
    let topic = TestTopic::create(2).await;
    let new_id = || uuid::Uuid::new_v4().to_string();
    let (first0, first1, held) = (new_id(), new_id(), new_id());
    topic.send(Some(0), &first0).await;
    topic.send(Some(1), &first1).await;

    let recording = topic.recording("partition-lag-group", None);
    let (runner, sink, metrics) = (&recording.runner, &recording.sink, &recording.metrics);
    wait_until("the first event of partition 0", recording.saw(&first0)).await;
    wait_until("the first event of partition 1", recording.saw(&first1)).await;

    runner
        .simulate_partition_stall(&topic.topic, 0, true)
        .unwrap();
    topic.send(Some(0), &held).await;
    // Partition 1 keeps the runner busy: an event every 100 ms, never a second without one.
    let busy = CancellationToken::new();
    let sender = {
        let (busy, topic) = (busy.clone(), topic.clone());
        tokio::spawn(async move {
            let mut sent = 0u32;
            while !busy.is_cancelled() {
                topic.send(Some(1), &uuid::Uuid::new_v4().to_string()).await;
                sent += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            sent
        })
    };
    let lag = |partition: &str| {
        let labels = ["recorder", topic.topic.as_str(), partition];
        (
            metrics.lag_events.with_label_values(&labels).get(),
            metrics.lag_seconds.with_label_values(&labels).get(),
        )
    };
    wait_until(
        "partition 0's lag to show while partition 1 delivers",
        || {
            let (events, seconds) = lag("0");
            async move { events >= 1 && seconds >= 2 }
        },
    )
    .await;
    assert!(
        !sink.aggregates.lock().unwrap().contains(&held),
        "the held event was delivered while its partition was paused"
    );

    runner
        .simulate_partition_stall(&topic.topic, 0, false)
        .unwrap();
    wait_until(
        "the held event once its partition delivers",
        recording.saw(&held),
    )
    .await;
    wait_until("partition 0's lag back to 0", || {
        let (events, seconds) = lag("0");
        async move { events == 0 && seconds == 0 }
    })
    .await;
    busy.cancel();
    let sent = sender.await.unwrap();
    assert!(
        sent >= 20,
        "partition 1 got only {sent} events: the runner was not kept busy"
    );
    assert_eq!(
        metrics
            .consumer_restarts
            .with_label_values(&["recorder"])
            .get(),
        0,
        "a partition standing while the others deliver is not a stall of the consumer"
    );
    recording.stop().await;
    topic.delete().await;
}

/// A batch is applied no later than its window after its first message, however the later
/// messages trickle in. Thirty events of one character arrive 150 ms apart (4.5 s in all) to a
/// runner whose window is 600 ms and whose batches hold up to 1,000 events: the first events
/// must be in the store while the last ones are still being produced. A runner that waited
/// for each next message with the window kept this batch open until the trickle stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_applied_within_its_window_while_events_keep_trickling_in() {
    let kafka = kafka_config();
    let registry = registry_url();
    let (topic, dead) = character_topics(&kafka, "chaos.deadletter.redis").await;
    let store = Arc::new(MemoryStore::default());
    let (_, stop, handle) = spawn_sheet_runner(
        &kafka,
        &topic,
        &dead,
        store.clone(),
        Batching::new(1_000, Duration::from_millis(600)),
    );

    let t = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    let zones = ["starter_meadow", "whispering_woods"];
    let mut events = vec![created(&id, "Trickle", t)];
    for sequence in 2..=30u64 {
        events.push(published(
            &id,
            sequence,
            CharacterEvent::ZoneEntered {
                from_zone: zones[((sequence + 1) % 2) as usize].into(),
                to_zone: zones[(sequence % 2) as usize].into(),
                entered_at: t,
            },
        ));
    }
    let codec = AvroCodec::new(&registry).unwrap();
    let mut payloads = Vec::new();
    for event in &events {
        payloads.push(codec.encode(&topic, event).await.unwrap());
    }
    // The trickle: the spacing is the input under test, not a wait for a condition.
    let all_sent = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = {
        let (topic, id, all_sent) = (topic.clone(), id.clone(), all_sent.clone());
        let producer: FutureProducer = kafka.client_config().create().unwrap();
        tokio::spawn(async move {
            for payload in &payloads {
                send(&producer, &topic, &id, payload).await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            all_sent.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };

    let applied = || {
        let (store, id) = (store.clone(), id.clone());
        async move { sheet_position(&store, &id).await }
    };
    wait_until("the first batch", || {
        let applied = applied();
        async move { applied.await >= 1 }
    })
    .await;
    assert!(
        !all_sent.load(std::sync::atomic::Ordering::SeqCst),
        "the first events were applied only after the last of the trickle was sent (at \
         position {})",
        applied().await
    );
    producing.await.unwrap();
    wait_until("every event", || {
        let applied = applied();
        async move { applied.await == 30 }
    })
    .await;
    stop.cancel();
    handle.await.unwrap().unwrap();
    delete_topics(&kafka.client_config(), &[topic, dead])
        .await
        .unwrap();
}
