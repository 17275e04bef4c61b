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
use chaos_tests::history;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    history::check_payloads()?;
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
            sqlx::query(&history::rows_sql(characters, per, false))
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
            sqlx::query(&history::rows_sql(characters, per, true))
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
