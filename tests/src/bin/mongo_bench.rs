//! Throughput of the MongoDB projection: the document views (profile, timeline) applied to a
//! MongoDB-wire server in the projector's batches, in events per second. Not a test: it prints
//! figures.
//!
//! ```sh
//! eval "$(deploy/local/services.sh env)"
//! cargo run --release -p chaos-tests --bin mongo_bench -- --events 200000
//! ```
//!
//! A synthetic history (characters created, casting, gaining experience and levels, travelling;
//! their wallets opened, granted and spent from), interleaved across characters as a Kafka
//! partition interleaves them, is applied in batches of `--batch` through the same
//! `ViewProjection` the projector runs, into a throwaway database dropped at the end; then the
//! whole history again (a redelivery: every event a duplicate). Kafka and the Avro decoding
//! are not in the figure: it is the projection and the store.
//!
//! Locally the server is SecantusDB, a MongoDB-wire *test* server written in Python, much
//! slower than MongoDB: its figure is a floor, not what production does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_domain::{AccountId, CharacterEvent, CharacterId, CharacterName, Currency, WalletEvent};
use chaos_readmodel::{Keys, MongoStore, Verdict, ViewProjection};
use chaos_schemas::{AnyEvent, EventEnvelope, PublishedEvent};
use chrono::{TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Debug)]
struct Args {
    url: String,
    events: usize,
    characters: usize,
    batch: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut out = Args {
        url: chaos_tests::mongo::mongodb_url(),
        events: 200_000,
        characters: 2_000,
        batch: 2_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => out.url = value()?,
            "--events" => out.events = value()?.parse()?,
            "--characters" => out.characters = value()?.parse()?,
            "--batch" => out.batch = value()?.parse()?,
            "--help" | "-h" => {
                println!(
                    "mongo_bench [--url URL] [--events N (200000)] [--characters N (2000)] \
                     [--batch N (2000)]"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other} (see --help)"),
        }
    }
    anyhow::ensure!(out.events > 0 && out.characters > 0 && out.batch > 0);
    Ok(out)
}

/// One character's and its wallet's streams as they are generated.
struct Hero {
    id: String,
    owner: AccountId,
    character: u64,
    wallet: u64,
    xp: u64,
    level: u8,
    gold: u64,
    zone: &'static str,
}

/// The synthetic history: `events` events over `characters` characters, in a random
/// interleaving that keeps each stream in order.
fn history(events: usize, characters: usize) -> Vec<PublishedEvent> {
    let mut rng = StdRng::seed_from_u64(42);
    let mut heroes: Vec<Hero> = (0..characters)
        .map(|i| Hero {
            id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128)
                .to_string(),
            owner: AccountId::from_uuid(uuid::Uuid::from_u128(i as u128 + 1)),
            character: 0,
            wallet: 0,
            xp: 0,
            level: 1,
            gold: 0,
            zone: "whispering_woods",
        })
        .collect();
    let start = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
    let mut out = Vec::with_capacity(events);
    while out.len() < events {
        let h = &mut heroes[rng.random_range(0..characters)];
        let at = start + Duration::from_millis(out.len() as u64 * 3);
        let position = out.len() as i64 + 1;
        let event: AnyEvent = if h.character == 0 {
            CharacterEvent::CharacterCreated {
                owner: h.owner,
                name: CharacterName::parse(&format!("Bench{}", out.len())).expect("a name"),
                class: "warrior".into(),
                level: 1,
                max_hp: 100,
                max_mana: 50,
                zone: h.zone.into(),
                skills: vec!["strike".into()],
                created_at: at,
            }
            .into()
        } else if h.wallet == 0 {
            WalletEvent::WalletOpened {
                owner: h.owner,
                character: CharacterId::parse(&h.id).expect("an id"),
                opened_at: at,
            }
            .into()
        } else {
            match rng.random_range(0..20) {
                0 if h.gold >= 5 => {
                    h.gold -= 5;
                    WalletEvent::CurrencySpent {
                        currency: Currency::Gold,
                        amount: 5,
                        balance_after: h.gold,
                        sink: "vendor:potion".into(),
                        reference: format!("p{}", out.len()),
                        spent_at: at,
                    }
                    .into()
                }
                1 => {
                    h.gold += 10;
                    WalletEvent::CurrencyGranted {
                        currency: Currency::Gold,
                        amount: 10,
                        balance_after: h.gold,
                        source: "level-up".into(),
                        reference: format!("l{}", out.len()),
                        granted_at: at,
                    }
                    .into()
                }
                2 => {
                    let to = if h.zone == "whispering_woods" {
                        "starter_meadow"
                    } else {
                        "whispering_woods"
                    };
                    let from = std::mem::replace(&mut h.zone, to);
                    CharacterEvent::ZoneEntered {
                        from_zone: from.into(),
                        to_zone: to.into(),
                        entered_at: at,
                    }
                    .into()
                }
                3 if h.xp >= u64::from(h.level) * 10 => {
                    h.level += 1;
                    CharacterEvent::LeveledUp {
                        level: h.level,
                        max_hp: 100 + u32::from(h.level) * 8,
                        max_mana: 50 + u32::from(h.level) * 6,
                        skills_unlocked: vec![],
                        gold_reward: 10,
                        leveled_at: at,
                    }
                    .into()
                }
                4..=10 => {
                    h.xp += 1;
                    CharacterEvent::ExperienceGained {
                        amount: 1,
                        total_xp: h.xp,
                        source: "skill:strike".into(),
                        gained_at: at,
                    }
                    .into()
                }
                _ => CharacterEvent::SkillCast {
                    skill: "strike".into(),
                    target: Some("wolf".into()),
                    hit: None,
                    zone: h.zone.into(),
                    mana_before: 50,
                    mana_cost: 0,
                    mana_after: 50,
                    damage: rng.random_range(3..7),
                    cooldown_until: at,
                    cast_at: at,
                }
                .into(),
            }
        };
        let sequence = if let AnyEvent::Wallet(_) = &event {
            h.wallet += 1;
            h.wallet
        } else {
            h.character += 1;
            h.character
        };
        out.push(PublishedEvent {
            envelope: EventEnvelope {
                event_id: uuid::Uuid::new_v4(),
                event_type: event.event_type().into(),
                aggregate_type: event.aggregate_type().into(),
                aggregate_id: h.id.clone(),
                sequence,
                global_position: position,
                occurred_at: at,
                correlation_id: None,
                causation_id: None,
                traceparent: None,
            },
            event,
        });
    }
    out
}

/// Applies `events` in batches; returns the elapsed time and the verdicts' counts.
async fn run(
    projection: &ViewProjection,
    events: &[PublishedEvent],
    batch: usize,
) -> anyhow::Result<(Duration, usize, usize)> {
    let started = Instant::now();
    let (mut applied, mut duplicates) = (0, 0);
    for chunk in events.chunks(batch) {
        for verdict in projection.apply_batch(chunk).await? {
            match verdict {
                Verdict::Applied => applied += 1,
                Verdict::Duplicate => duplicates += 1,
                other => anyhow::bail!("unexpected verdict {other:?}"),
            }
        }
    }
    Ok((started.elapsed(), applied, duplicates))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let database = format!(
        "chaos_bench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let store = MongoStore::connect(&args.url, &database)
        .await
        .with_context(|| format!("connecting to {}", args.url))?;
    let events = history(args.events, args.characters);
    let projection = ViewProjection::new(
        Arc::new(store.clone()),
        Keys::new("bench:", "v1"),
        chaos_readmodel::views::documents(),
    );
    println!(
        "MongoDB projection (profile + timeline) on {} (database {database}): {} events over {} \
         characters and their wallets, batches of {}",
        args.url,
        events.len(),
        args.characters,
        args.batch
    );
    let outcome = async {
        let (elapsed, applied, _) = run(&projection, &events, args.batch).await?;
        anyhow::ensure!(
            applied == events.len(),
            "{applied} of {} applied",
            events.len()
        );
        println!(
            "applied:    {:>9} events in {:>7.2} s = {:>8.0} events/s",
            applied,
            elapsed.as_secs_f64(),
            applied as f64 / elapsed.as_secs_f64()
        );
        let (elapsed, _, duplicates) = run(&projection, &events, args.batch).await?;
        anyhow::ensure!(duplicates == events.len(), "a redelivery applied something");
        println!(
            "redelivery: {:>9} events in {:>7.2} s = {:>8.0} events/s (all duplicates)",
            duplicates,
            elapsed.as_secs_f64(),
            duplicates as f64 / elapsed.as_secs_f64()
        );
        Ok(())
    }
    .await;
    store.database().drop().await?;
    outcome
}
