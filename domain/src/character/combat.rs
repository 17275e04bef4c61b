//! Casting, at nothing, at an NPC or at another character; receiving another character's hit;
//! death, respawn and the killer's bounty. See the module documentation of `character` for how
//! PvP spans two aggregates.

use chrono::Duration;

use super::decide::{hp_at, label, mana_at, stats, Progress};
use super::inventory::Bag;
use super::{
    CastHit, CharacterError, CharacterEvent, CharacterState, ItemStack, MissReason, TargetRef,
    MAX_DAMAGE, MAX_GRANT,
};
use crate::aggregate::Ctx;
use crate::content::{NpcDef, Scaling};
use crate::ids::CharacterId;
use crate::stats::mitigate;

pub(super) fn cast_skill(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    skill: String,
    target: Option<TargetRef>,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    let (content, now) = (ctx.content, ctx.now);
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
    let zone =
        content
            .zones
            .get(&state.zone)
            .ok_or_else(|| CharacterError::ContentUnavailable {
                kind: "zone",
                id: state.zone.clone(),
            })?;
    if def.offensive && !zone.rules.offensive_skills {
        return Err(CharacterError::ZoneForbidsSkill {
            zone: state.zone.clone(),
        });
    }
    let npc: Option<(&String, &NpcDef)> = match &target {
        None => None,
        Some(_) if !def.offensive => {
            return Err(CharacterError::InvalidTarget(
                "only offensive skills are aimed at a target",
            ))
        }
        Some(TargetRef::Npc { npc }) => {
            let found = content
                .npcs
                .get_key_value(npc)
                .ok_or_else(|| CharacterError::UnknownNpc(npc.clone()))?;
            if !zone.npcs.contains(npc) {
                return Err(CharacterError::TargetNotInZone {
                    target: npc.clone(),
                    zone: state.zone.clone(),
                });
            }
            Some(found)
        }
        Some(TargetRef::Character {
            id,
            zone: target_zone,
            alive,
        }) => {
            if !alive {
                return Err(CharacterError::TargetDead(id.to_string()));
            }
            if *target_zone != state.zone {
                return Err(CharacterError::TargetNotInZone {
                    target: id.to_string(),
                    zone: state.zone.clone(),
                });
            }
            if !zone.rules.pvp {
                return Err(CharacterError::ZoneForbidsPvp {
                    zone: state.zone.clone(),
                });
            }
            None
        }
    };
    let stats = stats(state, content)?;
    let mana_before = mana_at(state, &stats, now);
    if mana_before < def.mana_cost {
        return Err(CharacterError::InsufficientMana {
            needed: def.mana_cost,
            available: mana_before,
        });
    }
    let damage = if def.offensive {
        let scaling = match def.scales_with {
            Scaling::None => 0,
            Scaling::Attack => stats.attack,
            Scaling::SpellPower => stats.spell_power,
        };
        ctx.dice
            .roll(def.damage[0], def.damage[1])
            .saturating_add(scaling)
    } else {
        0
    };
    let hit = match (&target, npc) {
        (Some(TargetRef::Npc { npc: id }), Some((_, npc))) => {
            let reset = Duration::milliseconds(i64::from(content.progression.npc_reset_ms));
            let hp_before = match &state.encounter {
                Some(e) if e.npc == *id && now - e.last_hit_at < reset => e.hp.min(npc.max_hp),
                _ => npc.max_hp,
            };
            let dealt = mitigate(damage, npc.defense);
            Some(CastHit::Npc {
                npc: id.clone(),
                hp_before,
                damage: dealt,
                hp_after: hp_before.saturating_sub(dealt),
            })
        }
        (Some(TargetRef::Character { id, .. }), _) => Some(CastHit::Character { id: *id }),
        _ => None,
    };
    let killed = matches!(hit, Some(CastHit::Npc { hp_after: 0, .. }));
    let mut events = vec![CharacterEvent::SkillCast {
        zone: state.zone.clone(),
        mana_before,
        mana_cost: def.mana_cost,
        mana_after: mana_before - def.mana_cost,
        damage,
        cooldown_until: now + Duration::milliseconds(i64::from(def.cooldown_ms)),
        cast_at: now,
        skill: skill.clone(),
        target: target.as_ref().map(TargetRef::label),
        hit,
    }];
    let mut progress = Progress::of(state);
    events.extend(progress.gain(
        state,
        ctx,
        u64::from(def.xp_reward),
        format!("skill:{skill}"),
    )?);
    if let (true, Some((id, npc))) = (killed, npc) {
        let (acquired, left) = roll_loot(state, ctx, npc);
        events.push(CharacterEvent::NpcKilled {
            npc: id.clone(),
            zone: state.zone.clone(),
            xp_reward: npc.xp_reward,
            loot_left: left,
            killed_at: now,
        });
        if let Some(acquired) = acquired {
            events.push(CharacterEvent::ItemsAcquired {
                items: acquired,
                source: format!("loot:{id}"),
                acquired_at: now,
            });
        }
        events.extend(progress.gain(state, ctx, u64::from(npc.xp_reward), format!("kill:{id}"))?);
    }
    Ok(events)
}

/// Rolls `npc`'s loot table: each line drops with its chance, in a rolled quantity. What fits in
/// the bag is acquired (as much of each drop as fits, in table order); the rest is left behind.
fn roll_loot(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    npc: &NpcDef,
) -> (Option<Vec<super::ItemChange>>, Vec<ItemStack>) {
    let mut bag = Bag::of(state, ctx.content);
    let mut left: Vec<ItemStack> = Vec::new();
    for line in &npc.loot {
        if ctx.dice.roll(1, 100) > line.chance_percent {
            continue;
        }
        let quantity = ctx.dice.roll(line.quantity[0], line.quantity[1]);
        let taken = bag.add_up_to(&line.item, quantity);
        if taken < quantity {
            match left.iter_mut().find(|s| s.item == line.item) {
                Some(stack) => stack.quantity += quantity - taken,
                None => left.push(ItemStack {
                    item: line.item.clone(),
                    quantity: quantity - taken,
                }),
            }
        }
    }
    let acquired = bag.changes_in();
    ((!acquired.is_empty()).then_some(acquired), left)
}

/// PvP step 1, on the victim. See the `character` module documentation.
pub(super) fn take_damage(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    attacker: CharacterId,
    cause: String,
    skill: String,
    amount: u32,
    attacker_zone: String,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    let (content, now) = (ctx.content, ctx.now);
    if amount == 0 || amount > MAX_DAMAGE {
        return Err(CharacterError::InvalidDamage { max: MAX_DAMAGE });
    }
    label("cause", &cause)?;
    label("skill", &skill)?;
    if state.recent_hits.contains(&cause) {
        return Err(CharacterError::DuplicateHit(cause));
    }
    let pvp_allowed = content.zones.get(&state.zone).is_some_and(|z| z.rules.pvp);
    let miss = if !state.alive() {
        Some(MissReason::TargetDead)
    } else if state.zone != attacker_zone {
        Some(MissReason::TargetLeftZone)
    } else if !pvp_allowed {
        Some(MissReason::ZoneForbidsPvp)
    } else {
        None
    };
    if let Some(reason) = miss {
        return Ok(vec![CharacterEvent::AttackMissed {
            attacker,
            cause,
            skill,
            reason,
            zone: state.zone.clone(),
            missed_at: now,
        }]);
    }
    let stats = stats(state, content)?;
    let hp_before = hp_at(state, &stats, now);
    let damage = mitigate(amount, stats.defense);
    let hp_after = hp_before.saturating_sub(damage);
    let mut events = vec![CharacterEvent::DamageTaken {
        attacker,
        cause: cause.clone(),
        skill,
        amount,
        damage,
        hp_before,
        hp_after,
        zone: state.zone.clone(),
        taken_at: now,
    }];
    if hp_after == 0 {
        events.push(CharacterEvent::CharacterDied {
            killer: Some(attacker),
            cause,
            zone: state.zone.clone(),
            bounty_xp: content
                .progression
                .pvp_xp_per_victim_level
                .saturating_mul(u64::from(state.level))
                .min(MAX_GRANT),
            died_at: now,
        });
    }
    Ok(events)
}

/// PvP step 2, on the killer: the bounty as experience.
pub(super) fn award_kill(
    state: &CharacterState,
    ctx: &Ctx<'_>,
    victim: CharacterId,
    cause: String,
    xp: u64,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    if xp == 0 || xp > MAX_GRANT {
        return Err(CharacterError::InvalidExperienceAmount);
    }
    label("cause", &cause)?;
    Progress::of(state).gain(state, ctx, xp, format!("pvp-kill:{victim}"))
}

/// Back at the zone's respawn point (the starting zone if the content has dropped the zone),
/// with full hit points and mana.
pub(super) fn respawn(
    state: &CharacterState,
    ctx: &Ctx<'_>,
) -> Result<Vec<CharacterEvent>, CharacterError> {
    if state.alive() {
        return Err(CharacterError::CharacterAlive);
    }
    let content = ctx.content;
    let zone = content
        .zones
        .get(&state.zone)
        .map_or(&content.progression.starting_zone, |z| &z.respawn_zone)
        .clone();
    let stats = stats(state, content)?;
    Ok(vec![CharacterEvent::CharacterRespawned {
        from_zone: state.zone.clone(),
        zone,
        hp: stats.max_hp,
        mana: stats.max_mana,
        respawned_at: ctx.now,
    }])
}
