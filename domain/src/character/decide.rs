use chrono::{DateTime, Duration, Utc};

use super::{Character, CharacterCommand, CharacterError, CharacterEvent, CharacterState};
use crate::content::Content;
use crate::ids::AccountId;
use crate::ports::Dice;

/// Experience a single grant may carry; larger values are a caller's mistake or abuse.
const MAX_GRANT: u64 = 1_000_000;

impl Character {
    /// Validates `command` against the current state and the rules; returns the events that
    /// record what happened. Pure: `now` (already at millisecond precision) and `dice` are the
    /// only sources of time and chance.
    pub(crate) fn decide_at(
        &self,
        command: CharacterCommand,
        content: &Content,
        now: DateTime<Utc>,
        dice: &dyn Dice,
    ) -> Result<Vec<CharacterEvent>, CharacterError> {
        match command {
            CharacterCommand::Create { owner, name, class } => {
                if self.state().is_some() {
                    return Err(CharacterError::AlreadyExists);
                }
                let def = content
                    .classes
                    .get(&class)
                    .ok_or_else(|| CharacterError::UnknownClass(class.clone()))?;
                Ok(vec![CharacterEvent::CharacterCreated {
                    owner,
                    name,
                    level: 1,
                    max_hp: def.max_hp(1),
                    max_mana: def.max_mana(1),
                    zone: content.progression.starting_zone.clone(),
                    skills: def.starting_skills.clone(),
                    class,
                    created_at: now,
                }])
            }
            CharacterCommand::CastSkill {
                actor,
                skill,
                target,
            } => {
                let state = self.owned_by(actor)?;
                cast_skill(state, content, now, dice, skill, target)
            }
            CharacterCommand::TravelTo { actor, zone } => {
                let state = self.owned_by(actor)?;
                let def = content
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
                Ok(vec![CharacterEvent::ZoneEntered {
                    from_zone: state.zone.clone(),
                    to_zone: zone,
                    entered_at: now,
                }])
            }
            CharacterCommand::GrantExperience { amount, source } => {
                let state = self.state().ok_or(CharacterError::NotFound)?;
                if amount == 0 || amount > MAX_GRANT {
                    return Err(CharacterError::InvalidExperienceAmount);
                }
                Ok(experience(state, content, amount, source, now))
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
}

fn cast_skill(
    state: &CharacterState,
    content: &Content,
    now: DateTime<Utc>,
    dice: &dyn Dice,
    skill: String,
    target: Option<String>,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    let def = content
        .skills
        .get(&skill)
        .ok_or_else(|| CharacterError::UnknownSkill(skill.clone()))?;
    if !state.skills.contains(&skill) {
        return Err(CharacterError::SkillNotKnown(skill));
    }
    if let Some(ready_at) = state.cooldowns.get(&skill).filter(|t| **t > now) {
        return Err(CharacterError::SkillOnCooldown {
            skill,
            ready_at: *ready_at,
        });
    }
    let zone = &content.zones[&state.zone];
    if def.offensive && !zone.offensive_skills_allowed {
        return Err(CharacterError::ZoneForbidsSkill {
            zone: state.zone.clone(),
        });
    }
    let mana_before = regenerated_mana(state, content, now);
    if mana_before < def.mana_cost {
        return Err(CharacterError::InsufficientMana {
            needed: def.mana_cost,
            available: mana_before,
        });
    }
    let damage = if def.offensive {
        dice.roll(def.damage[0], def.damage[1])
    } else {
        0
    };
    let mut events = vec![CharacterEvent::SkillCast {
        zone: state.zone.clone(),
        mana_before,
        mana_cost: def.mana_cost,
        mana_after: mana_before - def.mana_cost,
        damage,
        cooldown_until: now + Duration::milliseconds(i64::from(def.cooldown_ms)),
        cast_at: now,
        skill: skill.clone(),
        target,
    }];
    if def.xp_reward > 0 {
        let source = format!("skill:{skill}");
        events.extend(experience(
            state,
            content,
            u64::from(def.xp_reward),
            source,
            now,
        ));
    }
    Ok(events)
}

/// Mana at `now`: the stored value plus the class's regeneration since `mana_as_of`, capped.
fn regenerated_mana(state: &CharacterState, content: &Content, now: DateTime<Utc>) -> u32 {
    let rate = content
        .classes
        .get(&state.class)
        .map_or(0, |c| u64::from(c.mana_regen_per_sec));
    let elapsed_ms = u64::try_from((now - state.mana_as_of).num_milliseconds()).unwrap_or(0);
    let gained = rate.saturating_mul(elapsed_ms) / 1000;
    let mana = u64::from(state.mana)
        .saturating_add(gained)
        .min(u64::from(state.max_mana));
    u32::try_from(mana).unwrap_or(state.max_mana)
}

/// `ExperienceGained`, then one `LeveledUp` per level crossed. Nothing at the level cap.
fn experience(
    state: &CharacterState,
    content: &Content,
    amount: u64,
    source: String,
    now: DateTime<Utc>,
) -> Vec<CharacterEvent> {
    if state.level >= content.progression.max_level {
        return Vec::new();
    }
    let total_xp = state.xp.saturating_add(amount);
    let mut events = vec![CharacterEvent::ExperienceGained {
        amount,
        total_xp,
        source,
        gained_at: now,
    }];
    let class = &content.classes[&state.class];
    for level in state.level + 1..=content.level_for_xp(total_xp) {
        events.push(CharacterEvent::LeveledUp {
            level,
            max_hp: class.max_hp(level),
            max_mana: class.max_mana(level),
            skills_unlocked: content.skills_unlocked_at(&state.class, level),
            gold_reward: content.gold_reward(level),
            leveled_at: now,
        });
    }
    events
}
