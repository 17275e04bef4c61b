//! The store-fed warehouse (the embedded mode's) on a real SQLite event store and DuckDB file:
//! it reports how far behind it is while it catches up (events and seconds, in the projector
//! metrics, with a warning past the threshold), and a shutdown in the middle of a long catch-up
//! stops after the batch in hand with its position saved, so the next start resumes there and
//! ends with every event exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::EventLog;
use chaos_projectors::runner::{ProjectorMetrics, StoreFeed};
use chaos_projectors::warehouse::{Lag, LagWarning, StoreLag, Warehouse, STORE_FEED};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

/// `events` events of 200 characters moving between zones, all `age` old.
async fn backlog(pool: &sqlx::SqlitePool, events: u32, age: chrono::Duration) {
    let at = (Utc::now() - age).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT 'character', 'c-' || (i % 200), i / 200 + 1, 'ZoneEntered', '1',
                json_object('ZoneEntered', json_object('from_zone', 'a', 'to_zone', 'b',
                                                       'entered_at', ?2)),
                json_object('occurred_at', ?2)
         FROM n",
    )
    .bind(events)
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
}

async fn events_in(w: &Warehouse) -> u64 {
    w.counts()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.table == "events")
        .map_or(0, |c| c.rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_reported_while_catching_up_and_a_shutdown_stops_after_the_batch_in_hand() {
    let (pool, dir) = chaos_eventstore::testing::fresh_sqlite().await;
    let total = 20_000;
    backlog(&pool, total, chrono::Duration::minutes(10)).await;
    let repo = SqliteEventRepository::new(pool.clone());
    let log: Arc<dyn EventLog> = Arc::new(repo.log());
    let registry = prometheus::Registry::new();
    let metrics = ProjectorMetrics::new(&registry);
    let path = dir.0.join("warehouse.duckdb");

    // Behind by the whole backlog, ten minutes old: reported, and a warning past 30 s (once
    // until the warning interval passes).
    let w = Warehouse::open(&path).await.unwrap();
    let lag = StoreLag::new(
        w.clone(),
        log.clone(),
        metrics.clone(),
        "warehouse",
        Duration::from_secs(30),
    );
    let measured = lag.measure().await.unwrap();
    assert_eq!(measured.events, u64::from(total));
    assert!((590..=700).contains(&measured.seconds), "{measured:?}");
    let labels = ["warehouse", "store", "0"];
    assert_eq!(
        metrics.lag_events.with_label_values(&labels).get(),
        i64::from(total)
    );
    assert_eq!(
        metrics.lag_seconds.with_label_values(&labels).get(),
        measured.seconds as i64
    );
    let mut warning = LagWarning::new("warehouse", Duration::from_secs(30));
    assert!(warning.observe(measured));
    assert!(!warning.observe(measured), "repeated only every WARN_EVERY");
    assert!(!warning.observe(Lag {
        events: 3,
        seconds: 1
    }));

    // A shutdown in the middle of the catch-up: the feed stops after the batch in hand.
    let feed = StoreFeed::new(
        "warehouse",
        log.clone(),
        Arc::new(w.clone()),
        metrics.clone(),
    )
    .with_batch(500)
    .with_checkpoint(w.store_checkpoint());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (feed, shutdown) = (feed.clone(), shutdown.clone());
        async move { feed.run(chaos_eventstore::Position::START, shutdown).await }
    });
    // Until a batch's position is saved: the rows commit first, so a lag read between the two
    // still counted every event (CI caught that once).
    let deadline = Instant::now() + Duration::from_secs(60);
    let partway = loop {
        let lag = lag.measure().await.unwrap();
        if lag.events < u64::from(total) {
            break lag;
        }
        assert!(Instant::now() < deadline, "the feed applied nothing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        partway.events < u64::from(total) && partway.events > 0,
        "{partway:?}"
    );
    let asked = Instant::now();
    shutdown.cancel();
    running.await.unwrap().unwrap();
    let stopped_after = asked.elapsed();
    let applied = events_in(&w).await;
    let position = w.store_position(STORE_FEED).await.unwrap();
    w.close().await.unwrap();
    println!("stopped {stopped_after:?} after the request with {applied} of {total} applied");
    assert!(
        applied < u64::from(total),
        "the shutdown waited for the whole backlog"
    );
    assert_eq!(
        position.global_position, applied as i64,
        "the position saved is the rows'"
    );

    // The next start resumes there and ends with every event once; then nothing is behind.
    let w = Warehouse::open(&path).await.unwrap();
    let feed = StoreFeed::new(
        "warehouse",
        log.clone(),
        Arc::new(w.clone()),
        metrics.clone(),
    )
    .with_batch(5_000)
    .with_checkpoint(w.store_checkpoint());
    let from = feed.resume_position().await.unwrap();
    assert_eq!(from, position);
    let rest = feed.catch_up(from, |_| {}).await.unwrap();
    assert_eq!(rest.applied + applied, u64::from(total));
    assert_eq!(events_in(&w).await, u64::from(total));
    let lag = StoreLag::new(
        w.clone(),
        log,
        metrics.clone(),
        "warehouse",
        Duration::from_secs(30),
    );
    assert_eq!(lag.measure().await.unwrap(), Lag::default());
    assert_eq!(metrics.lag_seconds.with_label_values(&labels).get(), 0);
    w.close().await.unwrap();
}
