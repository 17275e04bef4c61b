//! How fast the relay drains a backlog, a program that prints figures, not a test.
//!
//! While Kafka is down (or every relay is), commands go on: their events wait in PostgreSQL, and
//! the relay publishes them from its checkpoint when it can. This puts a history of
//! `--characters C --events-per N` events (as `rebuild_load` makes it) into a fresh database,
//! starts the `relay` binary from this binary's directory on it with a fresh topic prefix, and
//! follows its checkpoint to the end of the history: progress, then the rate, the start-up (the
//! topics created and the schemas registered) and the relay's CPU per million events.
//!
//!   eval "$(deploy/local/services.sh env)"
//!   cargo build --release --bins
//!   target/release/relay_bench --characters 10000 --events-per 100 [--batch 1000] [--keep]

use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_tests::history;
use chaos_tests::process::{binary, free_port, ProcessSpec};
use chaos_tests::{Isolation, ServiceProcess, ServiceUrls};
use sqlx::PgPool;

struct Options {
    characters: u64,
    per: u64,
    batch: Option<u32>,
    keep: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        characters: 10_000,
        per: 100,
        batch: None,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--characters" => o.characters = args.next().context("--characters C")?.parse()?,
            "--events-per" => o.per = args.next().context("--events-per N")?.parse()?,
            "--batch" => o.batch = Some(args.next().context("--batch N")?.parse()?),
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                println!(
                    "relay_bench [--characters C] [--events-per N] [--batch N] [--keep]\n  \
                     defaults: 10,000 characters x 100 events; --batch: the relay's batch_size \
                     (its default otherwise); --keep: leave the database and topics"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    anyhow::ensure!(
        o.characters > 0 && o.per > 0,
        "an empty history measures nothing"
    );
    Ok(o)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    history::check_payloads()?;
    let services = ServiceUrls::from_env();
    let isolation = Isolation::new(&services)?;
    let admin = PgPool::connect(&services.database_url)
        .await
        .context("connecting to PostgreSQL (eval \"$(deploy/local/services.sh env)\")")?;
    sqlx::query(&format!("CREATE DATABASE {}", isolation.database))
        .execute(&admin)
        .await?;
    let outcome = run(&o, &services, &isolation).await;
    if o.keep {
        println!(
            "kept database {} and topics {}*",
            isolation.database, isolation.topic_prefix
        );
    } else {
        let mut kafka = rdkafka::ClientConfig::new();
        kafka.set("bootstrap.servers", &services.kafka_bootstrap);
        if let Err(e) = chaos_platform::kafka::delete_topics(&kafka, &isolation.all_topics()).await
        {
            eprintln!("deleting the topics failed: {e:#}");
        }
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            isolation.database
        ))
        .execute(&admin)
        .await;
    }
    outcome
}

async fn run(o: &Options, services: &ServiceUrls, isolation: &Isolation) -> anyhow::Result<()> {
    let pool = PgPool::connect(&isolation.database_url).await?;
    chaos_eventstore::pg::migrate(&pool).await?;
    let t = Instant::now();
    sqlx::query(&history::rows_sql(o.characters, o.per, true))
        .execute(&pool)
        .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&pool)
        .await?;
    println!(
        "history: {total} events ({} characters x {}) in {:.1}s",
        o.characters,
        o.per,
        t.elapsed().as_secs_f64()
    );
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;

    let bind = format!("127.0.0.1:{}", free_port());
    let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let mut env = vec![
        kv("CHAOS__HTTP__BIND", &bind),
        kv("CHAOS__DATABASE__URL", &isolation.database_url),
        kv("CHAOS__KAFKA__BOOTSTRAP_SERVERS", &services.kafka_bootstrap),
        kv("CHAOS__KAFKA__TOPIC_PREFIX", &isolation.topic_prefix),
        kv("CHAOS__SCHEMA_REGISTRY__URL", &services.schema_registry_url),
    ];
    if let Some(batch) = o.batch {
        env.push(kv("CHAOS__RELAY__BATCH_SIZE", &batch.to_string()));
    }
    let logs = std::env::temp_dir().join(format!("chaos-relay-bench-{}", isolation.id));
    std::fs::create_dir_all(&logs)?;
    let started = Instant::now();
    let mut relay = ServiceProcess::spawn(
        ProcessSpec {
            name: "relay".into(),
            program: binary("relay")?,
            args: Vec::new(),
            env,
            http_bind: bind,
        },
        &logs,
    )?;
    let pid = relay.pid().context("the relay did not start")?;

    let mut first: Option<(Instant, i64, f64)> = None;
    let mut last_report = Instant::now();
    let position = loop {
        anyhow::ensure!(
            relay.is_running(),
            "the relay exited; its log:\n{}",
            relay.log_tail(30)
        );
        let position: Option<i64> =
            sqlx::query_scalar("SELECT global_position FROM checkpoints WHERE name = 'relay'")
                .fetch_optional(&pool)
                .await?;
        let position = position.unwrap_or(0);
        if position > 0 && first.is_none() {
            first = Some((Instant::now(), position, cpu_seconds(pid)?));
        }
        if position >= head {
            break position;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the relay is at {position} of {head} after 30 minutes; its log:\n{}",
            relay.log_tail(30)
        );
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let rate = position as f64 / secs;
            let eta = if rate > 0.0 {
                format!("{:.0}s", (head - position) as f64 / rate)
            } else {
                "-".to_owned()
            };
            eprintln!("  {position} of {head} events, {rate:.0}/s, ETA {eta}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let done = Instant::now();
    let cpu = cpu_seconds(pid)?;
    drop(relay);

    let elapsed = done - started;
    let (first_at, first_position, first_cpu) = first.context("no checkpoint was seen")?;
    let steady = done - first_at;
    let steady_events = (position - first_position) as f64;
    println!(
        "relay catch-up: {total} events in {:.2}s = {:.0} events/s from its start \
         (the first checkpoint after {:.2}s: topics created, schemas registered, a batch sent); \
         after it {:.0} events/s; the relay's CPU {:.1}s per million events ({:.1}s in all)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        (first_at - started).as_secs_f64(),
        steady_events / steady.as_secs_f64(),
        (cpu - first_cpu) / steady_events * 1e6,
        cpu,
    );
    let _ = std::fs::remove_dir_all(&logs);
    Ok(())
}

/// The process's user and system CPU time so far in seconds, from `/proc/<pid>/stat` (Linux).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = format!("/proc/{pid}/stat");
    let cpu = chaos_tests::stats::proc_cpu(&stat).with_context(|| format!("reading {stat}"))?;
    Ok(cpu.as_secs_f64())
}
