//! Load generator for the write path and the projection, printing figures (not a test).
//!
//! Registers `--accounts` players owning `--characters` characters between them, then
//! `--clients` concurrent clients send commands for `--duration` seconds:
//! - `--workload cast` (default): `cast-skill strike`;
//! - `--workload mixed`: the player core in game-like proportions: casts, PvP strikes at other
//!   characters (damage through the combat process manager; the dead respawn and walk back),
//!   wallet spends, equips and unequips, crafts.
//!
//! Uncontended (default), each client commands characters of its own, so no two requests race on
//! one aggregate. `--contended` makes every request pick a random character of the whole key
//! space (`--characters`), so clients collide on the same aggregates as players in a busy zone
//! do. Every `--sample-every`th accepted command is followed by a visibility probe: a query with
//! the command's `Consistency-Token`, timed from the moment the command's answer arrived until
//! the query API serves that version. `--read-clients N` adds N clients reading the query API
//! meanwhile, as players' clients poll their sheets, boards and timelines.
//!
//! `--wrk` sends the load with wrk instead (2 threads, `--clients` connections, a random
//! character per request: the load generator the contended target was first measured with,
//! and a lighter one than this binary's own clients, which share the box with what they
//! measure). wrk reports its throughput and latency percentiles; visibility is not probed per
//! command, but with `--spawn` the bench then reads each character's last stored version and
//! says how long after wrk ended the query API served them all (the projection's backlog).
//!
//! Against running services:
//!   target/release/bench --command-url http://127.0.0.1:8080 --query-url http://127.0.0.1:8082
//! Or start the backend next to this binary, run, and stop it:
//!   target/release/bench --spawn       the distributed stack, isolated (own database, topic
//!                                      prefix, key prefix) on the services.sh services
//!   target/release/bench --embedded    the one-process backend (`chaos`) on a fresh data dir

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_tests::stats::summary;
use chaos_tests::{CommandApi, QueryApi, Stack, StackOptions};
use futures::stream::{self, StreamExt};
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Cast,
    Mixed,
}

#[derive(Debug, Clone)]
struct Args {
    command_url: String,
    /// The spawned process managers' ops endpoint (`--spawn`), for their backlog.
    process_managers_url: Option<String>,
    query_url: String,
    spawn: bool,
    /// `--spawn` without the process managers (to tell their cost from the rest).
    without_process_managers: bool,
    embedded: bool,
    accounts: usize,
    characters: usize,
    clients: usize,
    contended: bool,
    workload: Workload,
    duration: Duration,
    warmup: Duration,
    sample_every: u64,
    visibility_timeout: Duration,
    setup_concurrency: usize,
    /// Commands per second across all clients; `None`: each client sends as fast as it can.
    rate: Option<f64>,
    /// Leave a spawned stack's database, topics, keys and logs behind.
    keep: bool,
    seed: u64,
    /// Every command carries its own `Idempotency-Key`, as a client that retries safely sends.
    idempotency_keys: bool,
    /// Clients reading the query API (a mix of a player's reads) while the commands run.
    read_clients: usize,
    /// `--spawn`: the MongoDB projector (on the services' MongoDB-wire test server).
    mongo: bool,
    /// `--spawn`: the warehouse projector.
    warehouse: bool,
    /// `--wrk`: the load is sent by wrk.
    wrk: bool,
    /// `--env BINARY:KEY=VALUE`: settings for a spawned service (to compare configurations).
    env: Vec<(String, String, String)>,
}

const USAGE: &str = "bench [--spawn | --embedded] [--command-url URL] [--query-url URL] \
[--accounts N] [--characters N] [--clients N] [--contended] [--workload cast|mixed] \
[--duration SECS] [--warmup SECS] [--sample-every N] [--visibility-timeout-ms MS] \
[--setup-concurrency N] [--rate PER_SEC] [--seed N] [--keep] [--without-process-managers] \
[--idempotency-keys] [--read-clients N] [--projectors all|LIST] [--wrk] [--env BINARY:KEY=VALUE]...
  defaults: --command-url $CHAOS_BENCH_COMMAND_URL or http://127.0.0.1:8080
            --query-url $CHAOS_BENCH_QUERY_URL or http://127.0.0.1:8082
            --accounts 256 --characters = accounts --clients 64 --workload cast --duration 30
            --warmup 3 --sample-every 50 --visibility-timeout-ms 10000 --setup-concurrency 16
  --contended  every request picks a random character of the whole key space (--characters):
               clients race on the same aggregates; without it each client has its own
  --workload   cast: cast-skill strike; mixed: 50% casts, 15% PvP strikes, 15% wallet spends,
               10% equips/unequips, 10% crafts, plus the respawns and trips back that deaths
               call for (gold and items come from a game master's grants at set-up: needs
               --spawn or --embedded, which know the token secret, or $CHAOS_BENCH_GM_TOKEN)
  --rate       pace the clients to this many commands/s in total (open loop: each command is
               timed from when it was due, so a slow answer that delays the next one counts)
  --spawn      start command-api, relay, the projectors (Redis, MongoDB, warehouse), process
               managers and query-api from this binary's directory against the services of
               `deploy/local/services.sh env` (isolated), then stop them
  --projectors with --spawn: all (default, the whole topology, as `./run.sh --distributed`)
               or a list of redis (always: the query API reads it), mongo, warehouse:
               redis alone was the bench's topology until stop 20
  --without-process-managers
               with --spawn: no process managers (their share of the box, apart; the
               mixed workload's PvP hits then do not apply)
  --idempotency-keys
               every command carries a new Idempotency-Key, as a client that retries
               safely sends (the walkthrough's way); without it none does
  --read-clients N
               N more clients read the query API while the commands run, as players' clients
               poll (If-None-Match with the last ETag): public profiles 25%, own sheets 25%,
               inventories 10%, wallets 10%, the level board's top 20 10%, around me 10%,
               timelines (50 entries) 10%; reads/s and latency per read are reported
               (--clients 0 --read-clients N: reads only)
  --embedded   start `chaos` (the one-process backend) from this binary's directory on a new
               data directory, then stop it
  --wrk        with --contended and the cast workload: after the set-up, wrk (on the PATH;
               Debian: apt-get install wrk) sends the load: 2 threads, --clients connections,
               --duration, each request a cast on a random character as its owner; prints
               wrk's figures (no visibility probes; with --spawn, how long after wrk
               ended every character's sheet showed its last stored event)
  --env        with --spawn: a setting for one spawned binary (command-api, relay, projector,
               query-api), e.g. projector:CHAOS__WAREHOUSE__BATCH_WINDOW_MS=500; repeatable";

fn parse_args() -> anyhow::Result<Args> {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let mut a = Args {
        command_url: env("CHAOS_BENCH_COMMAND_URL", "http://127.0.0.1:8080"),
        process_managers_url: None,
        query_url: env("CHAOS_BENCH_QUERY_URL", "http://127.0.0.1:8082"),
        spawn: false,
        without_process_managers: false,
        embedded: false,
        accounts: 256,
        characters: 0,
        clients: 64,
        contended: false,
        workload: Workload::Cast,
        duration: Duration::from_secs(30),
        warmup: Duration::from_secs(3),
        sample_every: 50,
        visibility_timeout: Duration::from_secs(10),
        setup_concurrency: 16,
        rate: None,
        keep: false,
        seed: 7,
        idempotency_keys: false,
        read_clients: 0,
        mongo: true,
        warehouse: true,
        wrk: false,
        env: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--spawn" => a.spawn = true,
            "--without-process-managers" => a.without_process_managers = true,
            "--embedded" => a.embedded = true,
            "--keep" => a.keep = true,
            "--idempotency-keys" => a.idempotency_keys = true,
            "--read-clients" => a.read_clients = value()?.parse()?,
            "--projectors" => {
                let list = value()?;
                const PROJECTORS: [&str; 3] = ["redis", "mongo", "warehouse"];
                let names: Vec<&str> = if list == "all" {
                    PROJECTORS.to_vec()
                } else {
                    list.split(',').map(str::trim).collect()
                };
                if let Some(other) = names.iter().find(|n| !PROJECTORS.contains(n)) {
                    anyhow::bail!(
                        "--projectors all or a list of redis, mongo, warehouse, not {other}"
                    );
                }
                anyhow::ensure!(
                    names.contains(&"redis"),
                    "--projectors: redis is always on (the query API reads it)"
                );
                a.mongo = names.contains(&"mongo");
                a.warehouse = names.contains(&"warehouse");
            }
            "--contended" => a.contended = true,
            "--wrk" => a.wrk = true,
            "--env" => {
                let spec = value()?;
                let parsed = spec.split_once(':').and_then(|(binary, setting)| {
                    let (key, value) = setting.split_once('=')?;
                    key.starts_with("CHAOS__")
                        .then(|| (binary.to_owned(), key.to_owned(), value.to_owned()))
                });
                a.env.push(parsed.with_context(|| {
                    format!("--env BINARY:CHAOS__SECTION__KEY=VALUE, not {spec}")
                })?);
            }
            "--command-url" => a.command_url = value()?,
            "--query-url" => a.query_url = value()?,
            "--accounts" => a.accounts = value()?.parse()?,
            "--characters" => a.characters = value()?.parse()?,
            "--clients" => a.clients = value()?.parse()?,
            "--workload" => {
                a.workload = match value()?.as_str() {
                    "cast" => Workload::Cast,
                    "mixed" => Workload::Mixed,
                    other => anyhow::bail!("unknown workload {other}: cast or mixed"),
                }
            }
            "--duration" => a.duration = Duration::from_secs_f64(value()?.parse()?),
            "--warmup" => a.warmup = Duration::from_secs_f64(value()?.parse()?),
            "--sample-every" => a.sample_every = value()?.parse::<u64>()?.max(1),
            "--visibility-timeout-ms" => {
                a.visibility_timeout = Duration::from_millis(value()?.parse()?)
            }
            "--setup-concurrency" => a.setup_concurrency = value()?.parse::<usize>()?.max(1),
            "--rate" => a.rate = Some(value()?.parse::<f64>()?).filter(|r| *r > 0.0),
            "--seed" => a.seed = value()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    anyhow::ensure!(
        a.clients + a.read_clients >= 1,
        "--clients or --read-clients must be at least 1"
    );
    anyhow::ensure!(!(a.spawn && a.embedded), "--spawn or --embedded, not both");
    anyhow::ensure!(
        !a.wrk
            || (a.contended
                && a.workload == Workload::Cast
                && a.rate.is_none()
                && a.read_clients == 0
                && !a.idempotency_keys),
        "--wrk sends contended casts only: with --contended, without --workload mixed, \
         --rate, --read-clients or --idempotency-keys"
    );
    if a.characters == 0 {
        a.characters = a.accounts.max(a.clients);
    }
    a.accounts = a.accounts.clamp(1, a.characters);
    if !a.contended {
        a.characters = a.characters.max(a.clients).max(1);
    }
    Ok(a)
}

#[derive(Debug, Clone)]
struct Hero {
    /// The owning player's token.
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
    commands: BTreeMap<&'static str, u64>,
    /// When the last command was answered.
    last_answer: Option<Instant>,
    /// The highest version each character was commanded to.
    last_versions: BTreeMap<String, (String, u64)>,
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

/// The embedded backend as a child process; killed when dropped.
struct Embedded {
    child: Child,
    data_dir: PathBuf,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

const BENCH_SECRET: &str = "bench-secret-long-enough-for-any-mode-0123456789";

async fn start_embedded(args: &mut Args) -> anyhow::Result<Embedded> {
    let bin = chaos_tests::process::binary("chaos")?;
    let data_dir = std::env::temp_dir().join(format!("chaos-bench-{}", uuid::Uuid::new_v4()));
    let (c, q) = (
        chaos_tests::process::free_port(),
        chaos_tests::process::free_port(),
    );
    let child = Command::new(bin)
        .arg("--data-dir")
        .arg(&data_dir)
        .env("CHAOS__COMMAND_API__BIND", format!("127.0.0.1:{c}"))
        .env("CHAOS__QUERY_API__BIND", format!("127.0.0.1:{q}"))
        .env("CHAOS__AUTH__JWT_SECRET", BENCH_SECRET)
        .env("CHAOS__TELEMETRY__LEVEL", "warn")
        // A load generator is one client address with many players: no throttling.
        .envs(
            [
                "PER_ACCOUNT_PER_SEC",
                "BURST",
                "AUTH_PER_IP_PER_MINUTE",
                "AUTH_PER_IP_BURST",
                "LOGIN_PER_USERNAME_PER_MINUTE",
                "LOGIN_PER_USERNAME_BURST",
            ]
            .map(|k| (format!("CHAOS__RATE_LIMIT__{k}"), "1000000")),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting chaos")?;
    let embedded = Embedded { child, data_dir };
    args.command_url = format!("http://127.0.0.1:{c}");
    args.query_url = format!("http://127.0.0.1:{q}");
    let http = reqwest::Client::new();
    for url in [&args.command_url, &args.query_url] {
        chaos_tests::wait_until(
            &format!("{url}/readyz"),
            Duration::from_secs(60),
            Duration::from_millis(20),
            || async {
                match http.get(format!("{url}/readyz")).send().await {
                    Ok(r) if r.status().is_success() => Ok(Some(())),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await?;
    }
    println!(
        "started the embedded backend (data in {})",
        embedded.data_dir.display()
    );
    Ok(embedded)
}

// The services' allocator: the bench shares the box with what it measures, so its own CPU per
// request is kept low (glibc's malloc was a fifth of the bench's profile).
#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = parse_args()?;
    let mut game_master = std::env::var("CHAOS_BENCH_GM_TOKEN").ok();
    let now = chrono::Utc::now().timestamp();
    let _embedded = if args.embedded {
        game_master = Some(chaos_tests::stack::sign_token_with_roles(
            BENCH_SECRET,
            &uuid::Uuid::new_v4().to_string(),
            &["player", "game-master"],
            now,
            now + 86_400,
        ));
        Some(start_embedded(&mut args).await?)
    } else {
        None
    };
    let stack = if args.spawn {
        let mut options = StackOptions::default()
            .with_env("command-api", "CHAOS__DATABASE__MAX_CONNECTIONS", "32")
            .with_env("command-api", "CHAOS__TELEMETRY__LEVEL", "warn")
            .with_env("relay", "CHAOS__TELEMETRY__LEVEL", "info")
            .with_env("projector", "CHAOS__TELEMETRY__LEVEL", "info")
            .with_env("query-api", "CHAOS__TELEMETRY__LEVEL", "warn");
        options.process_managers = !args.without_process_managers;
        for (binary, key, value) in &args.env {
            options = options.with_env(binary, key, value);
        }
        options.mongo = args.mongo;
        options.warehouse = args.warehouse;
        let mut stack = Stack::start(options).await?;
        args.command_url = stack.command_api.base_url();
        if !args.without_process_managers {
            args.process_managers_url = Some(stack.process_managers().base_url());
        }
        args.query_url = stack.anonymous_queries().base().to_owned();
        game_master = Some(stack.sign_token_with_roles(
            &uuid::Uuid::new_v4().to_string(),
            &["player", "game-master"],
            now,
            now + 86_400,
        ));
        let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(stack.store().pool())
            .await?;
        println!(
            "spawned the stack from {} (PostgreSQL synchronous_commit = {sync}; projectors: {})",
            chaos_tests::process::bin_dir().display(),
            match (args.mongo, args.warehouse) {
                (true, true) => "Redis, MongoDB, warehouse",
                (true, false) => "Redis, MongoDB",
                (false, true) => "Redis, warehouse",
                (false, false) => "Redis",
            }
        );
        Some(stack)
    } else {
        None
    };
    let store = stack.as_ref().map(|s| s.store().pool().clone());
    let result = run(&args, game_master.as_deref(), store).await;
    match stack {
        Some(stack) if result.is_err() || args.keep => stack.keep_for_inspection(),
        other => drop(other),
    }
    result
}

/// `store`: the spawned stack's event store (`--spawn`), where `--wrk` reads how far each
/// character got.
async fn run(
    args: &Args,
    game_master: Option<&str>,
    store: Option<sqlx::PgPool>,
) -> anyhow::Result<()> {
    let commands = CommandApi::new(&args.command_url);
    let queries = QueryApi::new(&args.query_url);
    let run_id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    println!(
        "bench {run_id}: {} workload, {} accounts, {} characters, {} clients, {}, {}, {:?} \
         (+{:?} warm-up), {} read clients, command API {}, query API {}",
        match args.workload {
            Workload::Cast => "cast-skill",
            Workload::Mixed => "mixed",
        },
        args.accounts,
        args.characters,
        args.clients,
        if args.contended {
            "contended (random character per request)"
        } else {
            "uncontended (each client its own characters)"
        },
        args.rate
            .map_or("as fast as they can".to_owned(), |r| format!(
                "paced to {r} commands/s"
            )),
        args.duration,
        args.warmup,
        args.read_clients,
        args.command_url,
        args.query_url
    );

    let setup = Instant::now();
    let players: Vec<(String, String)> = stream::iter(0..args.accounts)
        .map(|i| {
            let commands = commands.clone();
            async move {
                let player = commands.player(&format!("bench_{run_id}_{i}")).await?;
                Ok::<_, anyhow::Error>((player.token, player.account_id))
            }
        })
        .buffer_unordered(args.setup_concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let heroes: Vec<Hero> = stream::iter(0..args.characters)
        .map(|i| {
            let commands = commands.clone();
            let token = players[i % players.len()].0.clone();
            async move {
                let class = ["warrior", "mage", "ranger", "cleric"][i % 4];
                let answer = commands
                    .create_character(&token, &format!("H{run_id}x{i}"), class, &[])
                    .await?
                    .answer()?;
                Ok::<_, anyhow::Error>(Hero {
                    token,
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
            .with_token(&hero.token)
            .wait_for_version(&hero.id, 1, Duration::from_secs(120))
            .await?;
    }
    if args.workload == Workload::Mixed {
        fund_wallets(args, &commands, &queries, &heroes, game_master).await?;
        stock_bags(args, &commands, &heroes, game_master).await?;
    }
    println!(
        "setup: {} players, {} characters in {:.1}s (all visible in the query API)",
        players.len(),
        heroes.len(),
        setup.elapsed().as_secs_f64()
    );

    if !args.warmup.is_zero() {
        let (mut tally, _) = tokio::join!(
            load(args, &commands, &queries, &heroes, args.warmup, 1),
            read_load(args, &heroes, args.warmup, 1)
        );
        tally.finish_probes().await;
    }
    let conflicts_before = metric_total(&args.command_url, "chaos_command_conflicts_total").await;
    if args.wrk {
        wrk(args, &heroes).await?;
        let ended = Instant::now();
        process_managers_report(args).await;
        if let Some(store) = &store {
            wrk_caught_up(args, &queries, &heroes, store, ended).await?;
        }
        command_api_report(&args.command_url, conflicts_before).await;
        return Ok(());
    }
    let started = Instant::now();
    let (mut tally, reads) = tokio::join!(
        load(args, &commands, &queries, &heroes, args.duration, 2),
        read_load(args, &heroes, args.duration, 2)
    );
    let reads_window = started.elapsed();
    process_managers_report(args).await;
    let window = tally.last_answer.map_or(args.duration, |t| t - started);
    // How far behind the projection was when the load stopped: time from the last answer until
    // every character's sheet shows its last commanded version. The sheets are watched side
    // by side: one after another, 2,048 of them (`--contended`) took about two seconds of
    // round trips on their own, which was counted as projection lag.
    if let Some(last) = tally.last_answer {
        let sheets = tally
            .last_versions
            .iter()
            .map(|(id, (token, version))| (id.as_str(), token.as_str(), *version));
        wait_for_sheets(args, &queries, sheets).await?;
        println!(
            "projection caught up {:.0}ms after the last command was answered",
            last.elapsed().as_secs_f64() * 1e3
        );
    }
    tally.finish_probes().await;
    report(&tally, window);
    if args.read_clients > 0 {
        reads.report(reads_window);
    }
    command_api_report(&args.command_url, conflicts_before).await;
    Ok(())
}

/// After `--wrk` on a spawned stack: how long after wrk `ended` every character's sheet in the
/// query API showed its last stored event (wrk does not say which versions it made, so they
/// are read from the event store). The sheets are watched side by side, as after the bench's
/// own load.
async fn wrk_caught_up(
    args: &Args,
    queries: &QueryApi,
    heroes: &[Hero],
    store: &sqlx::PgPool,
    ended: Instant,
) -> anyhow::Result<()> {
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, max(sequence) FROM events WHERE aggregate_type = 'character' \
         GROUP BY aggregate_id",
    )
    .fetch_all(store)
    .await?;
    let stored: BTreeMap<String, u64> = stored
        .into_iter()
        .map(|(id, sequence)| (id, u64::try_from(sequence).unwrap_or_default()))
        .collect();
    let read = ended.elapsed();
    let sheets = heroes.iter().filter_map(|hero| {
        let sequence = stored.get(&hero.id).copied()?;
        Some((hero.id.as_str(), hero.token.as_str(), sequence))
    });
    wait_for_sheets(args, queries, sheets).await?;
    println!(
        "projection caught up {:.0}ms after wrk ended (the store's last versions read in {:.0}ms)",
        ended.elapsed().as_secs_f64() * 1e3,
        read.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Waits until each `(character id, owner's token, version)` sheet shows that version in the
/// query API, side by side (`--setup-concurrency` at once).
async fn wait_for_sheets<'a>(
    args: &Args,
    queries: &QueryApi,
    sheets: impl Iterator<Item = (&'a str, &'a str, u64)>,
) -> anyhow::Result<()> {
    stream::iter(sheets)
        .map(|(id, token, version)| {
            let queries = queries.with_token(token);
            async move {
                queries
                    .wait_for_version(id, version, Duration::from_secs(180))
                    .await
            }
        })
        .buffer_unordered(args.setup_concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(())
}

/// When the load stops (`--spawn`): the commands each process manager stored so far and the
/// events it still had to read, as its runner last measured them. A manager that falls
/// behind does its work after the window (PvP damage landing late, victims dying after the
/// run), so a run's figures must be read with its backlog.
async fn process_managers_report(args: &Args) {
    let Some(url) = &args.process_managers_url else {
        return;
    };
    let mut parts = Vec::new();
    for manager in ["combat", "rewards"] {
        let stored = metric_where(
            url,
            "chaos_process_manager_commands_total",
            &[&format!("manager=\"{manager}\""), "outcome=\"stored\""],
        )
        .await;
        let behind = metric_where(
            url,
            "chaos_projector_lag_events",
            &[&format!("projection=\"pm-{manager}\"")],
        )
        .await;
        let figure = |n: Option<f64>| n.map_or("?".to_owned(), |n| format!("{n:.0}"));
        parts.push(format!(
            "{manager} {} commands stored, {} events behind",
            figure(stored),
            figure(behind)
        ));
    }
    // Their commands race the players' on the same characters (a hit lands on a victim who
    // is casting): each lost race is a decision made again.
    if let Some(redone) = metric_total(url, "chaos_command_conflicts_total").await {
        parts.push(format!("{redone:.0} decisions redone after a lost race"));
    }
    println!(
        "process managers when the load stopped: {}",
        parts.join("; ")
    );
}

/// The command API's side of a run: decisions redone since `conflicts_before`, group commit.
async fn command_api_report(command_url: &str, conflicts_before: Option<f64>) {
    let conflicts = metric_total(command_url, "chaos_command_conflicts_total").await;
    if let (Some(before), Some(after)) = (conflicts_before, conflicts) {
        println!(
            "decisions redone after a lost optimistic-concurrency race: {:.0}",
            after - before
        );
    }
    group_commit_report(command_url).await;
}

/// `--wrk`: wrk sends contended casts (a random character per request, with its owner's token)
/// over `--clients` connections for `--duration`; its report is printed as it is, then a
/// summary line. Fails if wrk is missing or any answer was not a 2xx.
async fn wrk(args: &Args, heroes: &[Hero]) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    // The request is the bench's own cast (`Kind::Cast`): each character's path and token in a
    // table, the body in a Lua long string (no escaping).
    let body = serde_json::to_string(&Kind::Cast.request("", "").1)?;
    let mut script =
        String::from("-- Written by bench --wrk: a cast on a random character, as its owner.\n");
    let _ = writeln!(script, "local body = [[{body}]]\nlocal heroes = {{");
    for hero in heroes {
        let (path, _) = Kind::Cast.request(&hero.id, "");
        let _ = writeln!(script, "  {{\"{path}\", \"Bearer {}\"}},", hero.token);
    }
    script.push_str(
        r#"}
local seed = 0
function setup(thread)
  seed = seed + 1
  thread:set("seed", seed)
end
function init(args)
  math.randomseed(seed * 7919)
end
function request()
  local h = heroes[math.random(#heroes)]
  return wrk.format("POST", h[1],
    {["Content-Type"] = "application/json", ["Authorization"] = h[2]}, body)
end
"#,
    );
    let path = std::env::temp_dir().join(format!("chaos-bench-{}.lua", uuid::Uuid::new_v4()));
    std::fs::write(&path, script)?;
    let duration = format!("{}s", args.duration.as_secs().max(1));
    let clients = args.clients.max(2).to_string();
    let output = tokio::process::Command::new("wrk")
        .args(["-t2", "-c", &clients, "-d", &duration, "--latency", "-s"])
        .arg(&path)
        .arg(&args.command_url)
        .output()
        .await;
    let _ = std::fs::remove_file(&path);
    let output = output.context("running wrk (Debian: apt-get install wrk)")?;
    let report = String::from_utf8_lossy(&output.stdout);
    print!("{report}");
    anyhow::ensure!(
        output.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    anyhow::ensure!(
        !report.contains("Non-2xx"),
        "wrk saw answers other than 2xx (above)"
    );
    let field = |prefix: &str| {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
            .unwrap_or("?")
            .to_owned()
    };
    println!(
        "wrk: {} commands/s, p50 {}, p99 {} (contended over {} characters, {} connections)",
        field("Requests/sec:"),
        field("50%"),
        field("99%"),
        heroes.len(),
        clients
    );
    Ok(())
}

/// Mixed workload: every wallet gets gold from a game master's grant, so spends succeed.
async fn fund_wallets(
    args: &Args,
    commands: &CommandApi,
    queries: &QueryApi,
    heroes: &[Hero],
    game_master: Option<&str>,
) -> anyhow::Result<()> {
    let Some(gm) = game_master else {
        println!("no game master token: wallets stay empty, spends answer insufficient-funds");
        return Ok(());
    };
    stream::iter(heroes)
        .map(|hero| async move {
            // The wallet is opened by the rewards process manager: wait until it is.
            queries
                .with_token(&hero.token)
                .wait_for_wallet(&hero.id, 1, Duration::from_secs(120))
                .await?;
            let r = commands
                .post(
                    &format!("/v1/wallets/{}/grant", hero.id),
                    Some(gm),
                    &serde_json::json!({"currency": "gold", "amount": 1_000_000_000u64,
                        "source": "bench", "reference": "bench-funding"}),
                    &[],
                )
                .await?;
            anyhow::ensure!(r.status.is_success(), "funding {}: {r:?}", hero.id);
            Ok(())
        })
        .buffer_unordered(args.setup_concurrency)
        .collect::<Vec<anyhow::Result<()>>>()
        .await
        .into_iter()
        .collect()
}

/// Mixed workload: every bag gets a cap to wear and herbs to brew potions from.
async fn stock_bags(
    args: &Args,
    commands: &CommandApi,
    heroes: &[Hero],
    game_master: Option<&str>,
) -> anyhow::Result<()> {
    let Some(gm) = game_master else {
        println!("no game master token: bags stay empty, equips and crafts are refused");
        return Ok(());
    };
    stream::iter(heroes)
        .map(|hero| async move {
            for (item, quantity) in [("leather_cap", 1), ("healing_herb", 400)] {
                let r = commands
                    .post(
                        &format!("/v1/characters/{}/grant-item", hero.id),
                        Some(gm),
                        &serde_json::json!({"item": item, "quantity": quantity,
                            "source": "bench"}),
                        &[],
                    )
                    .await?;
                anyhow::ensure!(r.status.is_success(), "stocking {}: {r:?}", hero.id);
            }
            Ok(())
        })
        .buffer_unordered(args.setup_concurrency)
        .collect::<Vec<anyhow::Result<()>>>()
        .await
        .into_iter()
        .collect()
}

/// The sum of a counter's series in a service's `/metrics`.
async fn metric_total(base: &str, name: &str) -> Option<f64> {
    metric_where(base, name, &[]).await
}

/// The sum of metric `name`'s series at `base` whose labels include every one of `labels`
/// (`outcome="stored"`); None where it has none or does not answer.
async fn metric_where(base: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    sum_where(&text, name, labels)
}

/// The sum of metric `name`'s series in a `/metrics` text whose labels include every one of
/// `labels`; None where it has none.
fn sum_where(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The command API's group-commit figures, and how many of its statements and of its commands
/// took over 25 and 50 ms (whole process lifetime, set-up included).
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
    // Where a command's tail is spent: in a slow statement (a WAL flush, a starved backend), or
    // elsewhere (behind other statements in the queue, or its threads waiting for a core).
    let over = |name: &str, series: &[&str], seconds: &str| {
        let le = format!("le=\"{seconds}\"");
        let all = sum_where(&text, name, &[series, &["le=\"+Inf\""]].concat())?;
        let within = sum_where(&text, name, &[series, &[le.as_str()]].concat())?;
        (all > 0.0).then(|| 100.0 * (all - within) / all)
    };
    let buckets = "chaos_eventstore_append_batch_seconds_bucket";
    let requests = "http_request_duration_seconds_bucket";
    let commands = ["method=\"POST\""];
    if let (Some(s25), Some(s50), Some(c25), Some(c50)) = (
        over(buckets, &[], "0.025"),
        over(buckets, &[], "0.05"),
        over(requests, &commands, "0.025"),
        over(requests, &commands, "0.05"),
    ) {
        println!(
            "tail: {s25:.2} % of statements over 25 ms, {s50:.2} % over 50 ms; {c25:.2} % of commands over 25 ms, {c50:.2} % over 50 ms in the command API (its own clock, from request to answer)"
        );
    }
}

/// What a client sends next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cast,
    Pvp,
    Spend,
    Equip,
    Unequip,
    Craft,
    Respawn,
    Travel,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Cast => "cast-skill",
            Self::Pvp => "cast-skill at a character",
            Self::Spend => "wallet spend",
            Self::Equip => "equip",
            Self::Unequip => "unequip",
            Self::Craft => "craft",
            Self::Respawn => "respawn",
            Self::Travel => "travel back to the woods",
        }
    }

    /// Its path and body for `hero`; `target`: another character (PvP).
    fn request(self, hero: &str, target: &str) -> (String, serde_json::Value) {
        let path = |action: &str| format!("/v1/characters/{hero}/{action}");
        match self {
            Self::Cast => (path("cast-skill"), serde_json::json!({"skill": "strike"})),
            Self::Pvp => (
                path("cast-skill"),
                serde_json::json!({"skill": "strike", "target": {"character": target}}),
            ),
            Self::Spend => (
                format!("/v1/wallets/{hero}/spend"),
                serde_json::json!({"currency": "gold", "amount": 1, "sink": "vendor:bench",
                    "reference": uuid::Uuid::new_v4().simple().to_string()}),
            ),
            Self::Equip => (
                path("equip"),
                serde_json::json!({"item": "leather_cap", "slot": "head"}),
            ),
            Self::Unequip => (path("unequip"), serde_json::json!({"slot": "head"})),
            Self::Craft => (
                path("craft"),
                serde_json::json!({"recipe": "health_potion"}),
            ),
            Self::Respawn => (path("respawn"), serde_json::json!({})),
            Self::Travel => (
                path("travel"),
                serde_json::json!({"zone": "whispering_woods"}),
            ),
        }
    }
}

/// What a client knows of one of its characters, to keep the mixed workload playable: the
/// dead respawn (in the safe meadow) and walk back to the woods; the cap goes on and off.
#[derive(Debug, Default, Clone, Copy)]
struct Known {
    dead: bool,
    in_meadow: bool,
    wearing: bool,
}

async fn load(
    args: &Args,
    commands: &CommandApi,
    queries: &QueryApi,
    heroes: &[Hero],
    duration: Duration,
    round: u64,
) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let accepted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let heroes = Arc::new(heroes.to_vec());
    let mut clients = Vec::new();
    for c in 0..args.clients {
        let mine: Vec<usize> = (c..heroes.len()).step_by(args.clients).collect();
        let (commands, queries, tally, accepted, heroes) = (
            commands.clone(),
            queries.clone(),
            tally.clone(),
            accepted.clone(),
            heroes.clone(),
        );
        let (sample_every, visibility_timeout) = (args.sample_every, args.visibility_timeout);
        let (contended, workload) = (args.contended, args.workload);
        let idempotency_keys = args.idempotency_keys;
        let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ (round << 32) ^ c as u64);
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
            let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
            let mut last_answer = None;
            // By the character's index: no id or token copied per command.
            let mut last_versions: BTreeMap<usize, u64> = BTreeMap::new();
            let mut due = pace.map(|(_, first)| first);
            let mut n = 0usize;
            let mut known: BTreeMap<usize, Known> = BTreeMap::new();
            while Instant::now() < deadline {
                let index = if contended {
                    rng.random_range(0..heroes.len())
                } else {
                    mine[n % mine.len()]
                };
                let hero = &heroes[index];
                n += 1;
                let known = known.entry(index).or_default();
                let kind = match workload {
                    Workload::Cast => Kind::Cast,
                    Workload::Mixed if known.dead => Kind::Respawn,
                    Workload::Mixed if known.in_meadow => Kind::Travel,
                    Workload::Mixed => match rng.random_range(0..100) {
                        0..50 => Kind::Cast,
                        50..65 => Kind::Pvp,
                        65..80 => Kind::Spend,
                        80..90 if known.wearing => Kind::Unequip,
                        80..90 => Kind::Equip,
                        _ => Kind::Craft,
                    },
                };
                let target = &heroes[rng.random_range(0..heroes.len())].id;
                let sent = match (&mut due, pace) {
                    (Some(at), Some((interval, _))) => {
                        tokio::time::sleep_until((*at).into()).await;
                        let sent = *at;
                        *at += interval;
                        sent
                    }
                    _ => Instant::now(),
                };
                let (path, body) = kind.request(&hero.id, target);
                // Unique across clients, rounds and runs of the same stack.
                let key = idempotency_keys.then(|| format!("bench-{}", uuid::Uuid::new_v4()));
                let headers: &[(&str, &str)] = match &key {
                    Some(key) => &[("Idempotency-Key", key.as_str())],
                    None => &[],
                };
                let reply = commands
                    .post(&path, Some(&hero.token), &body, headers)
                    .await;
                let answered = Instant::now();
                // What the answer says of the character (mixed workload).
                if let Ok(r) = &reply {
                    match (kind, r.status.is_success(), r.problem_type()) {
                        (_, false, Some("/problems/character-dead")) => known.dead = true,
                        (_, false, Some("/problems/zone-forbids-skill")) => known.in_meadow = true,
                        (_, false, Some("/problems/character-alive")) => known.dead = false,
                        (Kind::Respawn, true, _) => {
                            known.dead = false;
                            known.in_meadow = true;
                        }
                        (Kind::Travel, true, _) => known.in_meadow = false,
                        (Kind::Travel, false, Some("/problems/already-in-zone")) => {
                            known.in_meadow = false
                        }
                        (Kind::Equip, true, _)
                        | (Kind::Equip, false, Some("/problems/insufficient-items")) => {
                            known.wearing = true
                        }
                        (Kind::Unequip, true, _)
                        | (Kind::Unequip, false, Some("/problems/slot-empty")) => {
                            known.wearing = false
                        }
                        _ => {}
                    }
                }
                match reply {
                    Ok(r) if r.status.is_success() => {
                        latencies.push(answered - sent);
                        *kinds.entry(kind.name()).or_default() += 1;
                        last_answer = Some(answered);
                        let count = accepted.fetch_add(1, Ordering::Relaxed) + 1;
                        let answer = r.answer();
                        if let (false, Ok(answer)) = (kind == Kind::Spend, &answer) {
                            let version = last_versions.entry(index).or_default();
                            *version = (*version).max(answer.sequence);
                        }
                        if count.is_multiple_of(sample_every) {
                            if let Ok(answer) = answer {
                                let queries = queries.with_token(&hero.token);
                                probes.push(tokio::spawn(probe(
                                    queries,
                                    kind,
                                    hero.id.clone(),
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
            for (index, version) in last_versions {
                let hero = &heroes[index];
                let entry = t
                    .last_versions
                    .entry(hero.id.clone())
                    .or_insert_with(|| (hero.token.clone(), 0));
                entry.1 = entry.1.max(version);
            }
            for (k, v) in errors {
                *t.errors.entry(k).or_default() += v;
            }
            for (k, v) in kinds {
                *t.commands.entry(k).or_default() += v;
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

/// A player's read of the query API (`--read-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Read {
    Profile,
    Sheet,
    Inventory,
    Wallet,
    Top,
    Around,
    Timeline,
}

impl Read {
    /// The mix, from a roll in 0..100.
    fn pick(roll: u32) -> Self {
        match roll {
            0..25 => Self::Profile,
            25..50 => Self::Sheet,
            50..60 => Self::Inventory,
            60..70 => Self::Wallet,
            70..80 => Self::Top,
            80..90 => Self::Around,
            _ => Self::Timeline,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Profile => "public profile",
            Self::Sheet => "own sheet",
            Self::Inventory => "own inventory",
            Self::Wallet => "own wallet",
            Self::Top => "level board, top 20",
            Self::Around => "level board, around me (radius 5)",
            Self::Timeline => "own timeline (50 entries)",
        }
    }

    fn path(self, id: &str) -> String {
        match self {
            Self::Profile => format!("/v1/characters/{id}"),
            Self::Sheet => format!("/v1/characters/{id}/sheet"),
            Self::Inventory => format!("/v1/characters/{id}/inventory"),
            Self::Wallet => format!("/v1/wallets/{id}"),
            Self::Top => "/v1/leaderboards/level?limit=20".to_owned(),
            Self::Around => format!("/v1/leaderboards/level/around/{id}?radius=5"),
            Self::Timeline => format!("/v1/characters/{id}/timeline?limit=50"),
        }
    }
}

/// What the reading clients record.
#[derive(Debug, Default)]
struct ReadTally {
    /// Time to each answer (200 or 304), by read.
    latencies: BTreeMap<Read, Vec<Duration>>,
    /// Answers `304 Not Modified` (the client's ETag was still current).
    not_modified: u64,
    /// Anything else, by status and problem type.
    errors: BTreeMap<String, u64>,
}

impl ReadTally {
    fn report(mut self, elapsed: Duration) {
        let answered: usize = self.latencies.values().map(Vec::len).sum();
        let errors: u64 = self.errors.values().sum();
        println!(
            "reads: {answered} answered ({} not modified), {errors} failed in {:.1}s => {:.0} \
             reads/s",
            self.not_modified,
            elapsed.as_secs_f64(),
            answered as f64 / elapsed.as_secs_f64()
        );
        let mut all: Vec<Duration> = self.latencies.values().flatten().copied().collect();
        println!("read latency:       {}", summary(&mut all));
        for (read, latencies) in &mut self.latencies {
            println!("  {}: {}", read.name(), summary(latencies));
        }
        for (kind, n) in &self.errors {
            println!("read error {kind}: {n}");
        }
    }
}

/// `--read-clients` clients reading for `duration`, each over the whole key space with the
/// owner's token, revalidating what it read before with its ETag.
async fn read_load(args: &Args, heroes: &[Hero], duration: Duration, round: u64) -> ReadTally {
    let deadline = Instant::now() + duration;
    let heroes = Arc::new(heroes.to_vec());
    let readers: Vec<_> = (0..args.read_clients)
        .map(|c| {
            let queries = QueryApi::new(&args.query_url);
            let heroes = heroes.clone();
            let mut rng =
                rand::rngs::StdRng::seed_from_u64(args.seed ^ (round << 40) ^ (c as u64 + 1) << 20);
            tokio::spawn(async move {
                let mut tally = ReadTally::default();
                let mut etags: std::collections::HashMap<String, String> = Default::default();
                while Instant::now() < deadline {
                    let hero = &heroes[rng.random_range(0..heroes.len())];
                    let read = Read::pick(rng.random_range(0..100));
                    let path = read.path(&hero.id);
                    let etag = etags.get(&path).cloned();
                    let headers: &[(&str, &str)] = match &etag {
                        Some(tag) => &[("If-None-Match", tag.as_str())],
                        None => &[],
                    };
                    let sent = Instant::now();
                    let reply = queries.with_token(&hero.token).get(&path, headers).await;
                    let took = sent.elapsed();
                    match reply {
                        Ok(r) if r.status.as_u16() == 304 => {
                            tally.not_modified += 1;
                            tally.latencies.entry(read).or_default().push(took);
                        }
                        Ok(r) if r.status.is_success() => {
                            if let Some(tag) = r.header("etag") {
                                etags.insert(path, tag.to_owned());
                            }
                            tally.latencies.entry(read).or_default().push(took);
                        }
                        Ok(r) => {
                            *tally
                                .errors
                                .entry(format!(
                                    "{} {} {}",
                                    read.name(),
                                    r.status.as_u16(),
                                    r.problem_type().unwrap_or("")
                                ))
                                .or_default() += 1;
                        }
                        Err(e) => {
                            *tally
                                .errors
                                .entry(format!("{} transport: {e}", read.name()))
                                .or_default() += 1;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = ReadTally::default();
    for reader in readers {
        if let Ok(tally) = reader.await {
            for (read, latencies) in tally.latencies {
                total.latencies.entry(read).or_default().extend(latencies);
            }
            total.not_modified += tally.not_modified;
            for (kind, n) in tally.errors {
                *total.errors.entry(kind).or_default() += n;
            }
        }
    }
    total
}

/// Time from `accepted` until the query API serves the read model at the command's version.
async fn probe(
    queries: QueryApi,
    kind: Kind,
    id: String,
    token: String,
    accepted: Instant,
    timeout: Duration,
) -> Option<Duration> {
    while accepted.elapsed() < timeout {
        let reply = match kind {
            Kind::Spend => queries.wallet(&id, Some(&token)).await,
            _ => queries.sheet(&id, Some(&token)).await,
        };
        match reply {
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
    for (kind, n) in &tally.commands {
        println!("  {kind}: {n}");
    }
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
