//! The document views (profile, timeline) through the projection, on the in-memory store.

use std::sync::Arc;

use chaos_domain::{AccountId, CharacterEvent, CharacterId, CharacterName, Currency, WalletEvent};
use chaos_schemas::{AnyEvent, EventEnvelope, PublishedEvent};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::profile::ProfileDoc;
use super::timeline::{TimelineDoc, TimelineEntry};
use crate::{DocumentStore, Keys, MemoryStore, Verdict, ViewProjection};

const ID: &str = "0190a3c2-7d1e-7c3a-9f00-000000000001";

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, second).unwrap()
}

fn published(event: AnyEvent, sequence: u64, position: i64) -> PublishedEvent {
    PublishedEvent {
        envelope: EventEnvelope {
            event_id: uuid::Uuid::new_v4(),
            event_type: event.event_type().into(),
            aggregate_type: event.aggregate_type().into(),
            aggregate_id: ID.into(),
            sequence,
            global_position: position,
            occurred_at: event.occurred_at(),
            correlation_id: None,
            causation_id: None,
            traceparent: None,
        },
        event,
    }
}

/// A character's and its wallet's events interleaved, the wallet's first grant before the
/// character's creation (they travel on different topics).
fn history() -> Vec<PublishedEvent> {
    let c = |e: CharacterEvent| AnyEvent::Character(e);
    let w = |e: WalletEvent| AnyEvent::Wallet(e);
    let owner = AccountId::from_uuid(uuid::Uuid::from_u128(7));
    let cast = |skill: &str, second: u32| {
        c(CharacterEvent::SkillCast {
            skill: skill.into(),
            target: Some("wolf-1".into()),
            hit: None,
            zone: "whispering_woods".into(),
            mana_before: 100,
            mana_cost: 10,
            mana_after: 90,
            damage: 5,
            cooldown_until: at(second + 8),
            cast_at: at(second),
        })
    };
    vec![
        published(
            w(WalletEvent::WalletOpened {
                owner,
                character: CharacterId::parse(ID).unwrap(),
                opened_at: at(1),
            }),
            1,
            2,
        ),
        published(
            c(CharacterEvent::CharacterCreated {
                owner,
                name: CharacterName::parse("Aria").unwrap(),
                class: "mage".into(),
                level: 1,
                max_hp: 80,
                max_mana: 120,
                zone: "whispering_woods".into(),
                skills: vec!["fireball".into()],
                created_at: at(0),
            }),
            1,
            1,
        ),
        published(cast("fireball", 2), 2, 3),
        published(
            c(CharacterEvent::ExperienceGained {
                amount: 100,
                total_xp: 100,
                source: "kill:wolf".into(),
                gained_at: at(3),
            }),
            3,
            4,
        ),
        published(
            c(CharacterEvent::LeveledUp {
                level: 2,
                max_hp: 90,
                max_mana: 130,
                skills_unlocked: vec![],
                gold_reward: 50,
                leveled_at: at(3),
            }),
            4,
            5,
        ),
        published(
            w(WalletEvent::CurrencyGranted {
                currency: Currency::Gold,
                amount: 50,
                balance_after: 50,
                source: "level-up".into(),
                reference: "2".into(),
                granted_at: at(4),
            }),
            2,
            6,
        ),
        published(
            c(CharacterEvent::ZoneEntered {
                from_zone: "whispering_woods".into(),
                to_zone: "ember_peaks".into(),
                entered_at: at(5),
            }),
            5,
            7,
        ),
        published(cast("fireball", 6), 6, 8),
        published(
            w(WalletEvent::CurrencySpent {
                currency: Currency::Gold,
                amount: 20,
                balance_after: 30,
                sink: "shop".into(),
                reference: "potion".into(),
                spent_at: at(7),
            }),
            3,
            9,
        ),
    ]
}

fn projection(store: Arc<MemoryStore>) -> ViewProjection {
    ViewProjection::new(store, Keys::new("t:", "v1"), super::documents())
}

#[tokio::test]
async fn profile_and_timeline_of_a_character_and_its_wallet() {
    let store = Arc::new(MemoryStore::default());
    let p = projection(store.clone());
    let events = history();
    // In two batches, and the first one again (a redelivery): nothing is applied twice.
    let (first, second) = events.split_at(4);
    assert_eq!(
        p.apply_batch(first).await.unwrap(),
        vec![Verdict::Applied; 4]
    );
    assert_eq!(
        p.apply_batch(second).await.unwrap(),
        vec![Verdict::Applied; 5]
    );
    assert_eq!(
        p.apply_batch(first).await.unwrap(),
        vec![Verdict::Duplicate; 4]
    );

    let keys = Keys::new("t:", "v1");
    let profile = store.get(&keys.doc("profile", ID)).await.unwrap().unwrap();
    let profile: ProfileDoc = profile.body.decode().unwrap();
    let c = profile.character.as_ref().unwrap();
    assert_eq!(
        (c.name.as_str(), c.class.as_str(), c.level),
        ("Aria", "mage", 2)
    );
    assert_eq!(c.zone, "ember_peaks");
    assert_eq!(c.created_at, at(0));
    let levels: Vec<(u8, u64)> = c
        .level_history
        .iter()
        .map(|l| (l.level, l.sequence))
        .collect();
    assert_eq!(levels, vec![(1, 1), (2, 4)]);
    assert_eq!(c.zones_visited.len(), 2);
    assert_eq!(c.zones_visited["ember_peaks"].first_at, at(5));
    assert_eq!(profile.casts_by_skill["fireball"], 2);
    assert_eq!(profile.xp_gained, 100);
    assert_eq!((profile.granted["gold"], profile.spent["gold"]), (50, 20));
    assert_eq!(profile.events_by_type.values().sum::<u64>(), 9);
    assert_eq!(profile.last_event_at, Some(at(7)));

    let timeline = store.get(&keys.doc("timeline", ID)).await.unwrap().unwrap();
    let timeline: TimelineDoc = timeline.body.decode().unwrap();
    assert_eq!(timeline.entries, 9);
    assert_eq!(timeline.by_aggregate["character"], 6);
    assert_eq!(timeline.by_aggregate["wallet"], 3);
    assert_eq!(
        (timeline.first_at, timeline.last_at),
        (at(0).timestamp_millis(), at(7).timestamp_millis())
    );
    // The log: one entry per event, by global position, each stream in sequence order.
    let log = keys.log("timeline", "events", ID);
    let entries = store.log_range(&log, 0, 100).await.unwrap();
    let scores: Vec<u64> = entries.iter().map(|(s, _)| *s).collect();
    assert_eq!(scores, (1..=9).collect::<Vec<u64>>());
    let entries: Vec<TimelineEntry> = entries
        .into_iter()
        .map(|(_, e)| serde_json::from_value(e).unwrap())
        .collect();
    let wallet: Vec<u64> = entries
        .iter()
        .filter(|e| e.aggregate_type == "wallet")
        .map(|e| e.sequence)
        .collect();
    assert_eq!(wallet, vec![1, 2, 3]);
    assert_eq!(entries[2].event_type, "SkillCast");
    assert_eq!(entries[2].summary["skill"], "fireball");
    assert_eq!(entries[2].summary["target"], "wolf-1");
    assert_eq!(
        entries[8].summary,
        json!({"currency": "gold", "amount": 20, "balance_after": 30, "sink": "shop", "reference": "potion"})
    );
    // By time: seconds 3 to 5 (5 excluded), then the next page after the last score.
    let window = store
        .log_window(
            &log,
            at(3).timestamp_millis(),
            at(5).timestamp_millis(),
            0,
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![4, 5]
    );
    let next = store
        .log_window(
            &log,
            at(3).timestamp_millis(),
            at(5).timestamp_millis(),
            5,
            2,
        )
        .await
        .unwrap();
    assert_eq!(next.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![6]);
}

#[tokio::test]
async fn an_event_before_the_characters_creation_is_a_dead_letter_in_the_profile() {
    let store = Arc::new(MemoryStore::default());
    let p = projection(store);
    let mut events = history();
    events.remove(1); // no creation
    events[1].envelope.sequence = 1;
    let verdicts = p.apply_batch(&events[1..2]).await.unwrap();
    assert!(
        matches!(&verdicts[0], Verdict::DeadLetter(r) if r.contains("never created")),
        "{verdicts:?}"
    );
}
