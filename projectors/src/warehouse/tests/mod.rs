//! The warehouse over real DuckDB files in a temporary directory.

mod core;
mod export;
mod model;
mod store_rebuild;
mod switch;

use std::path::PathBuf;

use chaos_domain::{
    AccountId, CastHit, CharacterEvent, CharacterId, CharacterName, Currency, GameEvent,
    ItemChange, ItemStack, MissReason, Slot, WalletEvent,
};
use chaos_schemas::{AnyEvent, EventEnvelope, PublishedEvent};
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::Warehouse;

/// A directory removed when the test ends.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("chaos-warehouse-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(super) fn db(&self) -> PathBuf {
        self.0.join("warehouse.duckdb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn at(seconds: i64, millis: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + seconds, millis * 1_000_000 + 456_789)
        .unwrap()
}

pub(super) fn published(character: &str, sequence: u64, event: CharacterEvent) -> PublishedEvent {
    envelope(
        "character",
        character,
        sequence,
        event.type_name(),
        event.occurred_at(),
        AnyEvent::Character(event),
    )
}

pub(super) fn wallet(id: &str, sequence: u64, event: WalletEvent) -> PublishedEvent {
    envelope(
        "wallet",
        id,
        sequence,
        event.type_name(),
        event.occurred_at(),
        AnyEvent::Wallet(event),
    )
}

fn envelope(
    aggregate_type: &str,
    id: &str,
    sequence: u64,
    event_type: &str,
    occurred_at: DateTime<Utc>,
    event: AnyEvent,
) -> PublishedEvent {
    PublishedEvent {
        envelope: EventEnvelope {
            event_id: chaos_eventstore::publish::event_id(
                aggregate_type,
                id,
                i64::try_from(sequence).unwrap(),
            ),
            event_type: event_type.to_owned(),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: id.to_owned(),
            sequence,
            global_position: i64::try_from(sequence).unwrap() * 10,
            occurred_at,
            correlation_id: Some(format!("req-{sequence}")),
            causation_id: None,
            traceparent: None,
        },
        event,
    }
}

pub(super) fn character_id(n: u128) -> CharacterId {
    CharacterId::from_uuid(Uuid::from_u128(n))
}

/// One character's life: one event of every character event type, in a plausible order.
pub(super) fn life(character: &str) -> Vec<PublishedEvent> {
    let other = character_id(77);
    let events = vec![
        CharacterEvent::CharacterCreated {
            owner: AccountId::from_uuid(Uuid::nil()),
            name: CharacterName::parse("Aria").unwrap(),
            class: "mage".into(),
            level: 1,
            max_hp: 80,
            max_mana: 120,
            zone: "whispering_woods".into(),
            skills: vec!["fireball".into(), "odd \"one\", \\ [x]".into()],
            created_at: at(0, 1),
        },
        CharacterEvent::SkillCast {
            skill: "fireball".into(),
            target: Some("wolf".into()),
            hit: Some(CastHit::Npc {
                npc: "wolf".into(),
                hp_before: 60,
                damage: 40,
                hp_after: 20,
            }),
            zone: "whispering_woods".into(),
            mana_before: 120,
            mana_cost: 30,
            mana_after: 90,
            damage: 42,
            cooldown_until: at(13, 0),
            cast_at: at(10, 250),
        },
        CharacterEvent::NpcKilled {
            npc: "wolf".into(),
            zone: "whispering_woods".into(),
            xp_reward: 12,
            loot_left: vec![ItemStack {
                item: "wolf_pelt".into(),
                quantity: 2,
            }],
            killed_at: at(20, 0),
        },
        CharacterEvent::ExperienceGained {
            amount: 150,
            total_xp: 150,
            source: "kill:wolf".into(),
            gained_at: at(20, 0),
        },
        CharacterEvent::LeveledUp {
            level: 2,
            max_hp: 90,
            max_mana: 135,
            skills_unlocked: vec![],
            gold_reward: 20,
            leveled_at: at(20, 0),
        },
        CharacterEvent::ItemsAcquired {
            items: vec![
                ItemChange {
                    item: "healing_herb".into(),
                    quantity: 3,
                    quantity_after: 3,
                },
                ItemChange {
                    item: "wolf_pelt".into(),
                    quantity: 1,
                    quantity_after: 1,
                },
            ],
            source: "loot:wolf".into(),
            acquired_at: at(20, 0),
        },
        CharacterEvent::ZoneEntered {
            from_zone: "whispering_woods".into(),
            to_zone: "goblin_warren".into(),
            entered_at: at(30, 0),
        },
        CharacterEvent::SkillCast {
            skill: "fireball".into(),
            target: Some(other.to_string()),
            hit: Some(CastHit::Character { id: other }),
            zone: "goblin_warren".into(),
            mana_before: 135,
            mana_cost: 30,
            mana_after: 105,
            damage: 25,
            cooldown_until: at(43, 0),
            cast_at: at(40, 0),
        },
        CharacterEvent::DamageTaken {
            attacker: other,
            cause: "cast-1".into(),
            skill: "strike".into(),
            amount: 30,
            damage: 28,
            hp_before: 90,
            hp_after: 62,
            zone: "goblin_warren".into(),
            taken_at: at(41, 0),
        },
        CharacterEvent::AttackMissed {
            attacker: other,
            cause: "cast-2".into(),
            skill: "strike".into(),
            reason: MissReason::TargetLeftZone,
            zone: "goblin_warren".into(),
            missed_at: at(42, 0),
        },
        CharacterEvent::ItemUsed {
            item: "healing_herb".into(),
            quantity_after: 2,
            hp_before: 62,
            hp_after: 90,
            mana_before: 105,
            mana_after: 105,
            used_at: at(50, 0),
        },
        CharacterEvent::ItemCrafted {
            recipe: "health_potion".into(),
            consumed: vec![ItemChange {
                item: "healing_herb".into(),
                quantity: 2,
                quantity_after: 0,
            }],
            produced: ItemChange {
                item: "health_potion".into(),
                quantity: 1,
                quantity_after: 1,
            },
            crafted_at: at(60, 0),
        },
        CharacterEvent::ItemEquipped {
            item: "wolf_pelt".into(),
            slot: Slot::Head,
            quantity_after: 0,
            replaced: Some(ItemChange {
                item: "leather_cap".into(),
                quantity: 1,
                quantity_after: 1,
            }),
            max_hp: 95,
            max_mana: 135,
            hp: 90,
            mana: 105,
            equipped_at: at(70, 0),
        },
        CharacterEvent::ItemUnequipped {
            item: "wolf_pelt".into(),
            slot: Slot::Head,
            quantity_after: 1,
            max_hp: 90,
            max_mana: 135,
            hp: 90,
            mana: 105,
            unequipped_at: at(80, 0),
        },
        CharacterEvent::ItemDestroyed {
            item: "leather_cap".into(),
            quantity: 1,
            quantity_after: 0,
            destroyed_at: at(90, 0),
        },
        CharacterEvent::CharacterDied {
            killer: Some(other),
            cause: "taken-1".into(),
            zone: "goblin_warren".into(),
            bounty_xp: 20,
            died_at: at(100, 0),
        },
        CharacterEvent::CharacterRespawned {
            from_zone: "goblin_warren".into(),
            zone: "starter_meadow".into(),
            hp: 90,
            mana: 135,
            respawned_at: at(110, 0),
        },
    ];
    events
        .into_iter()
        .zip(1..)
        .map(|(e, seq)| published(character, seq, e))
        .collect()
}

/// A wallet's life: opened, a grant, a spend.
pub(super) fn purse(id: &str) -> Vec<PublishedEvent> {
    vec![
        wallet(
            id,
            1,
            WalletEvent::WalletOpened {
                owner: AccountId::from_uuid(Uuid::nil()),
                character: character_id(1),
                opened_at: at(0, 1),
            },
        ),
        wallet(
            id,
            2,
            WalletEvent::CurrencyGranted {
                currency: Currency::Gold,
                amount: 20,
                balance_after: 20,
                source: "level-up".into(),
                reference: "level:2".into(),
                granted_at: at(20, 0),
            },
        ),
        wallet(
            id,
            3,
            WalletEvent::CurrencySpent {
                currency: Currency::Gold,
                amount: 15,
                balance_after: 5,
                sink: "vendor:health_potion".into(),
                reference: "order-1".into(),
                spent_at: at(25, 0),
            },
        ),
    ]
}

pub(super) async fn counts(w: &Warehouse) -> Vec<(&'static str, u64)> {
    w.counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.table, c.rows))
        .collect()
}

pub(super) async fn count(w: &Warehouse, table: &str) -> u64 {
    counts(w)
        .await
        .into_iter()
        .find(|(t, _)| *t == table)
        .map(|(_, n)| n)
        .unwrap()
}

pub(super) fn query_strings(conn: &duckdb::Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<duckdb::Result<_>>()
        .unwrap()
}
