use chrono::{DateTime, Utc};
use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::aggregate::{EventType, GameEvent};
use crate::ids::{AccountId, CharacterName};

/// Facts about a character. Each carries what projections need, so no reader recomputes a rule.
///
/// The variant names are the persisted and published event types (`event_type()`), and the Avro
/// record names in `schemas/`: do not rename a variant once released; add a new one instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CharacterEvent {
    CharacterCreated {
        owner: AccountId,
        name: CharacterName,
        class: String,
        level: u8,
        max_hp: u32,
        max_mana: u32,
        zone: String,
        skills: Vec<String>,
        created_at: DateTime<Utc>,
    },
    SkillCast {
        skill: String,
        target: Option<String>,
        zone: String,
        /// Mana after regeneration up to `cast_at`, before paying the cost.
        mana_before: u32,
        mana_cost: u32,
        mana_after: u32,
        damage: u32,
        cooldown_until: DateTime<Utc>,
        cast_at: DateTime<Utc>,
    },
    ExperienceGained {
        amount: u64,
        total_xp: u64,
        source: String,
        gained_at: DateTime<Utc>,
    },
    LeveledUp {
        level: u8,
        max_hp: u32,
        max_mana: u32,
        /// Skills the new level unlocks for the character's class.
        skills_unlocked: Vec<String>,
        /// Gold the level grants (v2; level-ups stored as v1, before rewards existed, read as 0).
        gold_reward: u64,
        leveled_at: DateTime<Utc>,
    },
    ZoneEntered {
        from_zone: String,
        to_zone: String,
        entered_at: DateTime<Utc>,
    },
}

impl GameEvent for CharacterEvent {
    /// Versions: `LeveledUp` v2 added `gold_reward` (2026-11).
    const TYPES: &'static [EventType] = &[
        EventType {
            name: "CharacterCreated",
            version: 1,
        },
        EventType {
            name: "SkillCast",
            version: 1,
        },
        EventType {
            name: "ExperienceGained",
            version: 1,
        },
        EventType {
            name: "LeveledUp",
            version: 2,
        },
        EventType {
            name: "ZoneEntered",
            version: 1,
        },
    ];

    fn type_name(&self) -> &'static str {
        match self {
            Self::CharacterCreated { .. } => "CharacterCreated",
            Self::SkillCast { .. } => "SkillCast",
            Self::ExperienceGained { .. } => "ExperienceGained",
            Self::LeveledUp { .. } => "LeveledUp",
            Self::ZoneEntered { .. } => "ZoneEntered",
        }
    }

    fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::CharacterCreated { created_at: t, .. }
            | Self::SkillCast { cast_at: t, .. }
            | Self::ExperienceGained { gained_at: t, .. }
            | Self::LeveledUp { leveled_at: t, .. }
            | Self::ZoneEntered { entered_at: t, .. } => *t,
        }
    }

    fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
        vec![Box::new(SemanticVersionEventUpcaster::new(
            "LeveledUp",
            "2",
            Box::new(|mut payload| {
                // Level-ups before gold rewards existed granted nothing.
                if let Some(fields) = payload
                    .get_mut("LeveledUp")
                    .and_then(serde_json::Value::as_object_mut)
                {
                    fields
                        .entry("gold_reward")
                        .or_insert(serde_json::Value::from(0));
                }
                payload
            }),
        ))]
    }
}

impl DomainEvent for CharacterEvent {
    fn event_type(&self) -> String {
        self.type_name().to_owned()
    }

    fn event_version(&self) -> String {
        Self::current_version(self.type_name())
            .unwrap_or(1)
            .to_string()
    }
}
