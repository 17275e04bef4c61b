//! The event feed port's contract, run against both implementations: the Kafka feed
//! (production: relay-published Avro, consumer group) and the store-fed reader (embedded mode,
//! rebuilds). Fed the same stored history, including a re-sent duplicate, both must leave the
//! projection in exactly the same state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_eventstore::publish::to_published;
use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::testing::fresh_sqlite;
use chaos_eventstore::{EventLog, Position};
use chaos_platform::kafka::{delete_topics, ensure_topics, KafkaConfig};
use chaos_projectors::runner::{Batching, KafkaRunner, ProjectorMetrics, StoreFeed};
use chaos_readmodel::{DocumentStore, Keys, MemoryStore, ViewProjection};
use chaos_schemas::AvroCodec;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

mod common;
use common::history;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_and_store_feeds_build_identical_read_models() {
    let (pool, _dir) = fresh_sqlite().await;
    let repo = SqliteEventRepository::new(pool);
    let ids = history(&repo).await;
    let log = repo.log();
    let stored = log.read_after(Position::START, 10_000).await.unwrap();

    // Store-fed.
    let from_store = Arc::new(MemoryStore::default());
    let metrics = ProjectorMetrics::new(&prometheus::Registry::new());
    let views = || chaos_readmodel::views::all();
    let projection = ViewProjection::new(from_store.clone(), Keys::new("p:", "v1"), views());
    let feed = StoreFeed::new("sheets", Arc::new(log), Arc::new(projection), metrics);
    let done = feed.catch_up(Position::START, |_| {}).await.unwrap();
    assert_eq!(done.events, stored.len() as u64);
    assert_eq!(done.dead_letters, 0);

    // Kafka-fed: publish what the relay would, with the first event of one aggregate re-sent.
    let kafka = KafkaConfig {
        bootstrap_servers: env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        topic_prefix: format!("t{}.", uuid::Uuid::new_v4().simple()),
        partitions: 3,
        replication_factor: 1,
        options: Default::default(),
        security_protocol: "plaintext".into(),
        sasl_mechanism: String::new(),
        sasl_username: String::new(),
        sasl_password: Default::default(),
        ssl_ca_location: String::new(),
    };
    let topic = kafka.topic("chaos.character.events");
    let dead = kafka.topic("chaos.deadletter.redis");
    ensure_topics(&kafka, &[topic.clone(), dead.clone()], &[])
        .await
        .unwrap();
    let registry = env(
        "SCHEMA_REGISTRY_URL",
        "http://127.0.0.1:8081/apis/ccompat/v7",
    );
    let codec = AvroCodec::new(&registry).unwrap();
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    let mut sends: Vec<&chaos_eventstore::StoredEvent> = stored.iter().collect();
    sends.push(&stored[0]);
    for s in sends {
        let event = to_published(s).unwrap();
        let payload = codec.encode(&topic, &event).await.unwrap();
        producer
            .send(
                FutureRecord::to(&topic).key(event.key()).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let from_kafka = Arc::new(MemoryStore::default());
    let metrics = ProjectorMetrics::new(&prometheus::Registry::new());
    let runner = KafkaRunner::new(
        "redis",
        &kafka,
        "feed-contract",
        vec![topic.clone()],
        dead.clone(),
        codec,
        ViewProjection::new(from_kafka.clone(), Keys::new("p:", "v1"), views()),
        metrics.clone(),
        Batching::new(100, Duration::from_millis(5)),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let handle = {
        let stop = stop.clone();
        tokio::spawn(async move { runner.run(stop).await })
    };
    let keys: Vec<String> = ids
        .iter()
        .map(|id| Keys::new("p:", "v1").doc("sheet", id))
        .collect();
    let expected = from_store.get_many(&keys).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = from_kafka.get_many(&keys).await.unwrap();
        if got == expected && metrics.duplicates.with_label_values(&["redis"]).get() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Kafka-fed read model never matched: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(expected.iter().all(|d| d
        .as_ref()
        .is_some_and(|d| d.positions.values().sum::<u64>() == d.applied)));
    assert_eq!(metrics.dead_letters.with_label_values(&["redis"]).get(), 0);
    stop.cancel();
    handle.await.unwrap().unwrap();
    // Passed: leave nothing behind (a failure keeps the topics for inspection).
    delete_topics(&kafka.client_config(), &[topic, dead])
        .await
        .unwrap();
}

/// The store feed reads, decodes and has the sink prepare the next batch while the one in hand
/// is written: fed in small batches with an undecodable row among them, the warehouse holds
/// exactly what applying the decodable events in one go gives, and the row is one dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_feed_reading_ahead_loses_nothing_and_dead_letters_the_undecodable() {
    use chaos_projectors::warehouse::Warehouse;

    let (pool, dir) = fresh_sqlite().await;
    let repo = SqliteEventRepository::new(pool.clone());
    history(&repo).await;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata) VALUES ('character', ?, 1, 'NoSuchEvent', '1.0', '{}', '{}')",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .execute(&pool)
    .await
    .unwrap();
    history(&repo).await;
    let log = repo.log();
    let stored = log.read_after(Position::START, 10_000).await.unwrap();
    let decodable: Vec<_> = stored.iter().filter_map(|s| to_published(s).ok()).collect();
    assert_eq!(decodable.len() + 1, stored.len());

    let whole = Warehouse::open(dir.0.join("whole.duckdb")).await.unwrap();
    whole.apply_batch(&decodable, &[]).await.unwrap();
    let fed = Warehouse::open(dir.0.join("fed.duckdb")).await.unwrap();
    let metrics = ProjectorMetrics::new(&prometheus::Registry::new());
    let feed = StoreFeed::new(
        "warehouse",
        Arc::new(log),
        Arc::new(fed.clone()),
        metrics.clone(),
    )
    .with_batch(4);
    let done = feed.catch_up(Position::START, |_| {}).await.unwrap();
    assert_eq!(done.events, stored.len() as u64);
    assert_eq!(done.applied, decodable.len() as u64);
    assert_eq!(done.dead_letters, 1);
    assert_eq!(
        metrics.dead_letters.with_label_values(&["warehouse"]).get(),
        1
    );
    assert_eq!(done.position, stored.last().map(|s| s.position).unwrap());
    assert_eq!(
        fed.checksum().await.unwrap(),
        whole.checksum().await.unwrap()
    );
}

/// The store read through, failing the `fail_at`-th read (counted from 1) once: a database
/// that goes away in the middle of a catch-up.
#[derive(Debug)]
struct FailingOnce {
    inner: Arc<dyn EventLog>,
    reads: std::sync::atomic::AtomicU32,
    fail_at: u32,
}

#[async_trait::async_trait]
impl EventLog for FailingOnce {
    async fn read_after(
        &self,
        after: Position,
        limit: u32,
    ) -> chaos_eventstore::Result<Vec<chaos_eventstore::StoredEvent>> {
        let read = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if read == self.fail_at {
            return Err(chaos_eventstore::Error::Database(sqlx::Error::PoolTimedOut));
        }
        self.inner.read_after(after, limit).await
    }

    async fn wait_for_append(&self, timeout: Duration) {
        self.inner.wait_for_append(timeout).await;
    }

    async fn count_after(&self, after: Position) -> chaos_eventstore::Result<u64> {
        self.inner.count_after(after).await
    }
}

/// The store feed reads its batches ahead in a task of its own: when a read ahead fails, the
/// catch-up fails only after the batch in hand is applied and its position saved, and a
/// catch-up from that position ends with the very warehouse one that never failed builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_ahead_fails_the_catch_up_after_the_batch_in_hand_which_resumes_from_it() {
    use chaos_projectors::warehouse::{Warehouse, STORE_FEED};

    let (pool, dir) = fresh_sqlite().await;
    let repo = SqliteEventRepository::new(pool);
    history(&repo).await;
    let log = repo.log();
    let stored = log.read_after(Position::START, 10_000).await.unwrap();
    assert!(
        stored.len() > 12,
        "the history spans more than three batches of 4"
    );
    let whole = Warehouse::open(dir.0.join("whole.duckdb")).await.unwrap();
    let all: Vec<_> = stored.iter().map(|s| to_published(s).unwrap()).collect();
    whole.apply_batch(&all, &[]).await.unwrap();

    let fed = Warehouse::open(dir.0.join("fed.duckdb")).await.unwrap();
    let log: Arc<dyn EventLog> = Arc::new(log);
    let feed = |log: Arc<dyn EventLog>| {
        StoreFeed::new(
            "warehouse",
            log,
            Arc::new(fed.clone()),
            ProjectorMetrics::new(&prometheus::Registry::new()),
        )
        .with_batch(4)
        .with_checkpoint(fed.store_checkpoint())
    };
    // Read 1 is the first batch, read 2 the second (ahead, while the first is written), read 3
    // the third (ahead, while the second is written): it fails.
    let failing = Arc::new(FailingOnce {
        inner: log.clone(),
        reads: Default::default(),
        fail_at: 3,
    });
    let error = feed(failing)
        .catch_up(Position::START, |_| {})
        .await
        .expect_err("the third read fails");
    assert!(
        format!("{error:#}").contains("pool timed out"),
        "the read's own error: {error:#}"
    );
    let saved = fed.store_position(STORE_FEED).await.unwrap();
    assert_eq!(saved, stored[7].position, "saved after the second batch");

    let resumed = feed(log).catch_up(saved, |_| {}).await.unwrap();
    assert_eq!(resumed.events, stored.len() as u64 - 8);
    assert_eq!(resumed.dead_letters, 0);
    assert_eq!(
        fed.checksum().await.unwrap(),
        whole.checksum().await.unwrap()
    );
}
