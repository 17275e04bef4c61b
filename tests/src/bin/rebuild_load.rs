//! Puts a long history into a fresh event store for rebuild benchmarks (`chaosctl rebuild`), a
//! program that prints what it made, not a test.
//!
//! `--characters C --events-per N`: C characters with N events each (a creation, then strikes),
//! interleaved in the global order as live play would be (event k of every character, then
//! event k + 1 of every character): a rebuild's batches then touch as many documents as they
//! can, the hard case. Into a fresh PostgreSQL database (printed: point `CHAOS__DATABASE__URL`
//! at it), or with `--embedded DIR` into a new embedded data directory (events.db and an empty
//! readmodels.db).
//!
//!   eval "$(deploy/local/services.sh env)"
//!   cargo run --release -p chaos-tests --bin rebuild_load -- --characters 10000 --events-per 100
//!   cargo run --release -p chaos-tests --bin rebuild_load -- --embedded /tmp/big --characters 10000 --events-per 100

use std::time::Instant;

use anyhow::Context;

const CREATED: &str = r#"{"CharacterCreated": {"owner": "00000000-0000-0000-0000-000000000001", "name": "Veteran", "class": "warrior", "level": 1, "max_hp": 140, "max_mana": 40, "zone": "whispering_woods", "skills": ["strike", "power_strike"], "created_at": "2026-01-01T00:00:00Z"}}"#;
const CAST: &str = r#"{"SkillCast": {"skill": "strike", "target": null, "hit": null, "zone": "whispering_woods", "mana_before": 40, "mana_cost": 0, "mana_after": 40, "damage": 3, "cooldown_until": "2026-01-01T00:00:00Z", "cast_at": "2026-01-01T00:00:00Z"}}"#;

/// The rows, in the global order described above. Character ids are UUIDs made from the
/// character's number (md5 of it, formatted), so both databases derive the same ones.
fn rows_sql(characters: u64, per: u64, postgres: bool) -> String {
    let created_version = current("CharacterCreated");
    let cast_version = current("SkillCast");
    let json = if postgres { "::json" } else { "" };
    let (series, id) = if postgres {
        (
            format!(
                "SELECT s, c FROM generate_series(1, {per}) AS s \
                 CROSS JOIN generate_series(1, {characters}) AS c"
            ),
            "uuid_in(md5(c::text)::cstring)::text".to_owned(),
        )
    } else {
        (
            format!(
                "WITH RECURSIVE ss(s) AS (SELECT 1 UNION ALL SELECT s + 1 FROM ss WHERE s < {per}), \
                 cc(c) AS (SELECT 1 UNION ALL SELECT c + 1 FROM cc WHERE c < {characters}) \
                 SELECT s, c FROM ss CROSS JOIN cc"
            ),
            "printf('00000000-0000-4000-8000-%012d', c)".to_owned(),
        )
    };
    format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata)
         SELECT 'character', {id}, s,
                CASE WHEN s = 1 THEN 'CharacterCreated' ELSE 'SkillCast' END,
                CASE WHEN s = 1 THEN '{created_version}' ELSE '{cast_version}' END,
                CASE WHEN s = 1 THEN '{CREATED}'{json} ELSE '{CAST}'{json} END, '{{}}'{json}
         FROM ({series}) AS t ORDER BY s, c"
    )
}

/// The current stored version of a character event type: the rows are written as this build
/// writes them (an older version would measure the upcasters, not the rebuild).
fn current(event_type: &str) -> u32 {
    use chaos_domain::GameEvent;
    chaos_domain::CharacterEvent::current_version(event_type).expect("a character event type")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The payloads are this build's current shape: they decode without an upcaster.
    for (event_type, payload) in [("CharacterCreated", CREATED), ("SkillCast", CAST)] {
        chaos_domain::decode_stored_json::<chaos_domain::Character>(
            event_type,
            &current(event_type).to_string(),
            payload,
        )
        .with_context(|| format!("{event_type} is not in its current stored shape"))?;
    }
    let mut characters: u64 = 10_000;
    let mut per: u64 = 100;
    let mut embedded = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--characters" => characters = args.next().context("--characters C")?.parse()?,
            "--events-per" => per = args.next().context("--events-per N")?.parse()?,
            "--embedded" => embedded = Some(args.next().context("--embedded DIR")?),
            "-h" | "--help" => {
                println!("rebuild_load [--characters C] [--events-per N] [--embedded DIR]");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let started = Instant::now();
    match embedded {
        Some(dir) => {
            let dir = std::path::PathBuf::from(dir);
            anyhow::ensure!(
                !dir.join("events.db").exists(),
                "{} already holds an event store",
                dir.display()
            );
            std::fs::create_dir_all(&dir)?;
            let pool = chaos_eventstore::sqlite::open(&dir.join("events.db")).await?;
            sqlx::query(&rows_sql(characters, per, false))
                .execute(&pool)
                .await?;
            chaos_readmodel::SqliteStore::open(&dir.join("readmodels.db")).await?;
            println!(
                "embedded data directory {}: {} events ({characters} characters x {per}) in {:.1} s",
                dir.display(),
                characters * per,
                started.elapsed().as_secs_f64()
            );
        }
        None => {
            let pool = chaos_eventstore::testing::fresh_pg().await;
            sqlx::query(&rows_sql(characters, per, true))
                .execute(&pool)
                .await?;
            let db: String = sqlx::query_scalar("SELECT current_database()")
                .fetch_one(&pool)
                .await?;
            println!(
                "PostgreSQL database {db}: {} events ({characters} characters x {per}) in {:.1} s",
                characters * per,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
