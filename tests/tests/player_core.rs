//! The player core over the real pipeline: the scenario of `chaos_tests::scenario` (a PvP kill
//! and respawn, the attack refused in a safe zone and a dungeon, a craft, a potion, an equip, bad
//! input refused with nothing appended), then every sheet equals its folded history and every
//! event of every aggregate is on Kafka, in order, once.

use std::time::Duration;

use chaos_tests::check::{every_topic_matches_store, sheets_match_store};
use chaos_tests::scenario::player_core;
use chaos_tests::stack::{Stack, StackOptions};

const PIPELINE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pvp_crafting_potions_and_equipment_flow_through_the_pipeline() {
    let stack = Stack::start(StackOptions::default()).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let gm = stack.sign_token_with_roles(
        &uuid::Uuid::new_v4().to_string(),
        &["player", "game-master"],
        now,
        now + 3600,
    );
    let played = player_core(&stack.commands(), &stack.anonymous_queries(), &gm, "Pc")
        .await
        .unwrap();

    let events = stack.store().all_events_settled(PIPELINE).await.unwrap();
    let kinds: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e.event_type.as_str()).collect();
    for kind in [
        "DamageTaken",
        "CharacterDied",
        "CharacterRespawned",
        "ItemsAcquired",
        "ItemCrafted",
        "ItemUsed",
        "ItemEquipped",
        "CurrencyGranted",
    ] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    // Each damage step was applied once: one DamageTaken or AttackMissed per cause.
    let mut causes = std::collections::BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.aggregate_id == played.victim)
        .filter(|e| matches!(e.event_type.as_str(), "DamageTaken" | "AttackMissed"))
    {
        // The stored payload, tagged with its type or not.
        let payload = e.payload_value();
        let fields = payload.get(&e.event_type).unwrap_or(&payload);
        let cause = fields["cause"].as_str().unwrap().to_owned();
        *causes.entry(cause).or_insert(0) += 1;
    }
    assert!(!causes.is_empty());
    assert!(
        causes.values().all(|n| *n == 1),
        "a hit applied twice: {causes:?}"
    );
    assert_eq!(
        sheets_match_store(&stack.queries(), &events, PIPELINE)
            .await
            .unwrap(),
        2
    );
    every_topic_matches_store(
        &stack.services.kafka_bootstrap,
        &stack.services.schema_registry_url,
        &stack.isolation.topic_prefix,
        &events,
        PIPELINE,
    )
    .await
    .unwrap();
}
