//! Proptest strategies: any event of any registered aggregate, with values within the contract's
//! documented ranges.

use chaos_domain::{
    AccountId, CastHit, CharacterEvent, CharacterId, CharacterName, Currency, ItemChange,
    ItemStack, MissReason, Slot, WalletEvent,
};
use chaos_schemas::{AnyEvent, EventEnvelope, PublishedEvent};
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use uuid::Uuid;

/// Millisecond instants between 1970 and 2100: the wire carries milliseconds.
pub(crate) fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..=4_102_444_800_000).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap())
}

/// Any text, including non-ASCII.
fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

fn u32_wire() -> impl Strategy<Value = u32> {
    0..=i32::MAX as u32
}

fn u64_wire() -> impl Strategy<Value = u64> {
    0..=i64::MAX as u64
}

pub(crate) fn character_event() -> impl Strategy<Value = CharacterEvent> {
    prop_oneof![
        3 => spine_event(),
        2 => combat_event(),
        3 => item_event(),
    ]
}

fn character_id() -> impl Strategy<Value = CharacterId> {
    any::<u128>().prop_map(|n| CharacterId::from_uuid(Uuid::from_u128(n)))
}

fn cast_hit() -> impl Strategy<Value = CastHit> {
    prop_oneof![
        (text(), u32_wire(), u32_wire(), u32_wire()).prop_map(
            |(npc, hp_before, damage, hp_after)| CastHit::Npc {
                npc,
                hp_before,
                damage,
                hp_after
            }
        ),
        character_id().prop_map(|id| CastHit::Character { id }),
    ]
}

fn item_change() -> impl Strategy<Value = ItemChange> {
    (text(), u32_wire(), u32_wire()).prop_map(|(item, quantity, quantity_after)| ItemChange {
        item,
        quantity,
        quantity_after,
    })
}

fn slot() -> impl Strategy<Value = Slot> {
    prop::sample::select(Slot::ALL.to_vec())
}

/// Deaths, hits and respawns.
fn combat_event() -> impl Strategy<Value = CharacterEvent> {
    prop_oneof![
        (
            text(),
            text(),
            u32_wire(),
            prop::collection::vec((text(), u32_wire()), 0..4),
            instant()
        )
            .prop_map(|(npc, zone, xp_reward, left, killed_at)| {
                CharacterEvent::NpcKilled {
                    npc,
                    zone,
                    xp_reward,
                    loot_left: left
                        .into_iter()
                        .map(|(item, quantity)| ItemStack { item, quantity })
                        .collect(),
                    killed_at,
                }
            }),
        (
            (character_id(), text(), text()),
            (u32_wire(), u32_wire(), u32_wire(), u32_wire()),
            text(),
            instant()
        )
            .prop_map(
                |((attacker, cause, skill), (amount, damage, hp_before, hp_after), zone, at)| {
                    CharacterEvent::DamageTaken {
                        attacker,
                        cause,
                        skill,
                        amount,
                        damage,
                        hp_before,
                        hp_after,
                        zone,
                        taken_at: at,
                    }
                }
            ),
        (
            character_id(),
            text(),
            text(),
            prop::sample::select(MissReason::ALL.to_vec()),
            text(),
            instant()
        )
            .prop_map(|(attacker, cause, skill, reason, zone, missed_at)| {
                CharacterEvent::AttackMissed {
                    attacker,
                    cause,
                    skill,
                    reason,
                    zone,
                    missed_at,
                }
            }),
        (
            prop::option::of(character_id()),
            text(),
            text(),
            u64_wire(),
            instant()
        )
            .prop_map(|(killer, cause, zone, bounty_xp, died_at)| {
                CharacterEvent::CharacterDied {
                    killer,
                    cause,
                    zone,
                    bounty_xp,
                    died_at,
                }
            }),
        (text(), text(), u32_wire(), u32_wire(), instant()).prop_map(
            |(from_zone, zone, hp, mana, respawned_at)| CharacterEvent::CharacterRespawned {
                from_zone,
                zone,
                hp,
                mana,
                respawned_at,
            }
        ),
    ]
}

/// The bag and the equipment.
fn item_event() -> impl Strategy<Value = CharacterEvent> {
    prop_oneof![
        (
            prop::collection::vec(item_change(), 0..4),
            text(),
            instant()
        )
            .prop_map(
                |(items, source, acquired_at)| CharacterEvent::ItemsAcquired {
                    items,
                    source,
                    acquired_at,
                }
            ),
        (
            text(),
            u32_wire(),
            (u32_wire(), u32_wire(), u32_wire(), u32_wire()),
            instant()
        )
            .prop_map(
                |(item, quantity_after, (hp_before, hp_after, mana_before, mana_after), at)| {
                    CharacterEvent::ItemUsed {
                        item,
                        quantity_after,
                        hp_before,
                        hp_after,
                        mana_before,
                        mana_after,
                        used_at: at,
                    }
                }
            ),
        (text(), u32_wire(), u32_wire(), instant()).prop_map(
            |(item, quantity, quantity_after, destroyed_at)| CharacterEvent::ItemDestroyed {
                item,
                quantity,
                quantity_after,
                destroyed_at,
            }
        ),
        (
            text(),
            prop::collection::vec(item_change(), 0..4),
            item_change(),
            instant()
        )
            .prop_map(|(recipe, consumed, produced, crafted_at)| {
                CharacterEvent::ItemCrafted {
                    recipe,
                    consumed,
                    produced,
                    crafted_at,
                }
            }),
        (
            (text(), slot(), u32_wire(), prop::option::of(item_change())),
            (u32_wire(), u32_wire(), u32_wire(), u32_wire()),
            instant()
        )
            .prop_map(
                |((item, slot, quantity_after, replaced), (max_hp, max_mana, hp, mana), at)| {
                    CharacterEvent::ItemEquipped {
                        item,
                        slot,
                        quantity_after,
                        replaced,
                        max_hp,
                        max_mana,
                        hp,
                        mana,
                        equipped_at: at,
                    }
                }
            ),
        (
            (text(), slot(), u32_wire()),
            (u32_wire(), u32_wire(), u32_wire(), u32_wire()),
            instant()
        )
            .prop_map(
                |((item, slot, quantity_after), (max_hp, max_mana, hp, mana), at)| {
                    CharacterEvent::ItemUnequipped {
                        item,
                        slot,
                        quantity_after,
                        max_hp,
                        max_mana,
                        hp,
                        mana,
                        unequipped_at: at,
                    }
                }
            ),
    ]
}

/// The events the generic spine started with.
fn spine_event() -> impl Strategy<Value = CharacterEvent> {
    let name = "[A-Za-z][A-Za-z0-9_-]{2,19}".prop_map(|s| CharacterName::parse(&s).unwrap());
    prop_oneof![
        (
            any::<u128>(),
            name,
            text(),
            any::<u8>(),
            u32_wire(),
            u32_wire(),
            text(),
            prop::collection::vec(text(), 0..5),
            instant(),
        )
            .prop_map(
                |(owner, name, class, level, max_hp, max_mana, zone, skills, created_at)| {
                    CharacterEvent::CharacterCreated {
                        owner: AccountId::from_uuid(Uuid::from_u128(owner)),
                        name,
                        class,
                        level,
                        max_hp,
                        max_mana,
                        zone,
                        skills,
                        created_at,
                    }
                }
            ),
        (
            (
                text(),
                prop::option::of(text()),
                prop::option::of(cast_hit())
            ),
            text(),
            (u32_wire(), u32_wire(), u32_wire(), u32_wire()),
            instant(),
            instant(),
        )
            .prop_map(
                |(
                    (skill, target, hit),
                    zone,
                    (mana_before, mana_cost, mana_after, damage),
                    cd,
                    at,
                )| {
                    CharacterEvent::SkillCast {
                        skill,
                        target,
                        hit,
                        zone,
                        mana_before,
                        mana_cost,
                        mana_after,
                        damage,
                        cooldown_until: cd,
                        cast_at: at,
                    }
                }
            ),
        (u64_wire(), u64_wire(), text(), instant()).prop_map(
            |(amount, total_xp, source, gained_at)| CharacterEvent::ExperienceGained {
                amount,
                total_xp,
                source,
                gained_at,
            }
        ),
        (
            any::<u8>(),
            u32_wire(),
            u32_wire(),
            prop::collection::vec(text(), 0..5),
            u64_wire(),
            instant(),
        )
            .prop_map(
                |(level, max_hp, max_mana, skills_unlocked, gold_reward, leveled_at)| {
                    CharacterEvent::LeveledUp {
                        level,
                        max_hp,
                        max_mana,
                        skills_unlocked,
                        gold_reward,
                        leveled_at,
                    }
                }
            ),
        (text(), text(), instant()).prop_map(|(from_zone, to_zone, entered_at)| {
            CharacterEvent::ZoneEntered {
                from_zone,
                to_zone,
                entered_at,
            }
        }),
    ]
}

pub(crate) fn wallet_event() -> impl Strategy<Value = WalletEvent> {
    let currency = prop::sample::select(Currency::ALL.to_vec());
    prop_oneof![
        (any::<u128>(), any::<u128>(), instant()).prop_map(|(o, c, at)| {
            WalletEvent::WalletOpened {
                owner: AccountId::from_uuid(Uuid::from_u128(o)),
                character: CharacterId::from_uuid(Uuid::from_u128(c)),
                opened_at: at,
            }
        }),
        (
            currency.clone(),
            u64_wire(),
            u64_wire(),
            text(),
            text(),
            instant()
        )
            .prop_map(
                |(currency, amount, balance_after, source, reference, granted_at)| {
                    WalletEvent::CurrencyGranted {
                        currency,
                        amount,
                        balance_after,
                        source,
                        reference,
                        granted_at,
                    }
                }
            ),
        (currency, u64_wire(), u64_wire(), text(), text(), instant()).prop_map(
            |(currency, amount, balance_after, sink, reference, spent_at)| {
                WalletEvent::CurrencySpent {
                    currency,
                    amount,
                    balance_after,
                    sink,
                    reference,
                    spent_at,
                }
            }
        ),
    ]
}

/// Any event of any registered aggregate.
pub(crate) fn any_event() -> impl Strategy<Value = AnyEvent> {
    prop_oneof![
        character_event().prop_map(AnyEvent::from),
        wallet_event().prop_map(AnyEvent::from),
    ]
}

pub(crate) fn published_event() -> impl Strategy<Value = PublishedEvent> {
    (
        any_event(),
        any::<u128>(),
        text(),
        (1..=i64::MAX as u64, any::<i64>(), instant()),
        (
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(text()),
        ),
    )
        .prop_map(
            |(event, id, aggregate_id, (sequence, global_position, occurred_at), opts)| {
                PublishedEvent {
                    envelope: EventEnvelope {
                        event_id: Uuid::from_u128(id),
                        event_type: event.event_type().to_owned(),
                        aggregate_type: event.aggregate_type().to_owned(),
                        aggregate_id,
                        sequence,
                        global_position,
                        occurred_at,
                        correlation_id: opts.0,
                        causation_id: opts.1,
                        traceparent: opts.2,
                    },
                    event,
                }
            },
        )
}
