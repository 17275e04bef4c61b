//! A character's stats, and the one function that derives them.
//!
//! [`derived_stats`] is the only place stats are computed: `decide` uses it for every rule that
//! needs a maximum, a regeneration rate, an attack or a defense, and read models call it to show
//! the same numbers. It is a pure function of the class's base stats, the level and the equipped
//! items' bonuses — nothing else (no buffs, no time, no state), so the same inputs always give
//! the same stats, in any order of equipment.

use serde::{Deserialize, Serialize};

use crate::content::{ClassDef, ItemDef};

/// A set of stats. Used for a class's base stats, its gain per level, an item's bonuses and the
/// derived result. Absent fields in content files are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Stats {
    pub max_hp: u32,
    pub max_mana: u32,
    /// Adds to the damage of skills that scale with attack (weapons, strikes).
    pub attack: u32,
    /// Adds to the damage of skills that scale with spell power (spells).
    pub spell_power: u32,
    /// Taken off every hit received (a hit always deals at least 1).
    pub defense: u32,
    pub hp_regen_per_sec: u32,
    pub mana_regen_per_sec: u32,
}

impl Stats {
    /// Field-wise saturating sum.
    pub fn plus(self, o: Stats) -> Stats {
        Stats {
            max_hp: self.max_hp.saturating_add(o.max_hp),
            max_mana: self.max_mana.saturating_add(o.max_mana),
            attack: self.attack.saturating_add(o.attack),
            spell_power: self.spell_power.saturating_add(o.spell_power),
            defense: self.defense.saturating_add(o.defense),
            hp_regen_per_sec: self.hp_regen_per_sec.saturating_add(o.hp_regen_per_sec),
            mana_regen_per_sec: self.mana_regen_per_sec.saturating_add(o.mana_regen_per_sec),
        }
    }

    /// Field-wise saturating product with `n`.
    pub fn times(self, n: u32) -> Stats {
        Stats {
            max_hp: self.max_hp.saturating_mul(n),
            max_mana: self.max_mana.saturating_mul(n),
            attack: self.attack.saturating_mul(n),
            spell_power: self.spell_power.saturating_mul(n),
            defense: self.defense.saturating_mul(n),
            hp_regen_per_sec: self.hp_regen_per_sec.saturating_mul(n),
            mana_regen_per_sec: self.mana_regen_per_sec.saturating_mul(n),
        }
    }
}

/// The stats of a character of `class` at `level` wearing `equipment`:
/// `base + per_level * (level - 1) + Σ bonuses of the equipped items`.
///
/// Pure: depends only on its arguments (sums commute, so the equipment's order does not matter).
/// Items without equipment properties add nothing.
pub fn derived_stats<'a>(
    class: &ClassDef,
    level: u8,
    equipment: impl IntoIterator<Item = &'a ItemDef>,
) -> Stats {
    let levels = u32::from(level.max(1) - 1);
    equipment
        .into_iter()
        .filter_map(|item| item.equip.as_ref())
        .fold(class.base.plus(class.per_level.times(levels)), |s, e| {
            s.plus(e.bonuses)
        })
}

/// Damage a hit of `raw` deals through `defense`: defense is taken off, and a hit that had any
/// power deals at least 1. A hit of 0 (a skill without damage) deals 0.
pub fn mitigate(raw: u32, defense: u32) -> u32 {
    if raw == 0 {
        0
    } else {
        raw.saturating_sub(defense).max(1)
    }
}

/// `stored` as of `as_of`, regenerated at `per_sec` up to `now`, capped at `max`: hit points and
/// mana between the events that set them (the rules and the read models use the same function).
pub fn regenerated(
    stored: u32,
    as_of: chrono::DateTime<chrono::Utc>,
    per_sec: u32,
    max: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> u32 {
    let elapsed_ms = u64::try_from((now - as_of).num_milliseconds()).unwrap_or(0);
    let gained = u64::from(per_sec).saturating_mul(elapsed_ms) / 1000;
    let value = u64::from(stored).saturating_add(gained).min(u64::from(max));
    u32::try_from(value).unwrap_or(max)
}
