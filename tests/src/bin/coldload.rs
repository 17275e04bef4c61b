//! Cold load of a long-lived aggregate (a benchmark that prints figures, not a test).
//!
//! Writes one character with `--events` events (a creation, then strikes) straight into a fresh
//! PostgreSQL database (or, with `--sqlite`, a fresh embedded store), then times the first load
//! after a restart three ways: folding every event (what a load did before snapshots), the load
//! that leaves a snapshot behind, and the cold load from that snapshot plus the events after it.
//!
//!   eval "$(deploy/local/services.sh env)"
//!   cargo run --release -p chaos-tests --bin coldload -- --events 1000000 [--sqlite]

use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_domain::Character;
use chaos_eventstore::command::{CommandMetrics, CommandSettings};
use chaos_eventstore::group_commit::GroupCommitConfig;
use chaos_eventstore::repository::Repository;
use chaos_eventstore::snapshot::{SnapshotMetrics, SnapshotPolicy};
use chaos_eventstore::CommandService;

fn service(repository: Repository, every: u64) -> CommandService {
    CommandService::new(
        repository,
        chaos_platform::game::game_services(chaos_domain::Content::builtin().expect("content")),
        CommandSettings {
            cache_capacity: 0,
            snapshots: SnapshotPolicy { every },
            store_timeout: Duration::from_secs(600),
            ..CommandSettings::default()
        },
        CommandMetrics::unregistered(),
        SnapshotMetrics::unregistered(),
    )
}

/// The rows of one character: a creation, then `events - 1` strikes. SQL for PostgreSQL and
/// SQLite alike (both have recursive CTEs and JSON text).
fn rows_sql(id: &str, events: u64, postgres: bool) -> String {
    let created = serde_json::json!({"CharacterCreated": {
        "owner": "00000000-0000-0000-0000-000000000001", "name": "Veteran", "class": "warrior",
        "level": 1, "max_hp": 140, "max_mana": 40, "zone": "whispering_woods",
        "skills": ["strike", "power_strike"], "created_at": "2026-01-01T00:00:00Z"}});
    let cast = r#"{"SkillCast": {"skill": "strike", "target": null, "zone": "whispering_woods", "mana_before": 40, "mana_cost": 0, "mana_after": 40, "damage": 3, "cooldown_until": "2026-01-01T00:00:00Z", "cast_at": "2026-01-01T00:00:00Z"}}"#;
    let series = if postgres {
        format!("SELECT g AS s FROM generate_series(2, {events}) AS g")
    } else {
        format!(
            "WITH RECURSIVE n(s) AS (SELECT 2 UNION ALL SELECT s + 1 FROM n WHERE s < {events}) \
             SELECT s FROM n"
        )
    };
    let json = if postgres { "::json" } else { "" };
    format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'character', '{id}', 1, 'CharacterCreated', '1', '{created}'{json}, '{{}}'{json}
         UNION ALL
         SELECT 'character', '{id}', s, 'SkillCast', '1', '{cast}'{json}, '{{}}'{json} FROM ({series}) AS t"
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut events: u64 = 1_000_000;
    let mut sqlite = false;
    let mut every: u64 = 250;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--events" => events = args.next().context("--events N")?.parse()?,
            "--snapshot-every" => every = args.next().context("--snapshot-every N")?.parse()?,
            "--sqlite" => sqlite = true,
            "-h" | "--help" => {
                println!("coldload [--events N] [--snapshot-every N] [--sqlite]");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut _dir = None;
    let repository = if sqlite {
        let (pool, dir) = chaos_eventstore::testing::fresh_sqlite().await;
        _dir = Some(dir);
        let written = Instant::now();
        sqlx::query(&rows_sql(&id, events, false))
            .execute(&pool)
            .await?;
        println!(
            "embedded store: wrote {events} events in {:.1}s",
            written.elapsed().as_secs_f64()
        );
        Repository::sqlite(chaos_eventstore::sqlite::SqliteEventRepository::new(pool))
    } else {
        let pool = chaos_eventstore::testing::fresh_pg().await;
        let written = Instant::now();
        sqlx::query(&rows_sql(&id, events, true))
            .execute(&pool)
            .await?;
        println!(
            "PostgreSQL: wrote {events} events in {:.1}s",
            written.elapsed().as_secs_f64()
        );
        Repository::postgres(pool, GroupCommitConfig::default(), None)
    };

    // Without snapshots: every event folded.
    let bare = service(repository.clone(), 0);
    let t = Instant::now();
    let (state, version, folded) = bare.load_from_store::<Character>(&id).await?;
    println!(
        "cold load folding every event: {version} events in {:.0} ms ({folded} folded)",
        t.elapsed().as_secs_f64() * 1e3
    );
    let expected = state;

    // The first load with snapshots on folds everything too, and leaves a snapshot behind (off
    // the command path).
    let with = service(repository.clone(), every);
    let t = Instant::now();
    let _ = with.load::<Character>(&id).await?;
    println!(
        "first load with snapshots on: {:.0} ms (queues a snapshot at {version})",
        t.elapsed().as_secs_f64() * 1e3
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while repository
        .load_snapshot("character", &id)
        .await?
        .is_none_or(|s| s.last_sequence != version)
    {
        anyhow::ensure!(Instant::now() < deadline, "the snapshot was never written");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A restart: a new service, nothing cached. Snapshot + the events after it.
    let mut times = Vec::new();
    for _ in 0..5 {
        let restarted = service(repository.clone(), every);
        let t = Instant::now();
        let (state, v, tail) = restarted.load_from_store::<Character>(&id).await?;
        times.push(t.elapsed());
        anyhow::ensure!(v == version && tail == 0, "loaded {v} with {tail} folded");
        anyhow::ensure!(state == expected, "the snapshot load differs from the fold");
    }
    times.sort();
    println!(
        "cold load from the snapshot: median {:.2} ms (5 runs, min {:.2} ms), equal to the fold",
        times[2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
    Ok(())
}
