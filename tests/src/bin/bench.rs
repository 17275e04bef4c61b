//! Load generator for the write path and the projection, printing figures (not a test).
//!
//! Registers `--accounts` players with one character each, then `--clients` concurrent clients
//! send `cast-skill strike` for `--duration` seconds, each client to its own characters (so no
//! two requests race on one aggregate). Every `--sample-every`th accepted command is followed
//! by a visibility probe: a query with the command's `Consistency-Token`, timed from the moment
//! the command's answer arrived until the query API returns a sheet at that version.
//!
//! Against running services:
//!   target/release/bench --command-url http://127.0.0.1:8080 --query-url http://127.0.0.1:8082
//! Or start an isolated stack of the release binaries next to this one (own database, topic
//! prefix, key prefix), run, and tear it down:
//!   cargo build --release --workspace --bins && target/release/bench --spawn

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_tests::stats::summary;
use chaos_tests::{CommandApi, QueryApi, Stack, StackOptions};
use futures::stream::{self, StreamExt};

#[derive(Debug, Clone)]
struct Args {
    command_url: String,
    query_url: String,
    spawn: bool,
    accounts: usize,
    clients: usize,
    duration: Duration,
    warmup: Duration,
    sample_every: u64,
    visibility_timeout: Duration,
    setup_concurrency: usize,
    /// Commands per second across all clients; `None`: each client sends as fast as it can.
    rate: Option<f64>,
    /// Leave a spawned stack's database, topics, keys and logs behind.
    keep: bool,
}

const USAGE: &str = "bench [--spawn] [--command-url URL] [--query-url URL] [--accounts N] \
[--clients N] [--duration SECS] [--warmup SECS] [--sample-every N] [--visibility-timeout-ms MS] \
[--setup-concurrency N] [--rate PER_SEC] [--keep]
  defaults: --command-url $CHAOS_BENCH_COMMAND_URL or http://127.0.0.1:8080
            --query-url $CHAOS_BENCH_QUERY_URL or http://127.0.0.1:8082
            --accounts 256 --clients 64 --duration 30 --warmup 3 --sample-every 50
            --visibility-timeout-ms 10000 --setup-concurrency 16
  --rate    pace the clients to this many commands/s in total (open loop: each command is
            timed from when it was due, so a slow answer that delays the next one counts)
  --spawn   start command-api, relay, projector and query-api from this binary's directory
            against the services of `deploy/local/services.sh env` (isolated), then stop them";

fn parse_args() -> anyhow::Result<Args> {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let mut a = Args {
        command_url: env("CHAOS_BENCH_COMMAND_URL", "http://127.0.0.1:8080"),
        query_url: env("CHAOS_BENCH_QUERY_URL", "http://127.0.0.1:8082"),
        spawn: false,
        accounts: 256,
        clients: 64,
        duration: Duration::from_secs(30),
        warmup: Duration::from_secs(3),
        sample_every: 50,
        visibility_timeout: Duration::from_secs(10),
        setup_concurrency: 16,
        rate: None,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--spawn" => a.spawn = true,
            "--keep" => a.keep = true,
            "--command-url" => a.command_url = value()?,
            "--query-url" => a.query_url = value()?,
            "--accounts" => a.accounts = value()?.parse()?,
            "--clients" => a.clients = value()?.parse()?,
            "--duration" => a.duration = Duration::from_secs_f64(value()?.parse()?),
            "--warmup" => a.warmup = Duration::from_secs_f64(value()?.parse()?),
            "--sample-every" => a.sample_every = value()?.parse::<u64>()?.max(1),
            "--visibility-timeout-ms" => {
                a.visibility_timeout = Duration::from_millis(value()?.parse()?)
            }
            "--setup-concurrency" => a.setup_concurrency = value()?.parse::<usize>()?.max(1),
            "--rate" => a.rate = Some(value()?.parse::<f64>()?).filter(|r| *r > 0.0),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    anyhow::ensure!(a.clients >= 1, "--clients must be at least 1");
    a.accounts = a.accounts.max(a.clients);
    Ok(a)
}

#[derive(Debug, Clone)]
struct Hero {
    token: String,
    id: String,
}

/// Everything the clients record.
#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<Duration>,
    visibility: Vec<Duration>,
    visibility_timeouts: u64,
    errors: BTreeMap<String, u64>,
    /// When the last command was answered.
    last_answer: Option<Instant>,
    /// The last version each character was commanded to.
    last_versions: BTreeMap<String, u64>,
    /// Visibility probes still running.
    probes: Vec<tokio::task::JoinHandle<Option<Duration>>>,
}

impl Tally {
    async fn finish_probes(&mut self) {
        for p in std::mem::take(&mut self.probes) {
            match p.await {
                Ok(Some(d)) => self.visibility.push(d),
                _ => self.visibility_timeouts += 1,
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = parse_args()?;
    let stack = if args.spawn {
        let options = StackOptions::default()
            .with_env("command-api", "CHAOS__DATABASE__MAX_CONNECTIONS", "32")
            .with_env("command-api", "CHAOS__TELEMETRY__LEVEL", "warn")
            .with_env("relay", "CHAOS__TELEMETRY__LEVEL", "info")
            .with_env("projector", "CHAOS__TELEMETRY__LEVEL", "info")
            .with_env("query-api", "CHAOS__TELEMETRY__LEVEL", "warn");
        let stack = Stack::start(options).await?;
        args.command_url = stack.command_api.base_url();
        args.query_url = stack.queries().base().to_owned();
        let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(stack.store().pool())
            .await?;
        println!(
            "spawned the stack from {} (PostgreSQL synchronous_commit = {sync})",
            chaos_tests::process::bin_dir().display()
        );
        Some(stack)
    } else {
        None
    };
    let result = run(&args).await;
    match stack {
        Some(stack) if result.is_err() || args.keep => stack.keep_for_inspection(),
        other => drop(other),
    }
    result
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let commands = CommandApi::new(&args.command_url);
    let queries = QueryApi::new(&args.query_url);
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    println!(
        "bench {run_id}: {} accounts, {} clients, {}, {:?} (+{:?} warm-up), command API {}, query API {}",
        args.accounts,
        args.clients,
        args.rate
            .map_or("as fast as they can".to_owned(), |r| format!("paced to {r} commands/s")),
        args.duration,
        args.warmup,
        args.command_url,
        args.query_url
    );

    let setup = Instant::now();
    let heroes: Vec<Hero> = stream::iter(0..args.accounts)
        .map(|i| {
            let commands = commands.clone();
            async move {
                let player = commands.player(&format!("bench_{run_id}_{i}")).await?;
                let class = ["warrior", "mage", "ranger", "cleric"][i % 4];
                let answer = commands
                    .create_character(&player.token, &format!("H{run_id}x{i}"), class, &[])
                    .await?
                    .answer()?;
                Ok::<_, anyhow::Error>(Hero {
                    token: player.token,
                    id: answer.aggregate_id,
                })
            }
        })
        .buffer_unordered(args.setup_concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    for hero in &heroes {
        queries
            .wait_for_version(&hero.id, 1, Duration::from_secs(60))
            .await?;
    }
    println!(
        "setup: {} players and characters in {:.1}s (all visible in the query API)",
        heroes.len(),
        setup.elapsed().as_secs_f64()
    );

    if !args.warmup.is_zero() {
        load(args, &commands, &queries, &heroes, args.warmup)
            .await
            .finish_probes()
            .await;
    }
    let started = Instant::now();
    let mut tally = load(args, &commands, &queries, &heroes, args.duration).await;
    let window = tally.last_answer.map_or(args.duration, |t| t - started);
    // How far behind the projection was when the load stopped: time from the last answer until
    // every character's sheet shows its last commanded version.
    if let Some(last) = tally.last_answer {
        for (id, version) in &tally.last_versions {
            queries
                .wait_for_version(id, *version, Duration::from_secs(120))
                .await?;
        }
        println!(
            "projection caught up {:.0}ms after the last command was answered",
            last.elapsed().as_secs_f64() * 1e3
        );
    }
    tally.finish_probes().await;
    report(&tally, window);
    group_commit_report(&args.command_url).await;
    Ok(())
}

/// The command API's group-commit figures (whole process lifetime, set-up included).
async fn group_commit_report(command_url: &str) {
    let Ok(reply) = reqwest::get(format!("{command_url}/metrics")).await else {
        return;
    };
    let Ok(text) = reply.text().await else { return };
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
    };
    let (Some(batches), Some(events), Some(seconds)) = (
        value("chaos_eventstore_append_batch_events_count"),
        value("chaos_eventstore_append_batch_events_sum"),
        value("chaos_eventstore_append_batch_seconds_sum"),
    ) else {
        return;
    };
    if batches > 0.0 {
        println!(
            "group commit: {batches:.0} statements, {:.1} events and {:.2} ms each on average, {} split after a key violation",
            events / batches,
            seconds / batches * 1e3,
            value("chaos_eventstore_append_batches_split_total").unwrap_or(0.0)
        );
    }
}

async fn load(
    args: &Args,
    commands: &CommandApi,
    queries: &QueryApi,
    heroes: &[Hero],
    duration: Duration,
) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let accepted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let mine: Vec<Hero> = heroes
            .iter()
            .skip(c)
            .step_by(args.clients)
            .cloned()
            .collect();
        let (commands, queries, tally, accepted) = (
            commands.clone(),
            queries.clone(),
            tally.clone(),
            accepted.clone(),
        );
        let (sample_every, visibility_timeout) = (args.sample_every, args.visibility_timeout);
        // Paced: client c sends every `clients / rate` seconds, staggered across clients.
        let pace = args.rate.map(|rate| {
            let interval = Duration::from_secs_f64(args.clients as f64 / rate);
            (
                interval,
                Instant::now() + interval.mul_f64(c as f64 / args.clients as f64),
            )
        });
        clients.push(tokio::spawn(async move {
            let mut probes = Vec::new();
            let mut latencies = Vec::new();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut last_answer = None;
            let mut last_versions = BTreeMap::new();
            let mut due = pace.map(|(_, first)| first);
            for hero in mine.iter().cycle() {
                if Instant::now() >= deadline {
                    break;
                }
                let sent = match (&mut due, pace) {
                    (Some(at), Some((interval, _))) => {
                        tokio::time::sleep_until((*at).into()).await;
                        let sent = *at;
                        *at += interval;
                        sent
                    }
                    _ => Instant::now(),
                };
                let reply = commands
                    .cast_skill(&hero.token, &hero.id, "strike", &[])
                    .await;
                let answered = Instant::now();
                match reply {
                    Ok(r) if r.status.is_success() => {
                        latencies.push(answered - sent);
                        last_answer = Some(answered);
                        let n = accepted.fetch_add(1, Ordering::Relaxed) + 1;
                        let answer = r.answer();
                        if let Ok(answer) = &answer {
                            last_versions.insert(hero.id.clone(), answer.sequence);
                        }
                        if n.is_multiple_of(sample_every) {
                            if let Ok(answer) = answer {
                                let (queries, id) = (queries.clone(), hero.id.clone());
                                probes.push(tokio::spawn(probe(
                                    queries,
                                    id,
                                    answer.consistency_token,
                                    answered,
                                    visibility_timeout,
                                )));
                            }
                        }
                    }
                    Ok(r) => {
                        *errors
                            .entry(format!(
                                "{} {}",
                                r.status.as_u16(),
                                r.problem_type().unwrap_or("")
                            ))
                            .or_default() += 1;
                    }
                    Err(e) => {
                        let kind = if e.to_string().contains("timed out") {
                            "transport: timeout"
                        } else {
                            "transport: error"
                        };
                        *errors.entry(kind.to_owned()).or_default() += 1;
                    }
                }
            }
            let mut t = tally.lock().expect("tally lock");
            t.latencies.extend(latencies);
            t.probes.extend(probes);
            t.last_answer = t.last_answer.max(last_answer);
            t.last_versions.extend(last_versions);
            for (k, v) in errors {
                *t.errors.entry(k).or_default() += v;
            }
        }));
    }
    for c in clients {
        let _ = c.await;
    }
    Arc::try_unwrap(tally)
        .map(|m| m.into_inner().expect("tally lock"))
        .unwrap_or_default()
}

/// Time from `accepted` until the query API serves the sheet at the command's version.
async fn probe(
    queries: QueryApi,
    id: String,
    token: String,
    accepted: Instant,
    timeout: Duration,
) -> Option<Duration> {
    while accepted.elapsed() < timeout {
        match queries.sheet(&id, Some(&token)).await {
            Ok(r) if r.status.is_success() => return Some(accepted.elapsed()),
            // 503: not there within the server's bounded wait; ask again.
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    None
}

fn report(tally: &Tally, elapsed: Duration) {
    let ok = tally.latencies.len();
    let errors: u64 = tally.errors.values().sum();
    println!(
        "commands: {ok} accepted, {errors} failed in {:.1}s => {:.0} commands/s",
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64()
    );
    let mut latencies = tally.latencies.clone();
    println!("command latency:    {}", summary(&mut latencies));
    let mut visibility = tally.visibility.clone();
    println!(
        "visible in query API: {} ({} probes timed out)",
        summary(&mut visibility),
        tally.visibility_timeouts
    );
    for (kind, n) in &tally.errors {
        println!("error {kind}: {n}");
    }
}
