//! PvP across two characters, as pure event → command mappings for a process manager: the
//! decisions stay in the aggregates, these only say which command an event calls for and on
//! which character. Feed each with the event's aggregate id (the character it happened to) and
//! the event's id (its envelope's `event_id`, the cause each command records and refuses twice).
//!
//! 1. An attacker's `SkillCast` that hit a character → [`damage_for_victim`] →
//!    `TakeDamage` on the victim (its decision: `DamageTaken`, maybe `CharacterDied`, or a
//!    harmless `AttackMissed`).
//! 2. A victim's `CharacterDied` with a killer → [`reward_for_killer`] → `AwardKill` on the killer
//!    (its decision: `ExperienceGained`, maybe `LeveledUp`).
//!
//! A hit on oneself maps to nothing: a character cannot damage, kill or reward itself.

use super::{CastHit, CharacterCommand, CharacterEvent, MAX_DAMAGE, MAX_GRANT};
use crate::ids::CharacterId;

/// Step 1: the damage command `event` (on `attacker`) calls for, and the victim to send it to.
pub fn damage_for_victim(
    attacker: CharacterId,
    cause_event_id: &str,
    event: &CharacterEvent,
) -> Option<(CharacterId, CharacterCommand)> {
    match event {
        CharacterEvent::SkillCast {
            skill,
            hit: Some(CastHit::Character { id }),
            zone,
            damage,
            ..
        } if *id != attacker && *damage > 0 => Some((
            *id,
            CharacterCommand::TakeDamage {
                attacker,
                cause: cause_event_id.to_owned(),
                skill: skill.clone(),
                amount: (*damage).min(MAX_DAMAGE),
                attacker_zone: zone.clone(),
            },
        )),
        _ => None,
    }
}

/// Step 2: the bounty command `event` (on `victim`) calls for, and the killer to send it to.
pub fn reward_for_killer(
    victim: CharacterId,
    cause_event_id: &str,
    event: &CharacterEvent,
) -> Option<(CharacterId, CharacterCommand)> {
    match event {
        CharacterEvent::CharacterDied {
            killer: Some(killer),
            bounty_xp,
            ..
        } if *killer != victim && *bounty_xp > 0 => Some((
            *killer,
            CharacterCommand::AwardKill {
                victim,
                cause: cause_event_id.to_owned(),
                xp: (*bounty_xp).min(MAX_GRANT),
            },
        )),
        _ => None,
    }
}
