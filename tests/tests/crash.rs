//! Crash tests: `kill -9` the relay, the projector and the process managers in the middle of a
//! stream of commands (casts, PvP strikes, deaths and respawns, travel, spends), and a relay
//! failover. Afterwards nothing may be missing, nothing applied twice (no level-up grants its
//! gold twice, no PvP hit damages twice, no kill is rewarded twice, none is lost), and every
//! sheet and wallet must equal the event store folded.
//!
//! Needs `deploy/local/services.sh up` and the binaries (`cargo build --workspace --bins`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaos_tests::check::{every_topic_matches_store, kafka_matches_store, sheets_match_store};
use chaos_tests::kafka::TopicReader;
use chaos_tests::process::metric_value;
use chaos_tests::stack::READY_TIMEOUT;
use chaos_tests::store::{assert_contiguous, by_aggregate, rewards_owed};
use chaos_tests::wait::wait_for_count;
use chaos_tests::{wait_until, CommandAnswer, CommandApi, Stack, StackOptions};

/// Accepted commands the stream must reach.
const COMMANDS: usize = 2_400;
const CLIENTS: usize = 6;
const CHARACTERS_PER_CLIENT: usize = 4;
const CATCH_UP: Duration = Duration::from_secs(180);

#[derive(Debug, Clone)]
struct Hero {
    token: String,
    id: String,
    class: &'static str,
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Outcomes {
    accepted: Vec<CommandAnswer>,
    /// Status (and problem type) -> count, for everything not accepted.
    refused: BTreeMap<String, usize>,
}

/// One client: cycles over its characters (plus one character every client shares, to make
/// writers race on one aggregate) with strikes, fireballs, PvP strikes at other clients'
/// characters (the combat process manager's work), respawns of its dead, trips to a peaceful
/// zone and spends of the gold their level-ups earned.
async fn client(
    api: CommandApi,
    mine: Vec<Hero>,
    shared: Hero,
    everyone: Vec<String>,
    accepted: Arc<AtomicUsize>,
    outcomes: Arc<Mutex<Outcomes>>,
) {
    let mut in_meadow: BTreeSet<String> = BTreeSet::new();
    let mut i = 0usize;
    while accepted.load(Ordering::Relaxed) < COMMANDS {
        i += 1;
        let hero = if i.is_multiple_of(5) {
            &shared
        } else {
            &mine[i % mine.len()]
        };
        let reply = if in_meadow.contains(&hero.id) {
            api.travel(&hero.token, &hero.id, "whispering_woods").await
        } else if i.is_multiple_of(3) && hero.id != shared.id {
            let target = &everyone[(i / 3) % everyone.len()];
            let strike = serde_json::json!({"skill": "strike", "target": {"character": target}});
            api.post(
                &format!("/v1/characters/{}/cast-skill", hero.id),
                Some(&hero.token),
                &strike,
                &[],
            )
            .await
        } else if i.is_multiple_of(13) && hero.id != shared.id {
            let reference = format!("spend-{}-{i}", &hero.id[..8]);
            api.spend(&hero.token, &hero.id, 1, &reference).await
        } else if i.is_multiple_of(17) && hero.id != shared.id {
            api.travel(&hero.token, &hero.id, "starter_meadow").await
        } else if hero.class == "mage" && i.is_multiple_of(3) {
            api.cast_skill(&hero.token, &hero.id, "fireball", &[]).await
        } else {
            api.cast_skill(&hero.token, &hero.id, "strike", &[]).await
        };
        let dead = {
            let mut o = outcomes.lock().unwrap();
            match reply {
                Ok(r) if r.status.is_success() => {
                    let answer = r.answer().unwrap();
                    if answer.events == ["ZoneEntered"] && !in_meadow.remove(&hero.id) {
                        in_meadow.insert(hero.id.clone());
                    }
                    o.accepted.push(answer);
                    accepted.fetch_add(1, Ordering::Relaxed);
                    false
                }
                Ok(r) => {
                    *o.refused
                        .entry(format!(
                            "{} {}",
                            r.status.as_u16(),
                            r.problem_type().unwrap_or("")
                        ))
                        .or_default() += 1;
                    r.problem_type() == Some("/problems/character-dead")
                }
                Err(e) => {
                    *o.refused.entry(format!("transport: {e}")).or_default() += 1;
                    false
                }
            }
        };
        if dead {
            // Killed by another client: back at the woods' respawn point, the meadow.
            let r = api
                .post(
                    &format!("/v1/characters/{}/respawn", hero.id),
                    Some(&hero.token),
                    &serde_json::json!({}),
                    &[],
                )
                .await;
            let mut o = outcomes.lock().unwrap();
            match r {
                Ok(r) if r.status.is_success() => {
                    in_meadow.insert(hero.id.clone());
                    o.accepted.push(r.answer().unwrap());
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => {
                    *o.refused
                        .entry(format!("{} respawn", r.status.as_u16()))
                        .or_default() += 1;
                }
                Err(e) => *o.refused.entry(format!("transport: {e}")).or_default() += 1,
            }
        }
    }
}

async fn wait_for_accepted(accepted: &AtomicUsize, n: usize) {
    wait_for_count(accepted, n, Duration::from_secs(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_relay_projector_and_process_managers_mid_stream_loses_nothing_and_applies_nothing_twice(
) {
    let started = std::time::Instant::now();
    let phase = |what: &str| eprintln!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());
    let mut stack = Stack::start(StackOptions::default()).await.unwrap();
    let api = stack.commands();
    let classes = ["warrior", "mage", "ranger", "cleric"];
    let mut heroes: Vec<Vec<Hero>> = Vec::new();
    for c in 0..CLIENTS {
        let player = api.player(&format!("player{c}")).await.unwrap();
        let mut mine = Vec::new();
        for k in 0..CHARACTERS_PER_CLIENT {
            let class = classes[(c + k) % classes.len()];
            let answer = api
                .create_character(&player.token, &format!("Hero{c}x{k}"), class, &[])
                .await
                .unwrap()
                .answer()
                .unwrap();
            mine.push(Hero {
                token: player.token.clone(),
                id: answer.aggregate_id,
                class,
            });
        }
        heroes.push(mine);
    }
    let shared = heroes[0][0].clone();
    // The pipeline is alive before the chaos starts, and the rewards process manager has opened
    // every character's wallet: it does so asynchronously, and a spend that beat it would be a
    // fair 404 `wallet-not-found`, not something the chaos caused.
    stack
        .queries()
        .wait_for_version(&shared.id, 1, Duration::from_secs(90))
        .await
        .unwrap();
    for hero in heroes.iter().flatten() {
        stack
            .queries()
            .wait_for_wallet(&hero.id, 1, Duration::from_secs(90))
            .await
            .unwrap();
    }

    let accepted = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let everyone: Vec<String> = heroes.iter().flatten().map(|h| h.id.clone()).collect();
    let clients: Vec<_> = heroes
        .iter()
        .map(|mine| {
            tokio::spawn(client(
                api.clone(),
                mine.clone(),
                shared.clone(),
                everyone.clone(),
                accepted.clone(),
                outcomes.clone(),
            ))
        })
        .collect();

    // The chaos, paced by the stream itself.
    phase("stream started");
    wait_for_accepted(&accepted, 300).await;
    phase("kill -9 relay");
    stack.relay(0).kill9();
    wait_for_accepted(&accepted, 600).await;
    stack.relay(0).restart(READY_TIMEOUT).await.unwrap();
    phase("relay restarted");
    wait_for_accepted(&accepted, 760).await;
    phase("kill -9 process managers");
    stack.process_managers().kill9();
    wait_for_accepted(&accepted, 860).await;
    stack
        .process_managers()
        .restart(READY_TIMEOUT)
        .await
        .unwrap();
    phase("process managers restarted");
    wait_for_accepted(&accepted, 900).await;
    phase("kill -9 projector");
    stack.projector().kill9();
    wait_for_accepted(&accepted, 1200).await;
    stack.projector().restart(READY_TIMEOUT).await.unwrap();
    phase("projector restarted");
    // Both at once, while they are busy catching up.
    wait_for_accepted(&accepted, 1400).await;
    phase("kill -9 relay and projector");
    stack.relay(0).kill9();
    stack.projector().kill9();
    stack.relay(0).restart(READY_TIMEOUT).await.unwrap();
    stack.projector().restart(READY_TIMEOUT).await.unwrap();
    // And a crash while the stream is in full flow again.
    phase("both restarted");
    wait_for_accepted(&accepted, 1900).await;
    phase("kill -9 projector, relay and process managers");
    stack.projector().kill9();
    stack.relay(0).kill9();
    stack.process_managers().kill9();
    stack.projector().restart(READY_TIMEOUT).await.unwrap();
    stack.relay(0).restart(READY_TIMEOUT).await.unwrap();
    stack
        .process_managers()
        .restart(READY_TIMEOUT)
        .await
        .unwrap();
    phase("all restarted");
    for c in clients {
        c.await.unwrap();
    }
    phase("stream finished");
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    eprintln!(
        "{} commands accepted, refused: {:?}",
        outcomes.accepted.len(),
        outcomes.refused
    );
    assert!(outcomes.accepted.len() >= COMMANDS);
    // Only rules (fireball cooldowns, mana, targets dead or elsewhere, the dead acting) and races
    // on the shared character may refuse.
    for kind in outcomes.refused.keys() {
        assert!(
            kind.starts_with("422 ") || kind.starts_with("409 "),
            "unexpected refusal {kind}: {:?}",
            outcomes.refused
        );
    }

    // The store: gap-free per aggregate, and every accepted answer is in it.
    let events = everything_granted(&stack).await;
    let per = by_aggregate(&events, "character");
    let wallets = by_aggregate(&events, "wallet");
    assert_eq!(per.len(), CLIENTS * CHARACTERS_PER_CLIENT);
    for list in per.values().chain(wallets.values()) {
        assert_contiguous(list).unwrap();
    }
    for answer in &outcomes.accepted {
        let have = per
            .get(&answer.aggregate_id)
            .or_else(|| wallets.get(&answer.aggregate_id))
            .map_or(0, |l| l.len() as u64);
        let in_wallet = answer.events == ["CurrencySpent"];
        let have = if in_wallet {
            wallets[&answer.aggregate_id].len() as u64
        } else {
            have
        };
        assert!(
            answer.sequence <= have,
            "{answer:?} beyond the stored {have}"
        );
    }
    eprintln!(
        "{} events in the store ({} wallet events)",
        events.len(),
        wallets.values().map(Vec::len).sum::<usize>()
    );

    // Every sheet reaches its final version and equals the store folded, applied once each.
    let sheets = sheets_match_store(&stack.queries(), &events, CATCH_UP)
        .await
        .unwrap();
    assert_eq!(sheets, per.len());
    phase("every sheet caught up and equals the store folded");
    // Every (aggregate, sequence) reached Kafka, on both topics: duplicates allowed, gaps not.
    let reports = every_topic_matches_store(
        &stack.services.kafka_bootstrap,
        &stack.services.schema_registry_url,
        &stack.isolation.topic_prefix,
        &events,
        CATCH_UP,
    )
    .await
    .unwrap();
    phase("kafka checked");
    for (aggregate, report) in &reports {
        eprintln!(
            "kafka {aggregate}: {} messages ({} re-sent duplicates)",
            report.records.len(),
            report.duplicates
        );
    }
    // Nothing was poison or refused: the dead-letter topics are empty.
    for topic in [
        stack.isolation.dead_letter_topic(),
        format!(
            "{}chaos.deadletter.pm-rewards",
            stack.isolation.topic_prefix
        ),
        format!("{}chaos.deadletter.pm-combat", stack.isolation.topic_prefix),
    ] {
        let mut dead = TopicReader::new(
            &stack.services.kafka_bootstrap,
            &stack.services.schema_registry_url,
            &topic,
        )
        .await
        .unwrap();
        assert_eq!(
            dead.read_available(Duration::from_secs(30)).await.unwrap(),
            0,
            "{topic}"
        );
    }
}

/// Waits until the process managers have caught up (every character has its wallet, every
/// level-up its grant), then checks exactly once: one `WalletOpened` per character and one
/// `CurrencyGranted` per `LeveledUp`, for that level's gold. Returns the store's events.
async fn everything_granted(stack: &Stack) -> Vec<chaos_eventstore::StoredEvent> {
    let payload = |e: &chaos_eventstore::StoredEvent, field: &str| {
        e.payload_value()[&e.event_type][field].clone()
    };
    let events = wait_until(
        "every character's wallet and level-up grants",
        CATCH_UP,
        Duration::from_millis(200),
        || async {
            let events = stack
                .store()
                .all_events()
                .await
                .map_err(|e| e.to_string())?;
            let combat = combat_steps(&events);
            let missing = combat.hits.len() - combat.hits_landed.len()
                + combat.kills.len().saturating_sub(combat.rewards.len())
                + rewards_owed(&events);
            if missing == 0 {
                Ok(Some(events))
            } else {
                Err(format!("{missing} wallets or grants still missing"))
            }
        },
    )
    .await
    .unwrap();
    let characters = by_aggregate(&events, "character");
    let wallets = by_aggregate(&events, "wallet");
    assert_eq!(wallets.len(), characters.len(), "a wallet per character");
    let mut levels_total = 0;
    for (id, list) in &characters {
        let wallet = &wallets[id];
        let opened = wallet
            .iter()
            .filter(|e| e.event_type == "WalletOpened")
            .count();
        assert_eq!(opened, 1, "wallet {id} opened {opened} times");
        let want: Vec<(u64, u64)> = list
            .iter()
            .filter(|e| e.event_type == "LeveledUp")
            .map(|e| {
                let level = payload(e, "level").as_u64().unwrap();
                (level, payload(e, "gold_reward").as_u64().unwrap())
            })
            .collect();
        let got: Vec<(u64, u64)> = wallet
            .iter()
            .filter(|e| e.event_type == "CurrencyGranted")
            .map(|e| {
                let reference = payload(e, "reference");
                let level = reference
                    .as_str()
                    .and_then(|r| r.strip_prefix("levelup:"))
                    .and_then(|l| l.parse().ok())
                    .unwrap_or_else(|| panic!("grant reference {reference}"));
                (level, payload(e, "amount").as_u64().unwrap())
            })
            .collect();
        assert_eq!(
            got, want,
            "wallet {id}: one grant per level-up, for its gold"
        );
        levels_total += want.len();
    }
    eprintln!("{levels_total} level-ups, each granted its gold exactly once");
    let combat = combat_steps(&events);
    assert!(
        combat.duplicated.is_empty(),
        "PvP hits applied twice: {:?}",
        combat.duplicated
    );
    for (killer, kills) in &combat.kills_by_killer {
        let rewards = combat.rewards_by_killer.get(killer).copied().unwrap_or(0);
        assert_eq!(
            *kills, rewards,
            "{killer}: one bounty per kill, none lost, none twice"
        );
    }
    eprintln!(
        "{} PvP hits, each landed exactly once; {} kills, each rewarded once",
        combat.hits.len(),
        combat.kills.len()
    );
    events
}

/// The combat process manager's work, from the store.
#[derive(Debug, Default)]
struct CombatSteps {
    /// Casts that hit a character (their event ids: the causes of the damage steps).
    hits: BTreeSet<String>,
    /// Causes the victims recorded (DamageTaken or AttackMissed).
    hits_landed: BTreeSet<String>,
    /// Causes recorded more than once.
    duplicated: Vec<String>,
    /// Deaths with a killer and a bounty.
    kills: Vec<String>,
    kills_by_killer: BTreeMap<String, usize>,
    /// Bounties the killers received.
    rewards: Vec<String>,
    rewards_by_killer: BTreeMap<String, usize>,
}

fn combat_steps(events: &[chaos_eventstore::StoredEvent]) -> CombatSteps {
    let mut steps = CombatSteps::default();
    for e in events.iter().filter(|e| e.aggregate_type == "character") {
        let payload = e.payload_value();
        let fields = payload.get(&e.event_type).unwrap_or(&payload);
        match e.event_type.as_str() {
            "SkillCast" if fields["hit"].get("Character").is_some() => {
                let id =
                    chaos_eventstore::publish::event_id("character", &e.aggregate_id, e.sequence);
                steps.hits.insert(id.to_string());
            }
            "DamageTaken" | "AttackMissed" => {
                let cause = fields["cause"].as_str().unwrap_or_default().to_owned();
                if !steps.hits_landed.insert(cause.clone()) {
                    steps.duplicated.push(cause);
                }
            }
            "CharacterDied" if fields["killer"].is_string() && fields["bounty_xp"] != 0 => {
                let killer = fields["killer"].as_str().unwrap_or_default().to_owned();
                steps.kills.push(e.aggregate_id.clone());
                *steps.kills_by_killer.entry(killer).or_default() += 1;
            }
            "ExperienceGained"
                if fields["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("pvp-kill:")) =>
            {
                steps.rewards.push(e.aggregate_id.clone());
                *steps
                    .rewards_by_killer
                    .entry(e.aggregate_id.clone())
                    .or_default() += 1;
            }
            _ => {}
        }
    }
    steps
}

/// Two relays share the lock: one publishes, the other stands by and takes over when the
/// active one is killed; publishing continues with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_relay_takes_over_when_the_active_one_is_killed() {
    let mut stack = Stack::start(StackOptions {
        relays: 2,
        projector: false,
        process_managers: false,
        query_api: false,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let api = stack.commands();
    let player = api.player("failover").await.unwrap();
    let mut ids = Vec::new();
    for k in 0..3 {
        let c = api
            .create_character(&player.token, &format!("Relayed{k}"), "warrior", &[])
            .await
            .unwrap()
            .answer()
            .unwrap();
        ids.push(c.aggregate_id);
    }
    let strikes = |n: usize| {
        let (api, token, ids) = (api.clone(), player.token.clone(), ids.clone());
        async move {
            for i in 0..n {
                api.cast_skill(&token, &ids[i % ids.len()], "strike", &[])
                    .await
                    .unwrap()
                    .answer()
                    .unwrap();
            }
        }
    };
    strikes(30).await;
    let before = everything_published(&stack).await;
    assert!(
        before > 3 + 30 * 2,
        "strikes append SkillCast + ExperienceGained (+ LeveledUp)"
    );

    let active = active_relay(&stack).await;
    let standby = 1 - active;
    stack.relay(active).kill9();
    strikes(30).await;
    let after = everything_published(&stack).await;
    assert!(after >= before + 30 * 2, "{before} -> {after}");
    assert_eq!(active_relay(&stack).await, standby, "the standby took over");

    // The crashed one comes back as the standby; publishing carries on.
    stack.relay(active).restart(READY_TIMEOUT).await.unwrap();
    strikes(10).await;
    assert!(everything_published(&stack).await >= after + 10 * 2);
    assert_eq!(active_relay(&stack).await, standby);
}

/// Waits until Kafka holds every stored event; returns how many there are.
async fn everything_published(stack: &Stack) -> usize {
    let events = stack.store().all_events().await.unwrap();
    kafka_matches_store(
        &stack.services.kafka_bootstrap,
        &stack.services.schema_registry_url,
        &stack.events_topic(),
        &events,
        Duration::from_secs(90),
    )
    .await
    .unwrap();
    events.len()
}

/// The index of the one running relay reporting `chaos_relay_active 1`.
async fn active_relay(stack: &Stack) -> usize {
    wait_until(
        "exactly one active relay",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let mut active = Vec::new();
            for (i, relay) in stack.relays.iter().enumerate() {
                if relay.pid().is_none() {
                    continue;
                }
                let metrics = relay.metrics().await.map_err(|e| e.to_string())?;
                if metric_value(&metrics, "chaos_relay_active") == Some(1.0) {
                    active.push(i);
                }
            }
            match active.as_slice() {
                [one] => Ok(Some(*one)),
                other => Err(format!("active: {other:?}")),
            }
        },
    )
    .await
    .unwrap()
}
