//! The operators' warehouse rebuild against real PostgreSQL and DuckDB files: a live warehouse
//! fed by a store feed keeps running (and the store keeps taking appends) while a rebuild is
//! built beside it — interrupted and resumed from the position kept in its own file — and
//! switched in. Afterwards the live warehouse's checksum equals that of a warehouse built from
//! scratch from the same events, and it holds exactly the store's events.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_domain::{AccountId, CharacterEvent, CharacterName, Currency, GameEvent, WalletEvent};
use chaos_eventstore::pg::PgEventLog;
use chaos_eventstore::{EventLog, Position};
use chaos_projectors::runner::{ProjectorMetrics, StoreFeed};
use chaos_projectors::warehouse::{rebuild_path, Warehouse};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// One stored row: what the command service writes.
struct Row {
    aggregate_type: &'static str,
    id: String,
    sequence: i64,
    event_type: &'static str,
    version: String,
    payload: serde_json::Value,
    metadata: serde_json::Value,
}

fn row<E: GameEvent>(aggregate_type: &'static str, id: &str, sequence: i64, event: &E) -> Row {
    Row {
        aggregate_type,
        id: id.to_owned(),
        sequence,
        event_type: event.type_name(),
        version: E::current_version(event.type_name())
            .unwrap_or(1)
            .to_string(),
        payload: chaos_domain::encode_stored(event),
        metadata: serde_json::json!({
            "occurred_at": event.occurred_at().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }),
    }
}

/// Character `n`'s `round`-th batch of events (and its wallet's): the first creates them.
fn rows(n: u64, round: i64, t: DateTime<Utc>) -> Vec<Row> {
    let id = uuid::Uuid::from_u128(u128::from(n) + 1).to_string();
    let mut out = Vec::new();
    let base = round * 3;
    if round == 0 {
        let created = CharacterEvent::CharacterCreated {
            owner: AccountId::from_uuid(uuid::Uuid::nil()),
            name: CharacterName::parse(&format!("Hero{n}")).unwrap(),
            class: "warrior".into(),
            level: 1,
            max_hp: 140,
            max_mana: 40,
            zone: "whispering_woods".into(),
            skills: vec!["strike".into()],
            created_at: t,
        };
        out.push(row("character", &id, 1, &created));
        let opened = WalletEvent::WalletOpened {
            owner: AccountId::from_uuid(uuid::Uuid::nil()),
            character: chaos_domain::CharacterId::from_uuid(uuid::Uuid::from_u128(
                u128::from(n) + 1,
            )),
            opened_at: t,
        };
        out.push(row("wallet", &id, 1, &opened));
    }
    let travel = CharacterEvent::ZoneEntered {
        from_zone: "whispering_woods".into(),
        to_zone: "goblin_warren".into(),
        entered_at: t,
    };
    let xp = CharacterEvent::ExperienceGained {
        amount: 5,
        total_xp: 5 * (round as u64 + 1),
        source: "quest".into(),
        gained_at: t,
    };
    out.push(row("character", &id, base + 2, &travel));
    out.push(row("character", &id, base + 3, &xp));
    out.push(row(
        "character",
        &id,
        base + 4,
        &CharacterEvent::ZoneEntered {
            from_zone: "goblin_warren".into(),
            to_zone: "whispering_woods".into(),
            entered_at: t,
        },
    ));
    let grant = WalletEvent::CurrencyGranted {
        currency: Currency::Gold,
        amount: 10,
        balance_after: 10 * (round as u64 + 1),
        source: "quest".into(),
        reference: format!("r{round}"),
        granted_at: t,
    };
    out.push(row("wallet", &id, round + 2, &grant));
    out
}

/// Appends rows in one transaction, as one group commit does.
async fn append(pool: &PgPool, rows: &[Row]) {
    let col = |f: &dyn Fn(&Row) -> String| rows.iter().map(f).collect::<Vec<String>>();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT a, b, c, d, e, f::json, g::json
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                     $7::text[]) AS t(a, b, c, d, e, f, g)",
    )
    .bind(col(&|r| r.aggregate_type.to_owned()))
    .bind(col(&|r| r.id.clone()))
    .bind(rows.iter().map(|r| r.sequence).collect::<Vec<i64>>())
    .bind(col(&|r| r.event_type.to_owned()))
    .bind(col(&|r| r.version.clone()))
    .bind(col(&|r| r.payload.to_string()))
    .bind(col(&|r| r.metadata.to_string()))
    .execute(pool)
    .await
    .unwrap();
}

async fn store_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn events_in(w: &Warehouse) -> i64 {
    w.counts()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.table == "events")
        .map_or(0, |c| c.rows as i64)
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn feed(name: &str, log: &Arc<dyn EventLog>, w: &Warehouse, batch: u32) -> StoreFeed {
    let registry = prometheus::Registry::new();
    StoreFeed::new(
        name,
        log.clone(),
        Arc::new(w.clone()),
        ProjectorMetrics::new(&registry),
    )
    .with_batch(batch)
    .with_checkpoint(w.store_checkpoint())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_is_switched_in_under_a_running_live_warehouse() {
    let pool = chaos_eventstore::testing::fresh_pg().await;
    let dir = TempDir(std::env::temp_dir().join(format!("chaos-switch-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let live_path = dir.0.join("chaos.duckdb");
    let log: Arc<dyn EventLog> = Arc::new(PgEventLog::new(pool.clone()));
    let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();

    // A history before anything runs: 40 characters, 10 rounds each.
    for round in 0..10 {
        let batch: Vec<Row> = (0..40)
            .flat_map(|n| rows(n, round, t0 + chrono::Duration::seconds(round)))
            .collect();
        append(&pool, &batch).await;
    }

    // The store keeps taking appends (8 characters a round, slower than the feeds read: a
    // catch-up ends when it reaches the end of the store).
    let stop_writing = Arc::new(AtomicBool::new(false));
    let rounds_written = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn({
        let (pool, stop, written) = (pool.clone(), stop_writing.clone(), rounds_written.clone());
        async move {
            let mut round = 10;
            while !stop.load(Ordering::Relaxed) {
                for n in 0..8 {
                    append(
                        &pool,
                        &rows(n, round, t0 + chrono::Duration::seconds(round)),
                    )
                    .await;
                }
                written.fetch_add(1, Ordering::Relaxed);
                round += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });

    // The live warehouse, following the store.
    let live = Warehouse::open(&live_path).await.unwrap();
    let shutdown = CancellationToken::new();
    let live_feed = feed("warehouse", &log, &live, 97);
    let from = live_feed.resume_position().await.unwrap();
    let following = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { live_feed.run(from, shutdown).await }
    });

    // The rebuild beside it, interrupted after a few batches and resumed from its own file.
    let target = Warehouse::open_rebuild(&live_path).await.unwrap();
    assert_eq!(target.path(), rebuild_path(&live_path));
    let rebuild = feed("warehouse-rebuild", &log, &target, 113);
    let stop_early = CancellationToken::new();
    let mut batches = 0;
    let first = rebuild
        .catch_up_until(Position::START, &stop_early, |_| {
            batches += 1;
            if batches == 3 {
                stop_early.cancel();
            }
        })
        .await
        .unwrap();
    assert_eq!(first.events, 3 * 113);
    target.close().await.unwrap();
    let target = Warehouse::open_rebuild(&live_path).await.unwrap();
    let rebuild = feed("warehouse-rebuild", &log, &target, 113);
    let resumed = rebuild.resume_position().await.unwrap();
    assert_eq!(
        resumed, first.position,
        "the rebuild resumes where it stopped"
    );
    let rest = rebuild.catch_up(resumed, |_| {}).await.unwrap();
    assert_eq!(rest.dead_letters, 0);
    let rebuilt = target.checksum().await.unwrap();
    assert!(rebuilt
        .tables
        .iter()
        .any(|t| t.table == "events" && t.rows > 1000));

    // Switch while the live feed and the appends go on.
    let written_before = rounds_written.load(Ordering::Relaxed);
    let ack = target
        .switch_into(&live_path, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(ack.by, "live", "{ack:?}");
    assert!(!rebuild_path(&live_path).exists());
    // A few more rounds land after the switch, then the writes stop.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rounds_written.load(Ordering::Relaxed) < written_before + 3 {
        assert!(
            Instant::now() < deadline,
            "the store stopped taking appends"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_writing.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    // The live warehouse catches up with the store and holds exactly its events.
    let total = store_count(&pool).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while events_in(&live).await < total {
        assert!(
            Instant::now() < deadline,
            "the live warehouse never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(events_in(&live).await, total);
    shutdown.cancel();
    following.await.unwrap().unwrap();

    // Equal to a warehouse built from scratch from the same events, in other batches.
    let scratch = Warehouse::open(dir.0.join("scratch.duckdb")).await.unwrap();
    let done = feed("scratch", &log, &scratch, 1000)
        .catch_up(Position::START, |_| {})
        .await
        .unwrap();
    assert_eq!(done.events as i64, total);
    let expected = scratch.checksum().await.unwrap();
    assert_eq!(live.checksum().await.unwrap(), expected);
    assert_ne!(
        rebuilt, expected,
        "events were appended after the rebuild's checksum"
    );
    live.close().await.unwrap();
    scratch.close().await.unwrap();
    drop_database(pool).await;
}

async fn drop_database(pool: PgPool) {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let admin = PgPool::connect(&chaos_eventstore::testing::database_url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
