//! Sample events shared by the suite (the proptest strategies are in `strategies.rs`).

use chaos_domain::{
    AccountId, CastHit, CharacterEvent, CharacterId, CharacterName, Currency, ItemChange,
    ItemStack, MissReason, Slot, WalletEvent,
};
use chaos_schemas::{AnyEvent, EventEnvelope, PublishedEvent};
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
}

/// One realistic event per `CharacterEvent` variant.
pub(crate) fn character_samples() -> Vec<CharacterEvent> {
    vec![
        CharacterEvent::CharacterCreated {
            owner: AccountId::from_uuid(Uuid::from_u128(0x0190_a3c2_7d1e_7c3a_9f00_0000_0000_0001)),
            name: CharacterName::parse("Aria").unwrap(),
            class: "mage".into(),
            level: 1,
            max_hp: 80,
            max_mana: 120,
            zone: "whispering_woods".into(),
            skills: vec!["firebolt".into(), "frost_nova".into()],
            created_at: t0(),
        },
        CharacterEvent::SkillCast {
            skill: "firebolt".into(),
            target: Some("wolf".into()),
            hit: Some(CastHit::Npc {
                npc: "wolf".into(),
                hp_before: 60,
                damage: 21,
                hp_after: 39,
            }),
            zone: "whispering_woods".into(),
            mana_before: 120,
            mana_cost: 15,
            mana_after: 105,
            damage: 23,
            cooldown_until: t0() + chrono::Duration::milliseconds(1500),
            cast_at: t0(),
        },
        CharacterEvent::ExperienceGained {
            amount: 40,
            total_xp: 140,
            source: "firebolt".into(),
            gained_at: t0(),
        },
        CharacterEvent::LeveledUp {
            level: 2,
            max_hp: 90,
            max_mana: 135,
            skills_unlocked: vec![],
            gold_reward: 20,
            leveled_at: t0(),
        },
        CharacterEvent::ZoneEntered {
            from_zone: "whispering_woods".into(),
            to_zone: "ember_peaks".into(),
            entered_at: t0(),
        },
        CharacterEvent::NpcKilled {
            npc: "wolf".into(),
            zone: "whispering_woods".into(),
            xp_reward: 12,
            loot_left: vec![ItemStack {
                item: "healing_herb".into(),
                quantity: 2,
            }],
            killed_at: t0(),
        },
        CharacterEvent::DamageTaken {
            attacker: attacker(),
            cause: "0190a3c2-7d1e-7c3a-9f00-00000000abc2".into(),
            skill: "fireball".into(),
            amount: 30,
            damage: 29,
            hp_before: 80,
            hp_after: 51,
            zone: "whispering_woods".into(),
            taken_at: t0(),
        },
        CharacterEvent::AttackMissed {
            attacker: attacker(),
            cause: "0190a3c2-7d1e-7c3a-9f00-00000000abc3".into(),
            skill: "strike".into(),
            reason: MissReason::TargetLeftZone,
            zone: "starter_meadow".into(),
            missed_at: t0(),
        },
        CharacterEvent::CharacterDied {
            killer: Some(attacker()),
            cause: "0190a3c2-7d1e-7c3a-9f00-00000000abc4".into(),
            zone: "whispering_woods".into(),
            bounty_xp: 30,
            died_at: t0(),
        },
        CharacterEvent::CharacterRespawned {
            from_zone: "whispering_woods".into(),
            zone: "starter_meadow".into(),
            hp: 96,
            mana: 144,
            respawned_at: t0(),
        },
        CharacterEvent::ItemsAcquired {
            items: vec![change("healing_herb", 1, 3), change("wolf_pelt", 2, 2)],
            source: "loot:wolf".into(),
            acquired_at: t0(),
        },
        CharacterEvent::ItemUsed {
            item: "health_potion".into(),
            quantity_after: 4,
            hp_before: 51,
            hp_after: 96,
            mana_before: 60,
            mana_after: 60,
            used_at: t0(),
        },
        CharacterEvent::ItemDestroyed {
            item: "wolf_pelt".into(),
            quantity: 2,
            quantity_after: 0,
            destroyed_at: t0(),
        },
        CharacterEvent::ItemCrafted {
            recipe: "iron_sword".into(),
            consumed: vec![change("iron_ore", 4, 1), change("wolf_pelt", 1, 3)],
            produced: change("iron_sword", 1, 1),
            crafted_at: t0(),
        },
        CharacterEvent::ItemEquipped {
            item: "iron_sword".into(),
            slot: Slot::MainHand,
            quantity_after: 0,
            replaced: Some(change("rusty_dagger", 1, 1)),
            max_hp: 154,
            max_mana: 44,
            hp: 120,
            mana: 44,
            equipped_at: t0(),
        },
        CharacterEvent::ItemUnequipped {
            item: "leather_cap".into(),
            slot: Slot::Head,
            quantity_after: 1,
            max_hp: 154,
            max_mana: 44,
            hp: 154,
            mana: 44,
            unequipped_at: t0(),
        },
    ]
}

fn attacker() -> CharacterId {
    CharacterId::from_uuid(Uuid::from_u128(0x0190_a3c2_7d1e_7c3a_9f00_0000_0000_0bad))
}

fn change(item: &str, quantity: u32, quantity_after: u32) -> ItemChange {
    ItemChange {
        item: item.into(),
        quantity,
        quantity_after,
    }
}

/// One realistic event per `WalletEvent` variant.
pub(crate) fn wallet_samples() -> Vec<WalletEvent> {
    vec![
        WalletEvent::WalletOpened {
            owner: AccountId::from_uuid(Uuid::from_u128(0x0190_a3c2_7d1e_7c3a_9f00_0000_0000_0001)),
            character: CharacterId::from_uuid(Uuid::from_u128(0xc0de)),
            opened_at: t0(),
        },
        WalletEvent::CurrencyGranted {
            currency: Currency::Gold,
            amount: 20,
            balance_after: 20,
            source: "level-up".into(),
            reference: "levelup:c0de:2".into(),
            granted_at: t0(),
        },
        WalletEvent::CurrencySpent {
            currency: Currency::Gems,
            amount: 5,
            balance_after: 0,
            sink: "vendor:potion".into(),
            reference: "buy-1".into(),
            spent_at: t0(),
        },
    ]
}

/// One sample of every event type of every registered aggregate.
pub(crate) fn all_samples() -> Vec<AnyEvent> {
    let mut all: Vec<AnyEvent> = character_samples().into_iter().map(Into::into).collect();
    all.extend(wallet_samples().into_iter().map(AnyEvent::from));
    all
}

pub(crate) fn envelope_for(event: &AnyEvent, sequence: u64) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::from_u128(0xabc0 + u128::from(sequence)),
        event_type: event.event_type().to_owned(),
        aggregate_type: event.aggregate_type().to_owned(),
        aggregate_id: "0190a3c2-7d1e-7c3a-9f00-00000000c0de".into(),
        sequence,
        global_position: 1000 + sequence as i64,
        occurred_at: t0(),
        correlation_id: Some("corr-1".into()),
        causation_id: None,
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    }
}

/// Every sample wrapped in an envelope.
pub(crate) fn published_samples() -> Vec<PublishedEvent> {
    all_samples()
        .into_iter()
        .enumerate()
        .map(|(i, event)| PublishedEvent {
            envelope: envelope_for(&event, i as u64 + 1),
            event,
        })
        .collect()
}

pub(crate) fn sample_of(event_type: &str) -> PublishedEvent {
    published_samples()
        .into_iter()
        .find(|p| p.event.event_type() == event_type)
        .unwrap_or_else(|| panic!("no sample for {event_type}"))
}
