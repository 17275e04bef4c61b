//! The catalogue's entries, as written in the content files. Every struct refuses unknown fields,
//! so a typo in a file is an error at start-up, not a silently ignored setting.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::stats::Stats;

/// `manifest.json`: the version of the whole content set. One version for all files, because
/// they are validated together (cross-references) and released together.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Free-form release label (`2026.12.0`), logged at start-up.
    pub version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassDef {
    pub name: String,
    /// Stats at level 1.
    pub base: Stats,
    /// Stats gained with every level above 1.
    #[serde(default)]
    pub per_level: Stats,
    pub starting_skills: Vec<String>,
}

impl ClassDef {
    /// Maximum hit points at `level` without equipment.
    pub fn max_hp(&self, level: u8) -> u32 {
        crate::stats::derived_stats(self, level, []).max_hp
    }

    /// Maximum mana at `level` without equipment.
    pub fn max_mana(&self, level: u8) -> u32 {
        crate::stats::derived_stats(self, level, []).max_mana
    }
}

/// Which stat adds to a skill's rolled damage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    #[default]
    None,
    Attack,
    SpellPower,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillDef {
    pub name: String,
    /// Classes that may learn the skill; empty means every class.
    pub classes: Vec<String>,
    pub required_level: u8,
    pub mana_cost: u32,
    pub cooldown_ms: u32,
    /// Offensive skills are refused in zones that forbid them, and are the only ones that may
    /// be aimed at a target.
    pub offensive: bool,
    /// The dice's range, inclusive.
    pub damage: [u32; 2],
    #[serde(default)]
    pub scales_with: Scaling,
    pub xp_reward: u32,
}

impl SkillDef {
    pub fn open_to(&self, class: &str) -> bool {
        self.classes.is_empty() || self.classes.iter().any(|c| c == class)
    }
}

/// A zone's kind. Safe zones forbid fighting; PvP zones allow fighting other characters;
/// dungeons allow fighting NPCs only. The kind labels the zone; its `rules` decide, and
/// validation keeps the two consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    Safe,
    Pvp,
    Dungeon,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneRules {
    /// Offensive skills may be cast (at NPCs, at nothing, or — with `pvp` — at characters).
    pub offensive_skills: bool,
    /// Characters may attack each other.
    pub pvp: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneDef {
    pub name: String,
    pub kind: ZoneKind,
    /// Travel needs `min_level <= level <= max_level`.
    pub min_level: u8,
    pub max_level: u8,
    pub rules: ZoneRules,
    /// Where a character who died here comes back (a safe zone; level limits do not apply).
    pub respawn_zone: String,
    /// NPCs that can be fought here.
    #[serde(default)]
    pub npcs: Vec<String>,
}

/// Where an item goes when equipped. Persisted and published as its snake-case name: append
/// only, never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    Head,
    Chest,
    Legs,
    Feet,
    Hands,
    MainHand,
    OffHand,
    Neck,
    Ring,
}

impl Slot {
    pub const ALL: [Slot; 9] = [
        Slot::Head,
        Slot::Chest,
        Slot::Legs,
        Slot::Feet,
        Slot::Hands,
        Slot::MainHand,
        Slot::OffHand,
        Slot::Neck,
        Slot::Ring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Head => "head",
            Slot::Chest => "chest",
            Slot::Legs => "legs",
            Slot::Feet => "feet",
            Slot::Hands => "hands",
            Slot::MainHand => "main_hand",
            Slot::OffHand => "off_hand",
            Slot::Neck => "neck",
            Slot::Ring => "ring",
        }
    }

    pub fn parse(s: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|slot| slot.as_str() == s)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    Weapon,
    Armor,
    Accessory,
    Consumable,
    Material,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rarity {
    Common,
    Uncommon,
    Rare,
    Epic,
    Legendary,
}

/// What equipping an item requires and gives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquipProps {
    pub slot: Slot,
    #[serde(default = "one")]
    pub required_level: u8,
    /// Classes that may equip it; empty means every class.
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub bonuses: Stats,
}

fn one() -> u8 {
    1
}

impl EquipProps {
    pub fn open_to(&self, class: &str) -> bool {
        self.classes.is_empty() || self.classes.iter().any(|c| c == class)
    }
}

/// What using (consuming) an item does.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseEffect {
    #[serde(default)]
    pub restore_hp: u32,
    #[serde(default)]
    pub restore_mana: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemDef {
    pub name: String,
    #[serde(rename = "type")]
    pub item_type: ItemType,
    pub rarity: Rarity,
    /// How many fit in one bag slot.
    pub stack_size: u32,
    /// Weapons, armor and accessories: how they are worn.
    #[serde(default)]
    pub equip: Option<EquipProps>,
    /// Consumables: what using one does.
    #[serde(default)]
    pub effect: Option<UseEffect>,
}

/// `quantity` of `item`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemAmount {
    pub item: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeDef {
    pub name: String,
    #[serde(default = "one")]
    pub required_level: u8,
    /// Consumed, all or nothing. Each item at most once.
    pub ingredients: Vec<ItemAmount>,
    pub produces: ItemAmount,
}

/// One line of an NPC's loot table: with `chance_percent` % chance, a quantity rolled in the
/// inclusive range.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LootDef {
    pub item: String,
    pub chance_percent: u32,
    pub quantity: [u32; 2],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpcDef {
    pub name: String,
    pub level: u8,
    pub max_hp: u32,
    #[serde(default)]
    pub defense: u32,
    /// Experience for the character who kills it.
    pub xp_reward: u32,
    #[serde(default)]
    pub loot: Vec<LootDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progression {
    pub starting_zone: String,
    pub max_level: u8,
    /// `xp_to_reach_level[n]` is the total experience at which a character reaches level `n`.
    /// Index 0 is unused; index 1 is 0.
    pub xp_to_reach_level: Vec<u64>,
    /// Gold granted on reaching a level, per level reached: level `n` grants `n * gold_per_level`.
    pub gold_per_level: u64,
    /// How many stacks a character's bag holds.
    pub bag_capacity: u32,
    /// Experience a character earns for killing another, per level of the victim.
    pub pvp_xp_per_victim_level: u64,
    /// An NPC left alone this long is back at full health (a fresh one) at the next cast.
    pub npc_reset_ms: u32,
}
