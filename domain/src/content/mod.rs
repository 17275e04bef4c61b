//! Game content — classes, skills, zones, items, recipes, NPCs, progression — is data, loaded
//! and validated at start-up.
//!
//! # Format
//! One JSON file per kind of entry (see [`FILES`]): `classes.json`, `skills.json`,
//! `zones.json`, `items.json`, `recipes.json` and `npcs.json` are objects of entries by id
//! (`{"wolf": {...}}`; ids are lower-case ASCII letters, digits and `_`, starting with a letter);
//! `progression.json` is one record. `manifest.json` carries the `version` of the whole set: the
//! files are validated together (every cross-reference) and released together, so one version
//! labels them all. Unknown fields are errors.
//!
//! # Loading
//! [`Content::builtin`] is the set shipped in `domain/content/`, compiled in;
//! [`Content::from_dir`] reads the same files from a directory (a service's `content.dir`
//! setting). Either way a bad file stops start-up with a [`ContentError`] naming the file, the
//! entry and the field: `items.json: item "health_potion": field "stack_size": must be at
//! least 1`.
//!
//! # Content changes
//! Events store content ids (a zone, a class, an equipped item) and outlive any content version.
//! So rules look ids up with `get`, never by indexing: an id the current content no longer has
//! makes a decision fail with a rule error (`content-unavailable`), never a panic, and `apply`
//! never consults content at all.

mod defs;
mod load;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

pub use defs::{
    ClassDef, EquipProps, ItemAmount, ItemDef, ItemType, LootDef, Manifest, NpcDef, Progression,
    Rarity, RecipeDef, Scaling, SkillDef, Slot, UseEffect, ZoneDef, ZoneKind, ZoneRules,
};
pub use load::{builtin_file, ContentError, Problem, FILES};
pub use validate::{MAX_BAG_CAPACITY, MAX_STACK_SIZE};

use crate::stats::{derived_stats, Stats};

/// The validated catalogue. Lookups by id; ids are the JSON object keys.
#[derive(Debug, Clone)]
pub struct Content {
    /// The manifest's version label.
    pub version: String,
    pub classes: BTreeMap<String, ClassDef>,
    pub skills: BTreeMap<String, SkillDef>,
    pub zones: BTreeMap<String, ZoneDef>,
    pub items: BTreeMap<String, ItemDef>,
    pub recipes: BTreeMap<String, RecipeDef>,
    pub npcs: BTreeMap<String, NpcDef>,
    pub progression: Progression,
}

impl Content {
    /// The catalogue shipped with the game (`domain/content/`, compiled in).
    pub fn builtin() -> Result<Self, ContentError> {
        Self::load(load::builtin_text)
    }

    /// The catalogue in `dir`, which must hold every file of [`FILES`].
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, ContentError> {
        let dir = dir.as_ref();
        Self::load(|file| load::read_dir_file(dir, file))
    }

    /// The catalogue from the text of each file of [`FILES`], as `read` gives it.
    pub fn load(
        mut read: impl FnMut(&'static str) -> Result<String, ContentError>,
    ) -> Result<Self, ContentError> {
        let manifest: Manifest = load::parse_record("manifest.json", &read("manifest.json")?)?;
        let content = Self {
            version: manifest.version,
            classes: load::parse_entries("classes.json", "class", &read("classes.json")?)?,
            skills: load::parse_entries("skills.json", "skill", &read("skills.json")?)?,
            zones: load::parse_entries("zones.json", "zone", &read("zones.json")?)?,
            items: load::parse_entries("items.json", "item", &read("items.json")?)?,
            recipes: load::parse_entries("recipes.json", "recipe", &read("recipes.json")?)?,
            npcs: load::parse_entries("npcs.json", "npc", &read("npcs.json")?)?,
            progression: load::parse_record("progression.json", &read("progression.json")?)?,
        };
        content.validate()?;
        Ok(content)
    }

    /// The level a character with `total_xp` experience has reached.
    pub fn level_for_xp(&self, total_xp: u64) -> u8 {
        let table = &self.progression.xp_to_reach_level;
        let reached = table
            .iter()
            .skip(1)
            .take_while(|need| **need <= total_xp)
            .count();
        // `reached` >= 1 because table[1] == 0, and <= max_level by validation.
        u8::try_from(reached)
            .unwrap_or(self.progression.max_level)
            .max(1)
    }

    /// Gold granted on reaching `level`.
    pub fn gold_reward(&self, level: u8) -> u64 {
        self.progression
            .gold_per_level
            .saturating_mul(u64::from(level))
    }

    /// Skills of `class` that unlock exactly at `level` (not the starting ones).
    pub fn skills_unlocked_at(&self, class: &str, level: u8) -> Vec<String> {
        self.skills
            .iter()
            .filter(|(_, s)| s.open_to(class) && s.required_level == level && level > 1)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// [`derived_stats`] of a character by ids: its class, level and equipped items. `None` if
    /// the class is not in this content. Equipped items this content no longer has add nothing
    /// (they can still be unequipped and destroyed).
    pub fn stats_of<'a>(
        &self,
        class: &str,
        level: u8,
        equipment: impl IntoIterator<Item = &'a String>,
    ) -> Option<Stats> {
        let class = self.classes.get(class)?;
        Some(derived_stats(
            class,
            level,
            equipment.into_iter().filter_map(|id| self.items.get(id)),
        ))
    }

    /// How many bag slots `quantity` of `item` takes: full stacks and one partial one. An item
    /// this content no longer has takes one slot whatever its quantity.
    pub fn slots_for(&self, item: &str, quantity: u32) -> u32 {
        if quantity == 0 {
            return 0;
        }
        match self.items.get(item) {
            Some(def) => quantity.div_ceil(def.stack_size.max(1)),
            None => 1,
        }
    }
}
