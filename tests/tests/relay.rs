//! One bad event must not stop the world: an event the relay cannot publish stops only its own
//! aggregate's stream (order kept), raises the alerting metrics, and every other aggregate keeps
//! flowing; once fixed and resumed, the stopped stream is republished in order.
//!
//! Needs `deploy/local/services.sh up` and the binaries (`cargo build --workspace --bins`).

use std::collections::BTreeSet;
use std::time::Duration;

use chaos_tests::kafka::TopicReader;
use chaos_tests::process::{metric_value, ServiceProcess};
use chaos_tests::{wait_until, Stack, StackOptions};

const FLOW: Duration = Duration::from_secs(90);

/// Inserts one row as a writer that bypasses the rules would (the append trigger still takes
/// the append lock, so the reader's ordering guarantee holds for it too).
async fn insert_row(
    pool: &sqlx::PgPool,
    id: &str,
    sequence: i64,
    event_type: &str,
    version: &str,
    payload: serde_json::Value,
) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('character', $1, $2, $3, $4, $5, '{}')",
    )
    .bind(id)
    .bind(sequence)
    .bind(event_type)
    .bind(version)
    .bind(payload)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_stops_only_its_own_stream() {
    let mut stack = Stack::start(StackOptions {
        relays: 1,
        projector: false,
        process_managers: false,
        query_api: false,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let api = stack.commands();
    let player = api.player("flow").await.unwrap();
    let mut healthy = Vec::new();
    for k in 0..2 {
        let c = api
            .create_character(&player.token, &format!("Flow{k}"), "warrior", &[])
            .await
            .unwrap()
            .answer()
            .unwrap();
        healthy.push(c.aggregate_id);
    }

    // A character whose second event no build of the relay can map (a version from the
    // future), followed by a third event that is fine on its own.
    let broken = uuid::Uuid::new_v4().to_string();
    let created = serde_json::json!({"CharacterCreated": {
        "owner": player.account_id, "name": "Broken", "class": "mage", "level": 1,
        "max_hp": 80, "max_mana": 120, "zone": "whispering_woods",
        "skills": ["strike", "fireball"], "created_at": "2026-11-30T08:00:00Z"}});
    let zone = |to: &str| {
        serde_json::json!({"ZoneEntered": {
        "from_zone": "whispering_woods", "to_zone": to, "entered_at": "2026-11-30T08:00:01Z"}})
    };
    let pool = stack.store().pool().clone();
    insert_row(&pool, &broken, 1, "CharacterCreated", "1", created).await;
    insert_row(
        &pool,
        &broken,
        2,
        "ZoneEntered",
        "99",
        zone("starter_meadow"),
    )
    .await;
    insert_row(
        &pool,
        &broken,
        3,
        "ZoneEntered",
        "1",
        zone("whispering_woods"),
    )
    .await;

    // Everything else keeps flowing, including what is appended after the bad event.
    for id in &healthy {
        for _ in 0..3 {
            api.cast_skill(&player.token, id, "strike", &[])
                .await
                .unwrap()
                .answer()
                .unwrap();
        }
    }
    let events = stack.store().all_events().await.unwrap();
    let want: BTreeSet<(String, i64)> = events
        .iter()
        .filter(|e| e.aggregate_id != broken)
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect();
    let mut reader = events_reader(&stack).await;
    reader.read_until_covered(&want, FLOW).await.unwrap();
    // The broken stream stopped at its bad event: its first event is out, nothing after it.
    let broken_seen: Vec<i64> = reader
        .records
        .iter()
        .filter(|r| r.event.envelope.aggregate_id == broken)
        .map(|r| r.event.envelope.sequence as i64)
        .collect();
    assert_eq!(
        broken_seen,
        vec![1],
        "only what came before the poison event"
    );

    // The operators see it: metrics, and the recorded stop with its reason.
    let relay = stack.relay(0);
    let metrics = relay.metrics().await.unwrap();
    assert_eq!(
        metric_value(&metrics, "chaos_relay_stopped_streams"),
        Some(1.0)
    );
    assert!(
        metrics.contains("chaos_relay_poison_events_total{aggregate=\"character\"} 1"),
        "{metrics}"
    );
    let (from, reason): (i64, String) = sqlx::query_as(
        "SELECT from_sequence, reason FROM relay_stopped_streams WHERE aggregate_id = $1",
    )
    .bind(&broken)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(from, 2);
    assert!(reason.contains("cannot be mapped"), "{reason}");

    // Fixed (here: the row corrected, as a new build understanding it would read it) and resumed:
    // the stream is republished from the stopped event, in order, and the stop is forgotten.
    sqlx::query("UPDATE events SET event_version = '1' WHERE aggregate_id = $1 AND sequence = 2")
        .bind(&broken)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE relay_stopped_streams SET resume_requested = true WHERE aggregate_id = $1")
        .bind(&broken)
        .execute(&pool)
        .await
        .unwrap();
    let all: BTreeSet<(String, i64)> = (1..=3).map(|s| (broken.clone(), s)).collect();
    reader.read_until_covered(&all, FLOW).await.unwrap();
    let order: Vec<i64> = reader
        .records
        .iter()
        .filter(|r| r.event.envelope.aggregate_id == broken)
        .map(|r| r.event.envelope.sequence as i64)
        .collect();
    assert_eq!(order, vec![1, 2, 3], "republished in order, nothing twice");
    wait_until(
        "the stop to be forgotten",
        FLOW,
        Duration::from_millis(100),
        || async {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM relay_stopped_streams")
                .fetch_one(&pool)
                .await
                .map_err(|e| e.to_string())?;
            let metrics = stack.relays[0].metrics().await.map_err(|e| e.to_string())?;
            let gauge = metric_value(&metrics, "chaos_relay_stopped_streams");
            if left == 0 && gauge == Some(0.0) {
                Ok(Some(()))
            } else {
                Err(format!("{left} rows, gauge {gauge:?}"))
            }
        },
    )
    .await
    .unwrap();
}

/// Live, a batch starts no sooner than `batch_interval_ms` after the one before it began, so
/// what is appended meanwhile goes out together: fewer reads, produce requests and checkpoints
/// under load. Casts sent while the relay waits are published in one batch, in order, once the
/// interval has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_batches_wait_their_interval() {
    const INTERVAL_MS: u64 = 8_000;
    let stack = Stack::start(StackOptions {
        relays: 1,
        projector: false,
        process_managers: false,
        query_api: false,
        env: vec![(
            "relay".into(),
            "CHAOS__RELAY__BATCH_INTERVAL_MS".into(),
            INTERVAL_MS.to_string(),
        )],
        ..StackOptions::default()
    })
    .await
    .unwrap();
    // Made first: it takes a while, which must not count as the relay's wait.
    let mut reader = events_reader(&stack).await;
    let api = stack.commands();
    let player = api.player("batcher").await.unwrap();
    let created_at = std::time::Instant::now();
    let character = api
        .create_character(&player.token, "Batcher", "warrior", &[])
        .await
        .unwrap()
        .answer()
        .unwrap()
        .aggregate_id;
    let relay = &stack.relays[0];
    // The creation is published in a batch of its own; the relay then waits out the interval.
    let first = wait_until(
        "the creation to be published",
        FLOW,
        Duration::from_millis(20),
        move || async move {
            let n = batches(relay).await?;
            if n >= 1.0 {
                Ok(Some(n))
            } else {
                Err(format!("{n} batches"))
            }
        },
    )
    .await
    .unwrap();
    for _ in 0..5 {
        api.cast_skill(&player.token, &character, "strike", &[])
            .await
            .unwrap()
            .answer()
            .unwrap();
    }
    let want: BTreeSet<(String, i64)> = stack
        .store()
        .all_events()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.aggregate_id == character)
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect();
    assert!(want.len() > 5, "five casts appended: {want:?}");
    reader.read_until_covered(&want, FLOW).await.unwrap();
    // The second batch began no sooner than the interval after the first, which began at most
    // a read's time (a second, to spare) before the creation was sent.
    let waited = created_at.elapsed();
    assert!(
        waited >= Duration::from_millis(INTERVAL_MS - 1_000),
        "the casts were published {waited:?} after the creation was sent"
    );
    let order: Vec<i64> = reader.records.iter().map(|r| r.id().1).collect();
    let sorted: Vec<i64> = want.iter().map(|(_, s)| *s).collect();
    assert_eq!(order, sorted, "in order, nothing twice");
    assert_eq!(
        batches(relay).await.unwrap(),
        first + 1.0,
        "the casts appended while the relay waited went out in one batch"
    );
}

/// Batches the relay has published so far.
async fn batches(relay: &ServiceProcess) -> Result<f64, String> {
    let metrics = relay.metrics().await.map_err(|e| e.to_string())?;
    Ok(metric_value(&metrics, "chaos_relay_batch_duration_seconds_count").unwrap_or(0.0))
}

/// Reads the stack's character topic from the beginning.
async fn events_reader(stack: &Stack) -> TopicReader {
    TopicReader::new(
        &stack.services.kafka_bootstrap,
        &stack.services.schema_registry_url,
        &stack.events_topic(),
    )
    .await
    .unwrap()
}
