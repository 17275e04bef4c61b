//! `character` events <-> the fields of their `chaos.character.*` records.
//!
//! Written by hand against the `.avsc` files, field by field: the schemas are the contract, and a
//! change to the Rust enum must not silently change what is published. Nested records
//! (`ItemChange`, `ItemStack`, `NpcHit`, `CharacterHit`) are mapped by the helpers at the end.

use apache_avro::types::Value;
use chaos_domain::{
    AccountId, CastHit, CharacterEvent, CharacterId, CharacterName, ItemChange, ItemStack,
    MissReason, Slot,
};

use crate::error::{Error, Result};
use crate::registry::AvroMapping;
use crate::value::{self, Fields};

impl AvroMapping for CharacterEvent {
    fn to_fields(&self) -> Vec<(&'static str, Value)> {
        to_fields(self)
    }

    fn from_fields(event_type: &str, f: &mut Fields) -> Result<Self> {
        from_fields(event_type, f)
    }
}

fn to_fields(event: &CharacterEvent) -> Vec<(&'static str, Value)> {
    use CharacterEvent as E;
    match event {
        E::CharacterCreated {
            owner,
            name,
            class,
            level,
            max_hp,
            max_mana,
            zone,
            skills,
            created_at,
        } => vec![
            ("owner", value::string(&owner.to_string())),
            ("name", value::string(name.as_str())),
            ("class", value::string(class)),
            ("level", value::int_u8(*level)),
            ("max_hp", value::int_u32(*max_hp)),
            ("max_mana", value::int_u32(*max_mana)),
            ("zone", value::string(zone)),
            ("skills", value::strings(skills)),
            ("created_at", value::timestamp(*created_at)),
        ],
        E::SkillCast {
            skill,
            target,
            hit,
            zone,
            mana_before,
            mana_cost,
            mana_after,
            damage,
            cooldown_until,
            cast_at,
        } => vec![
            ("skill", value::string(skill)),
            ("target", value::opt_string(target.as_deref())),
            ("hit", value::opt_union(hit.as_ref().map(cast_hit))),
            ("zone", value::string(zone)),
            ("mana_before", value::int_u32(*mana_before)),
            ("mana_cost", value::int_u32(*mana_cost)),
            ("mana_after", value::int_u32(*mana_after)),
            ("damage", value::int_u32(*damage)),
            ("cooldown_until", value::timestamp(*cooldown_until)),
            ("cast_at", value::timestamp(*cast_at)),
        ],
        E::ExperienceGained {
            amount,
            total_xp,
            source,
            gained_at,
        } => vec![
            ("amount", value::long_u64(*amount)),
            ("total_xp", value::long_u64(*total_xp)),
            ("source", value::string(source)),
            ("gained_at", value::timestamp(*gained_at)),
        ],
        E::LeveledUp {
            level,
            max_hp,
            max_mana,
            skills_unlocked,
            gold_reward,
            leveled_at,
        } => vec![
            ("level", value::int_u8(*level)),
            ("max_hp", value::int_u32(*max_hp)),
            ("max_mana", value::int_u32(*max_mana)),
            ("skills_unlocked", value::strings(skills_unlocked)),
            ("gold_reward", value::long_u64(*gold_reward)),
            ("leveled_at", value::timestamp(*leveled_at)),
        ],
        E::ZoneEntered {
            from_zone,
            to_zone,
            entered_at,
        } => vec![
            ("from_zone", value::string(from_zone)),
            ("to_zone", value::string(to_zone)),
            ("entered_at", value::timestamp(*entered_at)),
        ],
        E::NpcKilled {
            npc,
            zone,
            xp_reward,
            loot_left,
            killed_at,
        } => vec![
            ("npc", value::string(npc)),
            ("zone", value::string(zone)),
            ("xp_reward", value::int_u32(*xp_reward)),
            ("loot_left", value::array(loot_left.iter().map(item_stack))),
            ("killed_at", value::timestamp(*killed_at)),
        ],
        E::DamageTaken {
            attacker,
            cause,
            skill,
            amount,
            damage,
            hp_before,
            hp_after,
            zone,
            taken_at,
        } => vec![
            ("attacker", value::string(&attacker.to_string())),
            ("cause", value::string(cause)),
            ("skill", value::string(skill)),
            ("amount", value::int_u32(*amount)),
            ("damage", value::int_u32(*damage)),
            ("hp_before", value::int_u32(*hp_before)),
            ("hp_after", value::int_u32(*hp_after)),
            ("zone", value::string(zone)),
            ("taken_at", value::timestamp(*taken_at)),
        ],
        E::AttackMissed {
            attacker,
            cause,
            skill,
            reason,
            zone,
            missed_at,
        } => vec![
            ("attacker", value::string(&attacker.to_string())),
            ("cause", value::string(cause)),
            ("skill", value::string(skill)),
            ("reason", value::string(reason.as_str())),
            ("zone", value::string(zone)),
            ("missed_at", value::timestamp(*missed_at)),
        ],
        E::CharacterDied {
            killer,
            cause,
            zone,
            bounty_xp,
            died_at,
        } => vec![
            (
                "killer",
                value::opt_string(killer.map(|k| k.to_string()).as_deref()),
            ),
            ("cause", value::string(cause)),
            ("zone", value::string(zone)),
            ("bounty_xp", value::long_u64(*bounty_xp)),
            ("died_at", value::timestamp(*died_at)),
        ],
        E::CharacterRespawned {
            from_zone,
            zone,
            hp,
            mana,
            respawned_at,
        } => vec![
            ("from_zone", value::string(from_zone)),
            ("zone", value::string(zone)),
            ("hp", value::int_u32(*hp)),
            ("mana", value::int_u32(*mana)),
            ("respawned_at", value::timestamp(*respawned_at)),
        ],
        E::ItemsAcquired {
            items,
            source,
            acquired_at,
        } => vec![
            ("items", value::array(items.iter().map(item_change))),
            ("source", value::string(source)),
            ("acquired_at", value::timestamp(*acquired_at)),
        ],
        E::ItemUsed {
            item,
            quantity_after,
            hp_before,
            hp_after,
            mana_before,
            mana_after,
            used_at,
        } => vec![
            ("item", value::string(item)),
            ("quantity_after", value::int_u32(*quantity_after)),
            ("hp_before", value::int_u32(*hp_before)),
            ("hp_after", value::int_u32(*hp_after)),
            ("mana_before", value::int_u32(*mana_before)),
            ("mana_after", value::int_u32(*mana_after)),
            ("used_at", value::timestamp(*used_at)),
        ],
        E::ItemDestroyed {
            item,
            quantity,
            quantity_after,
            destroyed_at,
        } => vec![
            ("item", value::string(item)),
            ("quantity", value::int_u32(*quantity)),
            ("quantity_after", value::int_u32(*quantity_after)),
            ("destroyed_at", value::timestamp(*destroyed_at)),
        ],
        E::ItemCrafted {
            recipe,
            consumed,
            produced,
            crafted_at,
        } => vec![
            ("recipe", value::string(recipe)),
            ("consumed", value::array(consumed.iter().map(item_change))),
            ("produced", item_change(produced)),
            ("crafted_at", value::timestamp(*crafted_at)),
        ],
        E::ItemEquipped {
            item,
            slot,
            quantity_after,
            replaced,
            max_hp,
            max_mana,
            hp,
            mana,
            equipped_at,
        } => vec![
            ("item", value::string(item)),
            ("slot", value::string(slot.as_str())),
            ("quantity_after", value::int_u32(*quantity_after)),
            (
                "replaced",
                value::opt_union(replaced.as_ref().map(|c| (1, item_change(c)))),
            ),
            ("max_hp", value::int_u32(*max_hp)),
            ("max_mana", value::int_u32(*max_mana)),
            ("hp", value::int_u32(*hp)),
            ("mana", value::int_u32(*mana)),
            ("equipped_at", value::timestamp(*equipped_at)),
        ],
        E::ItemUnequipped {
            item,
            slot,
            quantity_after,
            max_hp,
            max_mana,
            hp,
            mana,
            unequipped_at,
        } => vec![
            ("item", value::string(item)),
            ("slot", value::string(slot.as_str())),
            ("quantity_after", value::int_u32(*quantity_after)),
            ("max_hp", value::int_u32(*max_hp)),
            ("max_mana", value::int_u32(*max_mana)),
            ("hp", value::int_u32(*hp)),
            ("mana", value::int_u32(*mana)),
            ("unequipped_at", value::timestamp(*unequipped_at)),
        ],
    }
}

/// Takes the event's own fields out of `f` (the `envelope` is already taken).
fn from_fields(event_type: &str, f: &mut Fields) -> Result<CharacterEvent> {
    use CharacterEvent as E;
    Ok(match event_type {
        "CharacterCreated" => E::CharacterCreated {
            owner: {
                let s = f.string("owner")?;
                AccountId::parse(&s)
                    .map_err(|e| Error::field(f.record(), "owner", e.to_string()))?
            },
            name: {
                let s = f.string("name")?;
                CharacterName::parse(&s)
                    .map_err(|e| Error::field(f.record(), "name", e.to_string()))?
            },
            class: f.string("class")?,
            level: f.int_u8("level")?,
            max_hp: f.int_u32("max_hp")?,
            max_mana: f.int_u32("max_mana")?,
            zone: f.string("zone")?,
            skills: f.strings("skills")?,
            created_at: f.timestamp("created_at")?,
        },
        "SkillCast" => E::SkillCast {
            skill: f.string("skill")?,
            target: f.opt_string("target")?,
            hit: take_cast_hit(f)?,
            zone: f.string("zone")?,
            mana_before: f.int_u32("mana_before")?,
            mana_cost: f.int_u32("mana_cost")?,
            mana_after: f.int_u32("mana_after")?,
            damage: f.int_u32("damage")?,
            cooldown_until: f.timestamp("cooldown_until")?,
            cast_at: f.timestamp("cast_at")?,
        },
        "ExperienceGained" => E::ExperienceGained {
            amount: f.long_u64("amount")?,
            total_xp: f.long_u64("total_xp")?,
            source: f.string("source")?,
            gained_at: f.timestamp("gained_at")?,
        },
        "LeveledUp" => E::LeveledUp {
            level: f.int_u8("level")?,
            max_hp: f.int_u32("max_hp")?,
            max_mana: f.int_u32("max_mana")?,
            skills_unlocked: f.strings("skills_unlocked")?,
            gold_reward: f.long_u64("gold_reward")?,
            leveled_at: f.timestamp("leveled_at")?,
        },
        "ZoneEntered" => E::ZoneEntered {
            from_zone: f.string("from_zone")?,
            to_zone: f.string("to_zone")?,
            entered_at: f.timestamp("entered_at")?,
        },
        "NpcKilled" => E::NpcKilled {
            npc: f.string("npc")?,
            zone: f.string("zone")?,
            xp_reward: f.int_u32("xp_reward")?,
            loot_left: f
                .records("loot_left")?
                .into_iter()
                .map(take_item_stack)
                .collect::<Result<_>>()?,
            killed_at: f.timestamp("killed_at")?,
        },
        "DamageTaken" => E::DamageTaken {
            attacker: character_id(f, "attacker")?,
            cause: f.string("cause")?,
            skill: f.string("skill")?,
            amount: f.int_u32("amount")?,
            damage: f.int_u32("damage")?,
            hp_before: f.int_u32("hp_before")?,
            hp_after: f.int_u32("hp_after")?,
            zone: f.string("zone")?,
            taken_at: f.timestamp("taken_at")?,
        },
        "AttackMissed" => E::AttackMissed {
            attacker: character_id(f, "attacker")?,
            cause: f.string("cause")?,
            skill: f.string("skill")?,
            reason: {
                let s = f.string("reason")?;
                MissReason::parse(&s).ok_or_else(|| {
                    Error::field(f.record(), "reason", format!("unknown reason {s:?}"))
                })?
            },
            zone: f.string("zone")?,
            missed_at: f.timestamp("missed_at")?,
        },
        "CharacterDied" => E::CharacterDied {
            killer: match f.opt_string("killer")? {
                None => None,
                Some(s) => Some(
                    CharacterId::parse(&s)
                        .map_err(|e| Error::field(f.record(), "killer", e.to_string()))?,
                ),
            },
            cause: f.string("cause")?,
            zone: f.string("zone")?,
            bounty_xp: f.long_u64("bounty_xp")?,
            died_at: f.timestamp("died_at")?,
        },
        "CharacterRespawned" => E::CharacterRespawned {
            from_zone: f.string("from_zone")?,
            zone: f.string("zone")?,
            hp: f.int_u32("hp")?,
            mana: f.int_u32("mana")?,
            respawned_at: f.timestamp("respawned_at")?,
        },
        "ItemsAcquired" => E::ItemsAcquired {
            items: f
                .records("items")?
                .into_iter()
                .map(take_item_change)
                .collect::<Result<_>>()?,
            source: f.string("source")?,
            acquired_at: f.timestamp("acquired_at")?,
        },
        "ItemUsed" => E::ItemUsed {
            item: f.string("item")?,
            quantity_after: f.int_u32("quantity_after")?,
            hp_before: f.int_u32("hp_before")?,
            hp_after: f.int_u32("hp_after")?,
            mana_before: f.int_u32("mana_before")?,
            mana_after: f.int_u32("mana_after")?,
            used_at: f.timestamp("used_at")?,
        },
        "ItemDestroyed" => E::ItemDestroyed {
            item: f.string("item")?,
            quantity: f.int_u32("quantity")?,
            quantity_after: f.int_u32("quantity_after")?,
            destroyed_at: f.timestamp("destroyed_at")?,
        },
        "ItemCrafted" => E::ItemCrafted {
            recipe: f.string("recipe")?,
            consumed: f
                .records("consumed")?
                .into_iter()
                .map(take_item_change)
                .collect::<Result<_>>()?,
            produced: take_item_change(f.record_field("produced")?)?,
            crafted_at: f.timestamp("crafted_at")?,
        },
        "ItemEquipped" => E::ItemEquipped {
            item: f.string("item")?,
            slot: slot(f)?,
            quantity_after: f.int_u32("quantity_after")?,
            replaced: match f.opt_union_record("replaced")? {
                None => None,
                Some((_, record)) => Some(take_item_change(record)?),
            },
            max_hp: f.int_u32("max_hp")?,
            max_mana: f.int_u32("max_mana")?,
            hp: f.int_u32("hp")?,
            mana: f.int_u32("mana")?,
            equipped_at: f.timestamp("equipped_at")?,
        },
        "ItemUnequipped" => E::ItemUnequipped {
            item: f.string("item")?,
            slot: slot(f)?,
            quantity_after: f.int_u32("quantity_after")?,
            max_hp: f.int_u32("max_hp")?,
            max_mana: f.int_u32("max_mana")?,
            hp: f.int_u32("hp")?,
            mana: f.int_u32("mana")?,
            unequipped_at: f.timestamp("unequipped_at")?,
        },
        other => {
            return Err(Error::UnknownEventType {
                aggregate_type: chaos_domain::character::AGGREGATE_TYPE.to_owned(),
                event_type: other.to_owned(),
            })
        }
    })
}

fn character_id(f: &mut Fields, name: &str) -> Result<CharacterId> {
    let s = f.string(name)?;
    CharacterId::parse(&s).map_err(|e| Error::field(f.record(), name, e.to_string()))
}

fn slot(f: &mut Fields) -> Result<Slot> {
    let s = f.string("slot")?;
    Slot::parse(&s).ok_or_else(|| Error::field(f.record(), "slot", format!("unknown slot {s:?}")))
}

/// `chaos.character.ItemChange`.
fn item_change(c: &ItemChange) -> Value {
    value::record(vec![
        ("item", value::string(&c.item)),
        ("quantity", value::int_u32(c.quantity)),
        ("quantity_after", value::int_u32(c.quantity_after)),
    ])
}

fn take_item_change(mut f: Fields) -> Result<ItemChange> {
    let change = ItemChange {
        item: f.string("item")?,
        quantity: f.int_u32("quantity")?,
        quantity_after: f.int_u32("quantity_after")?,
    };
    f.finish()?;
    Ok(change)
}

/// `chaos.character.ItemStack`.
fn item_stack(s: &ItemStack) -> Value {
    value::record(vec![
        ("item", value::string(&s.item)),
        ("quantity", value::int_u32(s.quantity)),
    ])
}

fn take_item_stack(mut f: Fields) -> Result<ItemStack> {
    let stack = ItemStack {
        item: f.string("item")?,
        quantity: f.int_u32("quantity")?,
    };
    f.finish()?;
    Ok(stack)
}

/// `SkillCast.hit`: `["null", chaos.character.NpcHit, chaos.character.CharacterHit]`. Published:
/// append branches only, never reorder them.
const NPC_HIT: u32 = 1;
const CHARACTER_HIT: u32 = 2;

fn cast_hit(hit: &CastHit) -> (u32, Value) {
    match hit {
        CastHit::Npc {
            npc,
            hp_before,
            damage,
            hp_after,
        } => (
            NPC_HIT,
            value::record(vec![
                ("npc", value::string(npc)),
                ("hp_before", value::int_u32(*hp_before)),
                ("damage", value::int_u32(*damage)),
                ("hp_after", value::int_u32(*hp_after)),
            ]),
        ),
        CastHit::Character { id } => (
            CHARACTER_HIT,
            value::record(vec![("character", value::string(&id.to_string()))]),
        ),
    }
}

fn take_cast_hit(f: &mut Fields) -> Result<Option<CastHit>> {
    let Some((branch, mut r)) = f.opt_union_record("hit")? else {
        return Ok(None);
    };
    let hit = match branch {
        NPC_HIT => CastHit::Npc {
            npc: r.string("npc")?,
            hp_before: r.int_u32("hp_before")?,
            damage: r.int_u32("damage")?,
            hp_after: r.int_u32("hp_after")?,
        },
        CHARACTER_HIT => CastHit::Character {
            id: character_id(&mut r, "character")?,
        },
        other => {
            return Err(Error::field(
                f.record(),
                "hit",
                format!("unknown union branch {other}"),
            ))
        }
    };
    r.finish()?;
    Ok(Some(hit))
}
