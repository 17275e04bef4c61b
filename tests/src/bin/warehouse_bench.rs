//! Warehouse throughput (a benchmark that prints figures, not a test).
//!
//! 1. Simulates `--events` events of many characters and their wallets with the domain's own event
//!    types (every character and wallet event type: casts at NPCs and characters, kills, loot,
//!    level-ups, PvP damage, misses, deaths, respawns, items used, destroyed, crafted, equipped,
//!    currency granted and spent), in per-aggregate sequence order, and bulk-loads them with
//!    `COPY` into a fresh PostgreSQL database, as the event store holds them (the stored payload,
//!    the metadata, one transaction per 50,000 rows so the global order spans many `tx_id`s).
//! 2. Rebuilds a fresh warehouse file from that database with a `StoreFeed` (the embedded mode's
//!    and the operators' rebuild path, the file tuned as a rebuild target) and prints events/s
//!    and this process's CPU per event, by thread (the DuckDB thread, DuckDB's worker, tokio's
//!    workers reading and decoding, the mapping's second thread among those that ended) and
//!    PostgreSQL's beside it; `--rebuilds N` does it N times, each into a fresh file
//!    (several samples of one load, which takes longer than a rebuild).
//! 3. With `--kafka`: publishes the same events as the relay does (read in global order, Avro in
//!    the Confluent wire format through the schema registry, key = aggregate id, the relay's
//!    headers) to fresh topics, rebuilds another warehouse with a `KafkaRunner` (the
//!    `projector warehouse` path) and prints events/s; then produces `--steady-rate` events/s for
//!    `--steady-secs` while the runner follows and prints the lag it kept (events not yet in the
//!    warehouse, and the age of the oldest of them), sampled every 100 ms.
//!
//! Both warehouses must end with the same checksum (the same rows whatever the feed and the batch
//! boundaries); the bench fails otherwise.
//!
//!   eval "$(deploy/local/services.sh env)"
//!   nice cargo run --release -p chaos-tests --bin warehouse_bench -- --events 1000000 [--kafka]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_domain::{
    AccountId, CastHit, CharacterEvent, CharacterId, CharacterName, Content, Currency, GameEvent,
    ItemChange, ItemStack, MissReason, Slot, WalletEvent,
};
use chaos_eventstore::pg::PgEventLog;
use chaos_eventstore::{EventLog, Position};
use chaos_projectors::runner::{ProjectorMetrics, StoreFeed};
use chaos_projectors::warehouse::Warehouse;
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;

#[derive(Debug, Clone)]
struct Options {
    events: u64,
    batch: u32,
    kafka: bool,
    kafka_batch: usize,
    steady_rate: u64,
    steady_secs: u64,
    keep: bool,
    phases: bool,
    /// How many times the store rebuild runs (each into a fresh file).
    rebuilds: u32,
    /// Events per transaction of the store rebuild (`rebuild.warehouse_commit`).
    commit: u64,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        events: 1_000_000,
        batch: 20_000,
        kafka: false,
        kafka_batch: 20_000,
        steady_rate: 20_000,
        steady_secs: 20,
        keep: false,
        phases: false,
        rebuilds: 1,
        commit: 1_000_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} N"));
        match a.as_str() {
            "--events" => o.events = value("--events")?.parse()?,
            "--batch" => o.batch = value("--batch")?.parse()?,
            "--kafka" => o.kafka = true,
            "--kafka-batch" => o.kafka_batch = value("--kafka-batch")?.parse()?,
            "--steady-rate" => o.steady_rate = value("--steady-rate")?.parse()?,
            "--steady-secs" => o.steady_secs = value("--steady-secs")?.parse()?,
            "--keep" => o.keep = true,
            "--phases" => o.phases = true,
            "--rebuilds" => o.rebuilds = value("--rebuilds")?.parse()?,
            "--commit" => o.commit = value("--commit")?.parse()?,
            "-h" | "--help" => {
                println!(
                    "warehouse_bench [--events N] [--batch N] [--commit N] [--kafka] \
                     [--kafka-batch N] [--steady-rate N] [--steady-secs N] [--keep] [--phases] \
                     [--rebuilds N]"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(o)
}

#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chaos_platform::disable_transparent_huge_pages();
    let o = options()?;
    let dir = std::env::temp_dir().join(format!("chaos-warehouse-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let outcome = run(&o, &dir).await;
    if o.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

async fn run(o: &Options, dir: &std::path::Path) -> anyhow::Result<()> {
    let pool = chaos_eventstore::testing::fresh_pg().await;
    let t = Instant::now();
    let content = Content::builtin()?;
    let rows = simulate(&content, o.events, 20_261_201);
    let simulated = t.elapsed();
    let t = Instant::now();
    load(&pool, &rows).await?;
    println!(
        "PostgreSQL: simulated {} events in {:.1}s, loaded with COPY in {:.1}s",
        rows.len(),
        simulated.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    let total = rows.len() as u64;
    drop(rows);
    sqlx::query("VACUUM ANALYZE events").execute(&pool).await?;

    if o.phases {
        phases(o, dir, &pool, total).await?;
    }

    // The rebuild from PostgreSQL through the store feed, `--rebuilds` times, each into a fresh
    // file: several samples of one loaded store (the load takes longer than a rebuild).
    let mut from_store = None;
    for round in 0..o.rebuilds {
        let path = dir.join(format!("from-store-{round}.duckdb"));
        let warehouse = store_rebuild(o, &pool, &path, total).await?;
        let checksum = warehouse.checksum().await?;
        if let Some(first) = &from_store {
            anyhow::ensure!(
                *first == checksum,
                "rebuild {round} ended with another checksum: {checksum:?} against {first:?}"
            );
        } else {
            print_counts(&warehouse).await?;
            from_store = Some(checksum);
        }
        warehouse.close().await?;
        if round + 1 < o.rebuilds && !o.keep {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(path.with_extension("duckdb.wal"));
        }
    }
    let from_store = from_store.context("--rebuilds must be at least 1")?;

    if o.kafka {
        let log: Arc<dyn EventLog> = Arc::new(PgEventLog::new(pool.clone()));
        kafka::run(o, dir, &pool, log, total, &from_store).await?;
    }
    if !o.keep {
        drop_database(&pool).await;
    }
    Ok(())
}

/// Where the time goes: reading and decoding the store alone, and the warehouse sink alone
/// (the same events, already in memory, in the same batches).
async fn phases(
    o: &Options,
    dir: &std::path::Path,
    pool: &PgPool,
    total: u64,
) -> anyhow::Result<()> {
    let log = PgEventLog::new(pool.clone());
    let t = Instant::now();
    let mut position = Position::START;
    let mut batches = Vec::new();
    let mut decoding = Duration::ZERO;
    loop {
        let stored = log.read_after(position, o.batch).await?;
        let Some(last) = stored.last() else { break };
        position = last.position;
        let d = Instant::now();
        let events: Vec<chaos_schemas::PublishedEvent> = stored
            .iter()
            .map(chaos_eventstore::publish::to_published)
            .collect::<Result<_, _>>()?;
        decoding += d.elapsed();
        batches.push(events);
    }
    let read = t.elapsed();
    println!(
        "  reading and decoding the store alone: {:.0} events/s (reading rows {:.1}s, decoding \
         them {:.1}s)",
        total as f64 / read.as_secs_f64(),
        (read - decoding).as_secs_f64(),
        decoding.as_secs_f64()
    );
    let warehouse = Warehouse::open(dir.join("sink-only.duckdb"))
        .await?
        .for_rebuild()
        .await?;
    let t = Instant::now();
    for events in &batches {
        warehouse.apply_batch(events, &[]).await?;
    }
    let sink = t.elapsed();
    println!(
        "  the warehouse sink alone: {:.0} events/s",
        total as f64 / sink.as_secs_f64()
    );
    warehouse.close().await?;
    Ok(())
}

/// One rebuild of a fresh warehouse file at `path` from the loaded store through a `StoreFeed`
/// (the embedded mode's and the operators' path, the file tuned as `chaosctl rebuild warehouse`
/// tunes its target); prints its figures, with this process's CPU over it.
async fn store_rebuild(
    o: &Options,
    pool: &PgPool,
    path: &std::path::Path,
    total: u64,
) -> anyhow::Result<Warehouse> {
    let cpu = process_cpu();
    let threads = threads_cpu();
    let postgres = postgres_cpu();
    // Tuned as `chaosctl rebuild warehouse` tunes its target.
    let warehouse = Warehouse::open(path)
        .await?
        .for_store_rebuild(o.commit)
        .await?;
    let log: Arc<dyn EventLog> = Arc::new(PgEventLog::new(pool.clone()));
    // prometheus is not a dependency of this crate: the registry's type is inferred.
    let registry = Default::default();
    let feed = StoreFeed::new(
        "warehouse",
        log.clone(),
        Arc::new(warehouse.clone()),
        ProjectorMetrics::new(&registry),
    )
    .with_batch(o.batch)
    .with_checkpoint(warehouse.store_checkpoint());
    let t = Instant::now();
    let mut last_report = Instant::now();
    let done = feed
        .catch_up(Position::START, |p| {
            if last_report.elapsed() > Duration::from_secs(5) {
                last_report = Instant::now();
                eprintln!(
                    "  {} events, {:.0}/s",
                    p.events,
                    p.events as f64 / t.elapsed().as_secs_f64()
                );
            }
        })
        .await?;
    let fed = t.elapsed();
    // The last transaction's commit (a connection sees only what is committed), then the keys
    // of `events`, built once at the end, and the checkpoint (a switch does these first).
    drop(warehouse.connect().await?);
    let committed = t.elapsed();
    warehouse.finish_rebuild().await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(
        done.events == total && done.applied == total && done.dead_letters == 0,
        "the store feed handled {done:?}, expected {total} applied"
    );
    println!(
        "rebuild from PostgreSQL (StoreFeed, batches of {}, {} per transaction): {total} events \
         in {:.2}s = {:.0} events/s (fed in {:.2}s, the last commit {:.2}s, the keys and the \
         checkpoint {:.2}s)",
        o.batch,
        o.commit,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        fed.as_secs_f64(),
        (committed - fed).as_secs_f64(),
        (elapsed - committed).as_secs_f64(),
    );
    let cpu = process_cpu() - cpu;
    println!(
        "  this process's CPU: {:.2}s, {:.2} µs an event",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / total as f64
    );
    let after = threads_cpu();
    let mut living = Duration::ZERO;
    let mut by_thread: Vec<String> = after
        .iter()
        .map(|(name, &(count, spent))| {
            let before = threads
                .get(name)
                .map_or(Duration::ZERO, |&(_, spent)| spent);
            let spent = spent.saturating_sub(before);
            living += spent;
            (name, count, spent)
        })
        .filter(|(_, _, spent)| !spent.is_zero())
        .map(|(name, count, spent)| {
            format!(
                "{name} (×{count}) {:.2}s ({:.2} µs an event)",
                spent.as_secs_f64(),
                spent.as_secs_f64() * 1e6 / total as f64
            )
        })
        .collect();
    let ended = cpu.saturating_sub(living);
    by_thread.push(format!(
        "threads that ended {:.2}s ({:.2} µs an event)",
        ended.as_secs_f64(),
        ended.as_secs_f64() * 1e6 / total as f64
    ));
    println!("  by thread: {}", by_thread.join(", "));
    let postgres = postgres_cpu().saturating_sub(postgres);
    println!(
        "  PostgreSQL's CPU (its processes on this machine): {:.2}s, {:.2} µs an event; with \
         this process's, {:.2} µs an event",
        postgres.as_secs_f64(),
        postgres.as_secs_f64() * 1e6 / total as f64,
        (postgres + cpu).as_secs_f64() * 1e6 / total as f64
    );
    Ok(warehouse)
}

/// This process's CPU time so far (user and system, all threads), from `/proc/self/stat`;
/// zero where there is no procfs.
fn process_cpu() -> Duration {
    stat_cpu("/proc/self/stat")
}

/// This process's CPU time so far by thread name (threads of one name summed; a thread that
/// ended is not counted), from `/proc/self/task`; empty where there is no procfs. DuckDB's own
/// workers inherit the name of the thread that opened the database, `warehouse-duckdb` (which
/// the kernel cuts to 15 bytes): those are told apart by thread id.
fn threads_cpu() -> BTreeMap<String, (usize, Duration)> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let name = match name.trim() {
            // DuckDB's own workers share the name: one by one.
            duckdb @ "warehouse-duckd" => {
                format!("{duckdb}[{}]", task.file_name().to_string_lossy())
            }
            other => other.to_owned(),
        };
        let (count, spent) = by_name.entry(name).or_insert((0, Duration::ZERO));
        *count += 1;
        *spent += stat_cpu(path.join("stat"));
    }
    by_name
}

/// The CPU time so far of the processes named `postgres` on this machine (the test cluster the
/// bench reads; zero where there is no procfs or PostgreSQL runs elsewhere). A backend that
/// ended in between is not counted.
fn postgres_cpu() -> Duration {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    processes
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|p| {
            std::fs::read_to_string(p.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|p| stat_cpu(p.path().join("stat")))
        .sum()
}

/// The CPU time in a procfs `stat` file; zero where there is none.
fn stat_cpu(path: impl AsRef<std::path::Path>) -> Duration {
    chaos_tests::stats::proc_cpu(path).unwrap_or_default()
}

async fn print_counts(warehouse: &Warehouse) -> anyhow::Result<()> {
    let counts: Vec<String> = warehouse
        .counts()
        .await?
        .into_iter()
        .map(|c| format!("{} {}", c.table, c.rows))
        .collect();
    println!("  rows: {}", counts.join(", "));
    Ok(())
}

async fn drop_database(pool: &PgPool) {
    let name: Option<String> = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .ok();
    pool.close().await;
    if let Some(name) = name {
        if let Ok(admin) = PgPool::connect(&chaos_eventstore::testing::database_url()).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await;
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The simulation.

/// One row of the event store.
struct Row {
    aggregate_type: &'static str,
    aggregate_id: String,
    sequence: u64,
    event_type: &'static str,
    event_version: String,
    payload: serde_json::Value,
    metadata: serde_json::Value,
}

struct Player {
    id: CharacterId,
    owner: AccountId,
    class: String,
    level: u8,
    xp: u64,
    zone: String,
    hp: u32,
    max_hp: u32,
    mana: u32,
    max_mana: u32,
    sequence: u64,
    wallet_sequence: u64,
    gold: u64,
    dead: bool,
    bag: BTreeMap<String, u32>,
    equipped: BTreeMap<Slot, String>,
    clock: DateTime<Utc>,
}

struct Sim<'a> {
    content: &'a Content,
    rng: StdRng,
    players: Vec<Player>,
    rows: Vec<Row>,
    causation: Option<String>,
}

/// Simulates about `events` events: characters play sessions of casts, kills, loot, crafting,
/// travel and PvP, separated by hours offline.
fn simulate(content: &Content, events: u64, seed: u64) -> Vec<Row> {
    let mut sim = Sim {
        content,
        rng: StdRng::seed_from_u64(seed),
        players: Vec::new(),
        rows: Vec::with_capacity(usize::try_from(events).unwrap_or(0) + 64),
        causation: None,
    };
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();
    // About 400 events per character over its life.
    let characters = (events / 400).max(2);
    for i in 0..characters {
        let at = start + Span::seconds((i * 97 % 86_400) as i64);
        sim.create(at);
    }
    while (sim.rows.len() as u64) < events {
        let i = sim.rng.random_range(0..sim.players.len());
        sim.act(i);
    }
    sim.rows
}

impl Sim<'_> {
    fn pick<'v, T>(&mut self, items: &'v [T]) -> &'v T {
        &items[self.rng.random_range(0..items.len())]
    }

    fn character_event(&mut self, i: usize, event: CharacterEvent) -> String {
        let p = &mut self.players[i];
        p.sequence += 1;
        let id =
            chaos_eventstore::publish::event_id("character", &p.id.to_string(), p.sequence as i64);
        let row = Row {
            aggregate_type: "character",
            aggregate_id: p.id.to_string(),
            sequence: p.sequence,
            event_type: event.type_name(),
            event_version: cqrs_version(&event),
            payload: chaos_domain::encode_stored(&event),
            metadata: metadata(event.occurred_at(), p.owner, self.causation.as_deref()),
        };
        self.rows.push(row);
        id.to_string()
    }

    fn wallet_event(&mut self, i: usize, event: WalletEvent) {
        let p = &mut self.players[i];
        p.wallet_sequence += 1;
        let row = Row {
            aggregate_type: "wallet",
            aggregate_id: p.id.to_string(),
            sequence: p.wallet_sequence,
            event_type: event.type_name(),
            event_version: cqrs_version(&event),
            payload: chaos_domain::encode_stored(&event),
            metadata: metadata(event.occurred_at(), p.owner, self.causation.as_deref()),
        };
        self.rows.push(row);
    }

    fn create(&mut self, at: DateTime<Utc>) {
        let classes: Vec<&String> = self.content.classes.keys().collect();
        let class = (*self.pick(&classes)).clone();
        let def = &self.content.classes[&class];
        let n = self.players.len();
        let player = Player {
            id: CharacterId::from_uuid(uuid::Uuid::from_u128(0x5eed_0000_0000 + n as u128)),
            owner: AccountId::from_uuid(uuid::Uuid::from_u128(0xacc0_0000_0000 + n as u128)),
            class: class.clone(),
            level: 1,
            xp: 0,
            zone: self.content.progression.starting_zone.clone(),
            hp: def.max_hp(1),
            max_hp: def.max_hp(1),
            mana: def.max_mana(1),
            max_mana: def.max_mana(1),
            sequence: 0,
            wallet_sequence: 0,
            gold: 0,
            dead: false,
            bag: BTreeMap::new(),
            equipped: BTreeMap::new(),
            clock: at,
        };
        self.players.push(player);
        let p = &self.players[n];
        let created = CharacterEvent::CharacterCreated {
            owner: p.owner,
            name: CharacterName::parse(&format!("Hero{n}")).expect("a valid name"),
            class,
            level: 1,
            max_hp: p.max_hp,
            max_mana: p.max_mana,
            zone: p.zone.clone(),
            skills: def.starting_skills.clone(),
            created_at: at,
        };
        let (owner, character) = (p.owner, p.id);
        self.character_event(n, created);
        self.wallet_event(
            n,
            WalletEvent::WalletOpened {
                owner,
                character,
                opened_at: at,
            },
        );
    }

    /// One command of player `i` (and what it causes), a few seconds after its last one; now
    /// and then the player logs off for hours.
    fn act(&mut self, i: usize) {
        let pause = if self.rng.random_range(0..100) == 0 {
            Span::minutes(self.rng.random_range(45..600))
        } else {
            Span::milliseconds(self.rng.random_range(1_500..12_000))
        };
        self.players[i].clock += pause;
        let now = self.players[i].clock;
        if self.players[i].dead {
            return self.respawn(i, now);
        }
        match self.rng.random_range(0..100) {
            0..=49 => self.fight_npc(i, now),
            50..=57 => self.fight_player(i, now),
            58..=65 => self.travel(i, now),
            66..=73 => self.use_item(i, now),
            74..=79 => self.craft(i, now),
            80..=85 => self.equip(i, now),
            86..=88 => self.destroy(i, now),
            89..=93 => self.spend(i, now),
            _ => self.grant(i, now),
        }
    }

    fn skill(&mut self, i: usize) -> (String, u32) {
        let class = self.players[i].class.clone();
        let skills: Vec<(&String, u32)> = self
            .content
            .skills
            .iter()
            .filter(|(_, s)| s.offensive && s.open_to(&class))
            .map(|(id, s)| (id, s.mana_cost))
            .collect();
        let (skill, cost) = *self.pick(&skills);
        (skill.clone(), cost)
    }

    fn cast(
        &mut self,
        i: usize,
        now: DateTime<Utc>,
        target: Option<String>,
        hit: Option<CastHit>,
        damage: u32,
    ) -> String {
        let (skill, cost) = self.skill(i);
        let p = &mut self.players[i];
        let before = p.max_mana;
        let cost = cost.min(before);
        p.mana = before - cost;
        let event = CharacterEvent::SkillCast {
            skill,
            target,
            hit,
            zone: p.zone.clone(),
            mana_before: before,
            mana_cost: cost,
            mana_after: before - cost,
            damage,
            cooldown_until: now + Span::seconds(4),
            cast_at: now,
        };
        self.character_event(i, event)
    }

    fn fight_npc(&mut self, i: usize, now: DateTime<Utc>) {
        let npcs: Vec<&String> = self.content.npcs.keys().collect();
        let npc = (*self.pick(&npcs)).clone();
        let def = &self.content.npcs[&npc];
        let damage: u32 = self.rng.random_range(5..40);
        let hp_before = self.rng.random_range(1..=def.max_hp);
        let dealt = damage.saturating_sub(def.defense);
        let hp_after = hp_before.saturating_sub(dealt);
        let hit = CastHit::Npc {
            npc: npc.clone(),
            hp_before,
            damage: dealt,
            hp_after,
        };
        self.cast(i, now, Some(npc.clone()), Some(hit), damage);
        if hp_after > 0 {
            return;
        }
        let zone = self.players[i].zone.clone();
        let mut loot = Vec::new();
        let mut left = Vec::new();
        for line in &def.loot {
            if self.rng.random_range(0..100) < line.chance_percent {
                let quantity = self.rng.random_range(line.quantity[0]..=line.quantity[1]);
                if self.rng.random_range(0..10) == 0 {
                    left.push(ItemStack {
                        item: line.item.clone(),
                        quantity,
                    });
                } else {
                    loot.push((line.item.clone(), quantity));
                }
            }
        }
        self.character_event(
            i,
            CharacterEvent::NpcKilled {
                npc: npc.clone(),
                zone,
                xp_reward: def.xp_reward,
                loot_left: left,
                killed_at: now,
            },
        );
        self.gain_xp(i, u64::from(def.xp_reward), format!("kill:{npc}"), now);
        if !loot.is_empty() {
            let items = loot
                .into_iter()
                .map(|(item, quantity)| self.put(i, item, quantity))
                .collect();
            self.character_event(
                i,
                CharacterEvent::ItemsAcquired {
                    items,
                    source: format!("loot:{npc}"),
                    acquired_at: now,
                },
            );
        }
    }

    fn put(&mut self, i: usize, item: String, quantity: u32) -> ItemChange {
        let slot = self.players[i].bag.entry(item.clone()).or_insert(0);
        *slot += quantity;
        ItemChange {
            item,
            quantity,
            quantity_after: *slot,
        }
    }

    fn take(&mut self, i: usize, item: &str, quantity: u32) -> ItemChange {
        let bag = &mut self.players[i].bag;
        let left = bag.get(item).copied().unwrap_or(0).saturating_sub(quantity);
        if left == 0 {
            bag.remove(item);
        } else {
            bag.insert(item.to_owned(), left);
        }
        ItemChange {
            item: item.to_owned(),
            quantity,
            quantity_after: left,
        }
    }

    fn gain_xp(&mut self, i: usize, amount: u64, source: String, now: DateTime<Utc>) {
        let p = &mut self.players[i];
        p.xp += amount;
        let total_xp = p.xp;
        self.character_event(
            i,
            CharacterEvent::ExperienceGained {
                amount,
                total_xp,
                source,
                gained_at: now,
            },
        );
        let reached = self.content.level_for_xp(total_xp);
        while self.players[i].level < reached {
            let p = &mut self.players[i];
            p.level += 1;
            let level = p.level;
            let def = &self.content.classes[&p.class];
            p.max_hp = def.max_hp(level);
            p.max_mana = def.max_mana(level);
            let (max_hp, max_mana, class) = (p.max_hp, p.max_mana, p.class.clone());
            let gold_reward = self.content.gold_reward(level);
            let id = self.character_event(
                i,
                CharacterEvent::LeveledUp {
                    level,
                    max_hp,
                    max_mana,
                    skills_unlocked: self.content.skills_unlocked_at(&class, level),
                    gold_reward,
                    leveled_at: now,
                },
            );
            // The wallet process manager grants the reward, caused by the level-up.
            self.caused_by(id, |sim| {
                sim.credit(i, gold_reward, "level-up", &format!("level:{level}"), now)
            });
        }
    }

    fn caused_by(&mut self, cause: String, f: impl FnOnce(&mut Self)) {
        let before = self.causation.replace(cause);
        f(self);
        self.causation = before;
    }

    fn credit(&mut self, i: usize, amount: u64, source: &str, reference: &str, now: DateTime<Utc>) {
        let p = &mut self.players[i];
        p.gold += amount;
        let balance_after = p.gold;
        self.wallet_event(
            i,
            WalletEvent::CurrencyGranted {
                currency: Currency::Gold,
                amount,
                balance_after,
                source: source.to_owned(),
                reference: reference.to_owned(),
                granted_at: now,
            },
        );
    }

    fn fight_player(&mut self, i: usize, now: DateTime<Utc>) {
        let v = self.rng.random_range(0..self.players.len());
        if v == i {
            return self.travel(i, now);
        }
        let victim = self.players[v].id;
        let amount = self.rng.random_range(5..60);
        let cause = self.cast(
            i,
            now,
            Some(victim.to_string()),
            Some(CastHit::Character { id: victim }),
            amount,
        );
        let attacker = self.players[i].id;
        let (skill, zone) = (String::from("strike"), self.players[i].zone.clone());
        let at = now + Span::milliseconds(40);
        let v_clock = self.players[v].clock.max(at);
        self.players[v].clock = v_clock;
        self.caused_by(cause.clone(), |sim| {
            if sim.players[v].dead || sim.rng.random_range(0..10) == 0 {
                let reason = *sim.pick(&MissReason::ALL);
                sim.character_event(
                    v,
                    CharacterEvent::AttackMissed {
                        attacker: CharacterId::from_uuid(*attacker.as_uuid()),
                        cause: cause.clone(),
                        skill: skill.clone(),
                        reason,
                        zone: zone.clone(),
                        missed_at: v_clock,
                    },
                );
                return;
            }
            let p = &mut sim.players[v];
            let damage = amount.saturating_sub(2).min(p.hp);
            let hp_before = p.hp;
            p.hp -= damage;
            let hp_after = p.hp;
            let taken = sim.character_event(
                v,
                CharacterEvent::DamageTaken {
                    attacker,
                    cause: cause.clone(),
                    skill: skill.clone(),
                    amount,
                    damage,
                    hp_before,
                    hp_after,
                    zone: zone.clone(),
                    taken_at: v_clock,
                },
            );
            if hp_after == 0 {
                sim.players[v].dead = true;
                let bounty_xp = u64::from(sim.players[v].level)
                    * sim.content.progression.pvp_xp_per_victim_level;
                sim.character_event(
                    v,
                    CharacterEvent::CharacterDied {
                        killer: Some(attacker),
                        cause: taken.clone(),
                        zone: zone.clone(),
                        bounty_xp,
                        died_at: v_clock,
                    },
                );
                sim.caused_by(taken, |sim| {
                    sim.gain_xp(
                        i,
                        bounty_xp,
                        format!("pvp-kill:{}", sim.players[v].id),
                        v_clock,
                    );
                });
            }
        });
    }

    fn respawn(&mut self, i: usize, now: DateTime<Utc>) {
        let p = &mut self.players[i];
        p.dead = false;
        p.hp = p.max_hp;
        p.mana = p.max_mana;
        let from_zone =
            std::mem::replace(&mut p.zone, self.content.progression.starting_zone.clone());
        let event = CharacterEvent::CharacterRespawned {
            from_zone,
            zone: p.zone.clone(),
            hp: p.hp,
            mana: p.mana,
            respawned_at: now,
        };
        self.character_event(i, event);
    }

    fn travel(&mut self, i: usize, now: DateTime<Utc>) {
        let zones: Vec<&String> = self.content.zones.keys().collect();
        let to = (*self.pick(&zones)).clone();
        let from = std::mem::replace(&mut self.players[i].zone, to.clone());
        self.character_event(
            i,
            CharacterEvent::ZoneEntered {
                from_zone: from,
                to_zone: to,
                entered_at: now,
            },
        );
    }

    fn consumables(&self) -> Vec<String> {
        self.content
            .items
            .iter()
            .filter(|(_, d)| d.effect.is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn use_item(&mut self, i: usize, now: DateTime<Utc>) {
        let have: Vec<String> = self
            .consumables()
            .into_iter()
            .filter(|c| self.players[i].bag.contains_key(c))
            .collect();
        let Some(item) = have.first().cloned() else {
            let consumables = self.consumables();
            let item = self.pick(&consumables).clone();
            return self.grant_item(i, item, now);
        };
        let after = self.take(i, &item, 1).quantity_after;
        let p = &mut self.players[i];
        let (hp_before, mana_before) = (p.hp, p.mana);
        p.hp = p.max_hp;
        p.mana = p.max_mana;
        let event = CharacterEvent::ItemUsed {
            item,
            quantity_after: after,
            hp_before,
            hp_after: p.hp,
            mana_before,
            mana_after: p.mana,
            used_at: now,
        };
        self.character_event(i, event);
    }

    fn grant_item(&mut self, i: usize, item: String, now: DateTime<Utc>) {
        let change = self.put(i, item, 2);
        self.character_event(
            i,
            CharacterEvent::ItemsAcquired {
                items: vec![change],
                source: "grant:daily-reward".into(),
                acquired_at: now,
            },
        );
    }

    fn craft(&mut self, i: usize, now: DateTime<Utc>) {
        let recipes: Vec<&String> = self.content.recipes.keys().collect();
        let recipe = (*self.pick(&recipes)).clone();
        let def = &self.content.recipes[&recipe];
        if let Some(missing) = def
            .ingredients
            .iter()
            .find(|a| self.players[i].bag.get(&a.item).copied().unwrap_or(0) < a.quantity)
        {
            let (item, quantity) = (missing.item.clone(), missing.quantity);
            let change = self.put(i, item, quantity);
            self.character_event(
                i,
                CharacterEvent::ItemsAcquired {
                    items: vec![change],
                    source: "grant:quest-reward".into(),
                    acquired_at: now,
                },
            );
            return;
        }
        let consumed = def
            .ingredients
            .iter()
            .map(|a| self.take(i, &a.item, a.quantity))
            .collect();
        let produced = self.put(i, def.produces.item.clone(), def.produces.quantity);
        self.character_event(
            i,
            CharacterEvent::ItemCrafted {
                recipe,
                consumed,
                produced,
                crafted_at: now,
            },
        );
    }

    fn equip(&mut self, i: usize, now: DateTime<Utc>) {
        let wearable: Vec<(String, Slot)> = self
            .content
            .items
            .iter()
            .filter_map(|(id, d)| d.equip.as_ref().map(|e| (id.clone(), e.slot)))
            .filter(|(id, _)| self.players[i].bag.contains_key(id))
            .collect();
        let p = &self.players[i];
        let (max_hp, max_mana, hp, mana) = (p.max_hp, p.max_mana, p.hp, p.mana);
        if let Some((item, slot)) = wearable.first().cloned() {
            let after = self.take(i, &item, 1).quantity_after;
            let replaced = self.players[i]
                .equipped
                .insert(slot, item.clone())
                .map(|old| self.put(i, old, 1));
            self.character_event(
                i,
                CharacterEvent::ItemEquipped {
                    item,
                    slot,
                    quantity_after: after,
                    replaced,
                    max_hp,
                    max_mana,
                    hp,
                    mana,
                    equipped_at: now,
                },
            );
        } else if let Some((slot, item)) = self.players[i].equipped.pop_first() {
            let after = self.put(i, item.clone(), 1).quantity_after;
            self.character_event(
                i,
                CharacterEvent::ItemUnequipped {
                    item,
                    slot,
                    quantity_after: after,
                    max_hp,
                    max_mana,
                    hp,
                    mana,
                    unequipped_at: now,
                },
            );
        } else {
            let items: Vec<&String> = self
                .content
                .items
                .iter()
                .filter(|(_, d)| d.equip.is_some())
                .map(|(id, _)| id)
                .collect();
            let item = (*self.pick(&items)).clone();
            self.grant_item(i, item, now);
        }
    }

    fn destroy(&mut self, i: usize, now: DateTime<Utc>) {
        let Some((item, have)) = self.players[i]
            .bag
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), *v))
        else {
            return self.travel(i, now);
        };
        let quantity = self.rng.random_range(1..=have);
        let after = self.take(i, &item, quantity).quantity_after;
        self.character_event(
            i,
            CharacterEvent::ItemDestroyed {
                item,
                quantity,
                quantity_after: after,
                destroyed_at: now,
            },
        );
    }

    fn spend(&mut self, i: usize, now: DateTime<Utc>) {
        let gold = self.players[i].gold;
        if gold == 0 {
            return self.grant(i, now);
        }
        let amount = self.rng.random_range(1..=gold);
        let sinks = [
            "vendor:health_potion",
            "repair",
            "fee:travel",
            "vendor:mana_potion",
        ];
        let sink = *self.pick(&sinks);
        let p = &mut self.players[i];
        p.gold -= amount;
        let event = WalletEvent::CurrencySpent {
            currency: Currency::Gold,
            amount,
            balance_after: p.gold,
            sink: sink.to_owned(),
            reference: format!("order-{}", self.rows.len()),
            spent_at: now,
        };
        self.wallet_event(i, event);
    }

    fn grant(&mut self, i: usize, now: DateTime<Utc>) {
        let sources = ["quest:wolves", "daily-login", "quest:goblins"];
        let source = *self.pick(&sources);
        let amount = self.rng.random_range(5..100);
        let reference = format!("grant-{}", self.rows.len());
        self.credit(i, amount, source, &reference, now);
    }
}

/// The stored version of an event: what the command service writes.
fn cqrs_version<E: GameEvent>(event: &E) -> String {
    E::current_version(event.type_name())
        .unwrap_or(1)
        .to_string()
}

fn metadata(at: DateTime<Utc>, owner: AccountId, causation: Option<&str>) -> serde_json::Value {
    let mut m = serde_json::json!({
        "occurred_at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "account_id": owner.to_string(),
        "correlation_id": format!("req-{}", at.timestamp_millis()),
    });
    if let Some(cause) = causation {
        m["causation_id"] = cause.into();
    }
    m
}

/// Bulk-loads the rows into the events table, 50,000 per transaction.
async fn load(pool: &PgPool, rows: &[Row]) -> anyhow::Result<()> {
    for chunk in rows.chunks(50_000) {
        let mut csv = Vec::with_capacity(chunk.len() * 600);
        for r in chunk {
            use std::io::Write;
            write!(
                csv,
                "{},{},{},{},{},",
                r.aggregate_type, r.aggregate_id, r.sequence, r.event_type, r.event_version
            )?;
            quoted(&mut csv, &r.payload.to_string());
            csv.push(b',');
            quoted(&mut csv, &r.metadata.to_string());
            csv.push(b'\n');
        }
        let mut conn = pool.acquire().await?;
        let mut copy = conn
            .copy_in_raw(
                "COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
                 payload, metadata) FROM STDIN WITH (FORMAT csv)",
            )
            .await?;
        copy.send(csv).await?;
        copy.finish().await?;
    }
    Ok(())
}

fn quoted(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for b in text.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

// ------------------------------------------------------------------------------------------------
// Kafka.

mod kafka {
    use super::*;
    use chaos_platform::kafka::KafkaConfig;
    use chaos_projectors::runner::{Batching, KafkaRunner};
    use chaos_projectors::warehouse::Checksum;
    use chaos_schemas::{AvroCodec, PublishedEvent};
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

    fn config(prefix: &str) -> KafkaConfig {
        KafkaConfig {
            bootstrap_servers: std::env::var("KAFKA_BOOTSTRAP_SERVERS")
                .unwrap_or_else(|_| "127.0.0.1:9092".into()),
            security_protocol: "plaintext".into(),
            sasl_mechanism: String::new(),
            sasl_username: String::new(),
            sasl_password: Default::default(),
            ssl_ca_location: String::new(),
            topic_prefix: prefix.into(),
            partitions: 6,
            replication_factor: 1,
            options: Default::default(),
        }
    }

    fn registry_url() -> String {
        std::env::var("SCHEMA_REGISTRY_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:8081/apis/ccompat/v7".into())
    }

    /// Produces events as the relay does: Avro through the registry, key = aggregate id,
    /// the relay's headers, idempotent producer with acks=all.
    struct Relay {
        producer: FutureProducer,
        codec: AvroCodec,
        config: KafkaConfig,
    }

    impl Relay {
        fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
            let mut c = config.client_config();
            c.set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "5")
                .set("compression.type", "lz4")
                .set("queue.buffering.max.messages", "1000000");
            Ok(Self {
                producer: c.create()?,
                codec: AvroCodec::new(&registry_url())?,
                config: config.clone(),
            })
        }

        async fn publish(&self, events: &[PublishedEvent]) -> anyhow::Result<()> {
            let mut pending = Vec::with_capacity(events.len());
            for event in events {
                let topic = self.config.topic(&event.topic());
                let payload = self.codec.encode(&topic, event).await?;
                let mut headers = OwnedHeaders::new_with_capacity(8);
                for (key, value) in event.headers() {
                    headers = headers.insert(Header {
                        key,
                        value: Some(value.as_bytes()),
                    });
                }
                let record = FutureRecord::to(&topic)
                    .key(event.key())
                    .payload(&payload)
                    .headers(headers);
                pending.push(
                    self.producer
                        .send_result(record)
                        .map_err(|(e, _)| anyhow::anyhow!("producing: {e}"))?,
                );
            }
            for delivery in pending {
                delivery
                    .await
                    .context("delivery cancelled")?
                    .map_err(|(e, _)| anyhow::anyhow!("delivery failed: {e}"))?;
            }
            Ok(())
        }
    }

    pub(super) async fn run(
        o: &Options,
        dir: &std::path::Path,
        pool: &PgPool,
        log: Arc<dyn EventLog>,
        total: u64,
        from_store: &Checksum,
    ) -> anyhow::Result<()> {
        let prefix = format!("b{}.", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let config = config(&prefix);
        let topics: Vec<String> = chaos_schemas::AGGREGATES
            .iter()
            .map(|a| config.topic(&chaos_schemas::topic_for(a.name)))
            .collect();
        let dead_letters = config.topic(&chaos_schemas::dead_letter_topic("warehouse"));
        let mut all = topics.clone();
        all.push(dead_letters.clone());
        chaos_platform::kafka::ensure_topics(&config, &all, &[("retention.ms", "-1")]).await?;

        // Publish every stored event in the global order, as the relay reads it.
        let relay = Relay::new(&config)?;
        let t = Instant::now();
        let mut position = Position::START;
        let mut published = 0u64;
        loop {
            let stored = log.read_after(position, 20_000).await?;
            let Some(last) = stored.last() else { break };
            position = last.position;
            let events: Vec<PublishedEvent> = stored
                .iter()
                .map(chaos_eventstore::publish::to_published)
                .collect::<Result<_, _>>()?;
            relay.publish(&events).await?;
            published += events.len() as u64;
        }
        relay.producer.flush(Duration::from_secs(30))?;
        println!(
            "Kafka: published {published} events as the relay does in {:.1}s",
            t.elapsed().as_secs_f64()
        );

        // The rebuild from Kafka.
        let warehouse = Warehouse::open(dir.join("from-kafka.duckdb")).await?;
        let registry = Default::default();
        let metrics = ProjectorMetrics::new(&registry);
        let runner = KafkaRunner::new(
            "warehouse",
            &config,
            &format!("{prefix}warehouse"),
            topics.clone(),
            dead_letters,
            AvroCodec::new(&registry_url())?,
            warehouse.clone(),
            metrics.clone(),
            Batching::new(o.kafka_batch, Duration::from_millis(50)),
        )?;
        // tokio-util is not a dependency of this crate: the token's type is inferred.
        let stop = Default::default();
        let t = Instant::now();
        let running = tokio::spawn({
            let stop = Clone::clone(&stop);
            async move { runner.run(stop).await }
        });
        let conn = warehouse.connect().await?;
        let count = move || -> anyhow::Result<u64> {
            let n: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        while count()? < total {
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(1800),
                "the Kafka rebuild stalled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = t.elapsed();
        println!(
            "rebuild from Kafka (KafkaRunner, batches up to {}): {total} events in {:.2}s = {:.0} events/s",
            o.kafka_batch,
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64()
        );
        let from_kafka = warehouse.checksum().await?;
        anyhow::ensure!(
            from_kafka == *from_store,
            "the warehouses differ:\n store: {from_store:?}\n kafka: {from_kafka:?}"
        );
        println!(
            "  checksum equal to the store-fed warehouse's: {}",
            from_kafka.digest
        );

        // Steady state: produce at a fixed rate, sample the lag.
        if o.steady_secs > 0 {
            steady(o, pool, &relay, &warehouse, &metrics, total).await?;
        }
        stop.cancel();
        let shutdown = Instant::now();
        running.await??;
        warehouse.close().await?;
        println!(
            "  runner stopped and warehouse closed {:.0} ms after the shutdown request",
            shutdown.elapsed().as_secs_f64() * 1e3
        );
        chaos_platform::kafka::delete_topics(&config.client_config(), &all).await?;
        Ok(())
    }

    /// Produces `steady_rate` events/s (new events appended to the simulation's characters) for
    /// `steady_secs`, and samples every 100 ms how many produced events are not yet in the
    /// warehouse and how old the oldest of them is.
    async fn steady(
        o: &Options,
        pool: &PgPool,
        relay: &Relay,
        warehouse: &Warehouse,
        metrics: &ProjectorMetrics,
        before: u64,
    ) -> anyhow::Result<()> {
        let _ = (pool, metrics);
        let content = Content::builtin()?;
        let rows = simulate(&content, o.steady_rate * o.steady_secs, 7);
        // Fresh ids: a second simulation reuses the character ids, so move it to other ones.
        let events: Vec<PublishedEvent> = rows
            .iter()
            .enumerate()
            .map(|(n, r)| steady_event(r, n as i64 + 1_000_000_000))
            .collect::<anyhow::Result<_>>()?;
        let produced_at: Arc<std::sync::Mutex<Vec<(u64, Instant)>>> = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let conn = warehouse.connect().await?;
            let produced_at = produced_at.clone();
            let done = done.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(u64, Duration)>> {
                let mut samples = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let n: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
                    let applied = u64::try_from(n).unwrap_or(0) - before;
                    let now = Instant::now();
                    let marks = produced_at.lock().unwrap().clone();
                    let produced = marks.last().map_or(0, |m| m.0);
                    let behind = produced.saturating_sub(applied);
                    // The oldest event not yet applied was produced in the first chunk past it.
                    let age = marks
                        .iter()
                        .find(|(upto, _)| *upto > applied)
                        .map_or(Duration::ZERO, |(_, at)| now - *at);
                    samples.push((behind, age));
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(samples)
            })
        };
        let t = Instant::now();
        let chunk = (o.steady_rate / 20).max(1) as usize;
        for (k, part) in events.chunks(chunk).enumerate() {
            let due = t + Duration::from_millis(50 * k as u64);
            tokio::time::sleep_until(due.into()).await;
            relay.publish(part).await?;
            let mut marks = produced_at.lock().unwrap();
            let upto = marks.last().map_or(0, |m| m.0) + part.len() as u64;
            marks.push((upto, Instant::now()));
        }
        let produced = events.len() as u64;
        let conn = warehouse.connect().await?;
        let caught = Instant::now();
        loop {
            let n: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
            if u64::try_from(n).unwrap_or(0) >= before + produced {
                break;
            }
            anyhow::ensure!(
                caught.elapsed() < Duration::from_secs(120),
                "never caught up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let after_stop = caught.elapsed();
        done.store(true, Ordering::Relaxed);
        let mut samples = sampler.await??;
        let seconds = t.elapsed().as_secs_f64();
        samples.sort_by_key(|s| s.0);
        let q = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize].0;
        let events_p50 = q(0.5);
        let events_p99 = q(0.99);
        let events_max = samples.last().map_or(0, |s| s.0);
        samples.sort_by_key(|s| s.1);
        let qs = |p: f64| {
            samples[((samples.len() - 1) as f64 * p) as usize]
                .1
                .as_secs_f64()
                * 1e3
        };
        println!(
            "steady state from Kafka: {produced} events at {:.0}/s over {seconds:.1}s; lag in events \
             p50 {events_p50} / p99 {events_p99} / max {events_max}; age of the oldest event not yet \
             in the warehouse p50 {:.0} / p99 {:.0} / max {:.0} ms; caught up {:.0} ms after the last \
             produce",
            produced as f64 / seconds,
            qs(0.5),
            qs(0.99),
            qs(1.0),
            after_stop.as_secs_f64() * 1e3
        );
        Ok(())
    }

    /// A simulated row as a published event, on a character and wallet of its own (the steady
    /// phase must not collide with the history's streams), at global position `position`.
    fn steady_event(row: &Row, position: i64) -> anyhow::Result<PublishedEvent> {
        let id = format!("s-{}", row.aggregate_id);
        let stored = chaos_eventstore::StoredEvent {
            position: Position {
                tx_id: 0,
                global_position: position,
            },
            aggregate_type: row.aggregate_type.to_owned(),
            aggregate_id: id,
            sequence: row.sequence as i64,
            event_type: row.event_type.to_owned(),
            event_version: row.event_version.clone(),
            payload: chaos_eventstore::JsonText::of(&row.payload)?,
            metadata: chaos_eventstore::JsonText::of(&row.metadata)?,
        };
        let mut event = chaos_eventstore::publish::to_published(&stored)?;
        // Now, so the lag's age is measured from when it was produced.
        event.envelope.occurred_at = Utc::now();
        Ok(event)
    }
}
