//! The command dispatch, and the rules every part shares: ownership, life, derived stats,
//! regeneration, experience.

use chrono::{DateTime, Utc};

use super::{
    combat, inventory, Character, CharacterCommand, CharacterError, CharacterEvent, CharacterState,
    MAX_GRANT, MAX_LABEL,
};
use crate::aggregate::Ctx;
use crate::content::Content;
use crate::ids::AccountId;
use crate::stats::{regenerated, Stats};

impl Character {
    /// Validates `command` against the current state and the rules; returns the events that
    /// record what happened. Pure: `ctx` (its instant already at millisecond precision, its
    /// dice, its content) is the only source of time, chance and content.
    pub(crate) fn decide_at(
        &self,
        command: CharacterCommand,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<CharacterEvent>, CharacterError> {
        use CharacterCommand as C;
        match command {
            C::Create { owner, name, class } => {
                if self.state().is_some() {
                    return Err(CharacterError::AlreadyExists);
                }
                let def = ctx
                    .content
                    .classes
                    .get(&class)
                    .ok_or_else(|| CharacterError::UnknownClass(class.clone()))?;
                Ok(vec![CharacterEvent::CharacterCreated {
                    owner,
                    name,
                    level: 1,
                    max_hp: def.max_hp(1),
                    max_mana: def.max_mana(1),
                    zone: ctx.content.progression.starting_zone.clone(),
                    skills: def.starting_skills.clone(),
                    class,
                    created_at: ctx.now,
                }])
            }
            C::CastSkill {
                actor,
                skill,
                target,
            } => combat::cast_skill(self.alive_owned_by(actor)?, ctx, skill, target),
            C::TravelTo { actor, zone } => travel(self.alive_owned_by(actor)?, ctx, zone),
            C::Respawn { actor } => combat::respawn(self.owned_by(actor)?, ctx),
            C::UseItem { actor, item } => {
                inventory::use_item(self.alive_owned_by(actor)?, ctx, item)
            }
            C::EquipItem { actor, item, slot } => {
                inventory::equip(self.alive_owned_by(actor)?, ctx, item, slot)
            }
            C::UnequipItem { actor, slot } => {
                inventory::unequip(self.alive_owned_by(actor)?, ctx, slot)
            }
            C::DestroyItem {
                actor,
                item,
                quantity,
            } => inventory::destroy(self.alive_owned_by(actor)?, ctx, item, quantity),
            C::Craft { actor, recipe } => {
                inventory::craft(self.alive_owned_by(actor)?, ctx, recipe)
            }
            C::GrantExperience { amount, source } => {
                let state = self.state().ok_or(CharacterError::NotFound)?;
                if amount == 0 || amount > MAX_GRANT {
                    return Err(CharacterError::InvalidExperienceAmount);
                }
                Progress::of(state).gain(state, ctx, amount, source)
            }
            C::GrantItem {
                item,
                quantity,
                source,
            } => {
                let state = self.state().ok_or(CharacterError::NotFound)?;
                inventory::grant(state, ctx, item, quantity, source)
            }
            C::TakeDamage {
                attacker,
                cause,
                skill,
                amount,
                attacker_zone,
            } => {
                let state = self.state().ok_or(CharacterError::NotFound)?;
                combat::take_damage(state, ctx, attacker, cause, skill, amount, attacker_zone)
            }
            C::AwardKill { victim, cause, xp } => {
                let state = self.state().ok_or(CharacterError::NotFound)?;
                combat::award_kill(state, ctx, victim, cause, xp)
            }
        }
    }

    fn owned_by(&self, actor: AccountId) -> Result<&CharacterState, CharacterError> {
        let state = self.state().ok_or(CharacterError::NotFound)?;
        if state.owner != actor {
            return Err(CharacterError::NotOwner);
        }
        Ok(state)
    }

    /// Every player command but `Respawn` needs a living character.
    fn alive_owned_by(&self, actor: AccountId) -> Result<&CharacterState, CharacterError> {
        let state = self.owned_by(actor)?;
        if !state.alive() {
            return Err(CharacterError::CharacterDead);
        }
        Ok(state)
    }
}

fn travel(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    zone: String,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    let def = ctx
        .content
        .zones
        .get(&zone)
        .ok_or_else(|| CharacterError::UnknownZone(zone.clone()))?;
    if state.zone == zone {
        return Err(CharacterError::AlreadyInZone(zone));
    }
    if state.level < def.min_level {
        return Err(CharacterError::ZoneLevelTooLow {
            zone,
            min_level: def.min_level,
        });
    }
    if state.level > def.max_level {
        return Err(CharacterError::ZoneLevelTooHigh {
            zone,
            max_level: def.max_level,
        });
    }
    Ok(vec![CharacterEvent::ZoneEntered {
        from_zone: state.zone.clone(),
        to_zone: zone,
        entered_at: ctx.now,
    }])
}

/// The character's derived stats under the current content.
pub(super) fn stats(state: &CharacterState, content: &Content) -> Result<Stats, CharacterError> {
    content
        .stats_of(&state.class, state.level, state.equipment.values())
        .ok_or_else(|| CharacterError::ContentUnavailable {
            kind: "class",
            id: state.class.clone(),
        })
}

/// Hit points at `now` (0 while dead: the dead do not regenerate).
pub(super) fn hp_at(state: &CharacterState, stats: &Stats, now: DateTime<Utc>) -> u32 {
    if !state.alive() {
        return 0;
    }
    regenerated(
        state.hp,
        state.hp_as_of,
        stats.hp_regen_per_sec,
        stats.max_hp,
        now,
    )
}

/// Mana at `now`.
pub(super) fn mana_at(state: &CharacterState, stats: &Stats, now: DateTime<Utc>) -> u32 {
    regenerated(
        state.mana,
        state.mana_as_of,
        stats.mana_regen_per_sec,
        stats.max_mana,
        now,
    )
}

/// A free-text label: 1 to [`MAX_LABEL`] characters, none of them control characters.
pub(super) fn label(field: &'static str, value: &str) -> Result<(), CharacterError> {
    if value.is_empty() || value.chars().count() > MAX_LABEL || value.chars().any(char::is_control)
    {
        return Err(CharacterError::InvalidLabel {
            field,
            max: MAX_LABEL,
        });
    }
    Ok(())
}

/// Experience and level as events accumulate within one decision (a cast can grant the
/// skill's experience and a kill's).
#[derive(Debug, Clone, Copy)]
pub(super) struct Progress {
    xp: u64,
    level: u8,
}

impl Progress {
    pub(super) fn of(state: &CharacterState) -> Self {
        Self {
            xp: state.xp,
            level: state.level,
        }
    }

    /// `ExperienceGained`, then one `LeveledUp` per level crossed. Nothing at the level cap.
    pub(super) fn gain(
        &mut self,
        state: &CharacterState,
        ctx: &Ctx<'_>,
        amount: u64,
        source: String,
    ) -> Result<Vec<CharacterEvent>, CharacterError> {
        let content = ctx.content;
        if self.level >= content.progression.max_level || amount == 0 {
            return Ok(Vec::new());
        }
        let total_xp = self.xp.saturating_add(amount);
        let mut events = vec![CharacterEvent::ExperienceGained {
            amount,
            total_xp,
            source,
            gained_at: ctx.now,
        }];
        for level in self.level + 1..=content.level_for_xp(total_xp) {
            let stats = content
                .stats_of(&state.class, level, state.equipment.values())
                .ok_or_else(|| CharacterError::ContentUnavailable {
                    kind: "class",
                    id: state.class.clone(),
                })?;
            events.push(CharacterEvent::LeveledUp {
                level,
                max_hp: stats.max_hp,
                max_mana: stats.max_mana,
                skills_unlocked: content.skills_unlocked_at(&state.class, level),
                gold_reward: content.gold_reward(level),
                leveled_at: ctx.now,
            });
            self.level = level;
        }
        self.xp = total_xp;
        Ok(events)
    }
}
