//! The character sheet: what a client shows of a character. Built only from the events' facts.

use std::collections::{BTreeMap, BTreeSet};

use chaos_domain::CharacterEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Read-model collection name; part of Redis keys: do not change without a rebuild.
pub const COLLECTION: &str = "character";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharacterSheet {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub class: String,
    pub level: u8,
    pub xp: u64,
    pub hp: u32,
    pub max_hp: u32,
    pub mana: u32,
    pub max_mana: u32,
    pub mana_as_of: DateTime<Utc>,
    pub zone: String,
    pub skills: BTreeSet<String>,
    pub cooldowns: BTreeMap<String, DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectionError {
    #[error("{event_type} for a character that was never created")]
    NotCreated { event_type: &'static str },
    #[error("CharacterCreated for a character that already exists")]
    AlreadyCreated,
}

/// Folds one event into the sheet.
pub fn apply(
    sheet: Option<CharacterSheet>,
    aggregate_id: &str,
    event: &CharacterEvent,
) -> Result<CharacterSheet, ProjectionError> {
    let mut sheet = match (sheet, event) {
        (
            None,
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
            },
        ) => {
            return Ok(CharacterSheet {
                id: aggregate_id.to_owned(),
                owner: owner.to_string(),
                name: name.to_string(),
                class: class.clone(),
                level: *level,
                xp: 0,
                hp: *max_hp,
                max_hp: *max_hp,
                mana: *max_mana,
                max_mana: *max_mana,
                mana_as_of: *created_at,
                zone: zone.clone(),
                skills: skills.iter().cloned().collect(),
                cooldowns: BTreeMap::new(),
                updated_at: *created_at,
            })
        }
        (Some(_), CharacterEvent::CharacterCreated { .. }) => {
            return Err(ProjectionError::AlreadyCreated)
        }
        (None, other) => {
            return Err(ProjectionError::NotCreated {
                event_type: other.type_name(),
            })
        }
        (Some(sheet), _) => sheet,
    };
    match event {
        CharacterEvent::CharacterCreated { .. } => {}
        CharacterEvent::SkillCast {
            skill,
            mana_after,
            cooldown_until,
            cast_at,
            ..
        } => {
            sheet.mana = *mana_after;
            sheet.mana_as_of = *cast_at;
            sheet.cooldowns.insert(skill.clone(), *cooldown_until);
        }
        CharacterEvent::ExperienceGained { total_xp, .. } => sheet.xp = *total_xp,
        CharacterEvent::LeveledUp {
            level,
            max_hp,
            max_mana,
            skills_unlocked,
            leveled_at,
        } => {
            sheet.level = *level;
            sheet.max_hp = *max_hp;
            sheet.hp = *max_hp;
            sheet.max_mana = *max_mana;
            sheet.mana = *max_mana;
            sheet.mana_as_of = *leveled_at;
            sheet.skills.extend(skills_unlocked.iter().cloned());
        }
        CharacterEvent::ZoneEntered { to_zone, .. } => sheet.zone = to_zone.clone(),
    }
    sheet.updated_at = event.occurred_at();
    Ok(sheet)
}

/// The read-model key of a character's sheet under `prefix` and read-model `version` (`v1`):
/// a rebuild writes a new version and the alias switches atomically.
pub fn key(prefix: &str, model_version: &str, aggregate_id: &str) -> String {
    format!("{prefix}{model_version}:{COLLECTION}:{aggregate_id}")
}
