use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::CharacterEvent;
use crate::ids::{AccountId, CharacterName};

/// A created character's state, as folded from its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharacterState {
    pub owner: AccountId,
    pub name: CharacterName,
    pub class: String,
    pub level: u8,
    pub xp: u64,
    pub hp: u32,
    pub max_hp: u32,
    /// Mana as of `mana_as_of`; regeneration since then is applied when the next rule needs it.
    pub mana: u32,
    pub max_mana: u32,
    pub mana_as_of: DateTime<Utc>,
    pub zone: String,
    pub skills: BTreeSet<String>,
    /// Skill -> the instant it can be cast again. Entries in the past are harmless.
    pub cooldowns: BTreeMap<String, DateTime<Utc>>,
}

impl CharacterState {
    /// Folds one event into an existing character. Infallible: events are facts.
    pub fn apply(&mut self, event: CharacterEvent) {
        match event {
            CharacterEvent::CharacterCreated { .. } => {}
            CharacterEvent::SkillCast {
                skill,
                mana_after,
                cooldown_until,
                cast_at,
                ..
            } => {
                self.mana = mana_after;
                self.mana_as_of = cast_at;
                self.cooldowns.insert(skill, cooldown_until);
            }
            CharacterEvent::ExperienceGained { total_xp, .. } => self.xp = total_xp,
            CharacterEvent::LeveledUp {
                level,
                max_hp,
                max_mana,
                skills_unlocked,
                leveled_at,
                ..
            } => {
                self.level = level;
                self.max_hp = max_hp;
                self.hp = max_hp;
                self.max_mana = max_mana;
                self.mana = max_mana;
                self.mana_as_of = leveled_at;
                self.skills.extend(skills_unlocked);
            }
            CharacterEvent::ZoneEntered { to_zone, .. } => self.zone = to_zone,
        }
    }

    /// The state a `CharacterCreated` starts; `None` for any other event.
    pub fn created(event: CharacterEvent) -> Option<Self> {
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
            } => Some(Self {
                owner,
                name,
                class,
                level,
                xp: 0,
                hp: max_hp,
                max_hp,
                mana: max_mana,
                max_mana,
                mana_as_of: created_at,
                zone,
                skills: skills.into_iter().collect(),
                cooldowns: BTreeMap::new(),
            }),
            _ => None,
        }
    }
}
