//! `character` events <-> the fields of their `chaos.character.*` records.
//!
//! Written by hand against the `.avsc` files, field by field: the schemas are the contract, and a
//! change to the Rust enum must not silently change what is published.

use apache_avro::types::Value;
use chaos_domain::{AccountId, CharacterEvent, CharacterName};

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
    match event {
        CharacterEvent::CharacterCreated {
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
        CharacterEvent::SkillCast {
            skill,
            target,
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
            ("zone", value::string(zone)),
            ("mana_before", value::int_u32(*mana_before)),
            ("mana_cost", value::int_u32(*mana_cost)),
            ("mana_after", value::int_u32(*mana_after)),
            ("damage", value::int_u32(*damage)),
            ("cooldown_until", value::timestamp(*cooldown_until)),
            ("cast_at", value::timestamp(*cast_at)),
        ],
        CharacterEvent::ExperienceGained {
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
        CharacterEvent::LeveledUp {
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
        CharacterEvent::ZoneEntered {
            from_zone,
            to_zone,
            entered_at,
        } => vec![
            ("from_zone", value::string(from_zone)),
            ("to_zone", value::string(to_zone)),
            ("entered_at", value::timestamp(*entered_at)),
        ],
    }
}

/// Takes the event's own fields out of `f` (the `envelope` is already taken).
fn from_fields(event_type: &str, f: &mut Fields) -> Result<CharacterEvent> {
    Ok(match event_type {
        "CharacterCreated" => CharacterEvent::CharacterCreated {
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
        "SkillCast" => CharacterEvent::SkillCast {
            skill: f.string("skill")?,
            target: f.opt_string("target")?,
            zone: f.string("zone")?,
            mana_before: f.int_u32("mana_before")?,
            mana_cost: f.int_u32("mana_cost")?,
            mana_after: f.int_u32("mana_after")?,
            damage: f.int_u32("damage")?,
            cooldown_until: f.timestamp("cooldown_until")?,
            cast_at: f.timestamp("cast_at")?,
        },
        "ExperienceGained" => CharacterEvent::ExperienceGained {
            amount: f.long_u64("amount")?,
            total_xp: f.long_u64("total_xp")?,
            source: f.string("source")?,
            gained_at: f.timestamp("gained_at")?,
        },
        "LeveledUp" => CharacterEvent::LeveledUp {
            level: f.int_u8("level")?,
            max_hp: f.int_u32("max_hp")?,
            max_mana: f.int_u32("max_mana")?,
            skills_unlocked: f.strings("skills_unlocked")?,
            gold_reward: f.long_u64("gold_reward")?,
            leveled_at: f.timestamp("leveled_at")?,
        },
        "ZoneEntered" => CharacterEvent::ZoneEntered {
            from_zone: f.string("from_zone")?,
            to_zone: f.string("to_zone")?,
            entered_at: f.timestamp("entered_at")?,
        },
        other => {
            return Err(Error::UnknownEventType {
                aggregate_type: chaos_domain::character::AGGREGATE_TYPE.to_owned(),
                event_type: other.to_owned(),
            })
        }
    })
}
