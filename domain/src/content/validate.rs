//! Cross-checks of a parsed catalogue: ranges, and every reference from one entry to another.
//! The rules rely on what is checked here (a zone's respawn zone exists, a recipe's product
//! fits in a bag slot, ...), but never on an id *stored in an event* still existing: content
//! changes, events do not.

use super::load::{ContentError, Problem};
use super::{Content, ItemType, ZoneKind};

/// The largest stack a content file may declare.
pub const MAX_STACK_SIZE: u32 = 9_999;

/// The largest bag a content file may declare.
pub const MAX_BAG_CAPACITY: u32 = 500;

struct Check {
    file: &'static str,
    kind: Option<&'static str>,
    entry: Option<String>,
}

impl Check {
    fn file(file: &'static str) -> Self {
        Self {
            file,
            kind: None,
            entry: None,
        }
    }

    fn entry(file: &'static str, kind: &'static str, id: &str) -> Self {
        Self {
            file,
            kind: Some(kind),
            entry: Some(id.to_owned()),
        }
    }

    fn fail(&self, field: &str, message: impl Into<String>) -> ContentError {
        ContentError::Invalid(Problem {
            file: self.file,
            entry: self.kind.zip(self.entry.clone()),
            field: (!field.is_empty()).then(|| field.to_owned()),
            message: message.into(),
        })
    }

    fn ensure(
        &self,
        ok: bool,
        field: &str,
        message: impl Into<String>,
    ) -> Result<(), ContentError> {
        if ok {
            Ok(())
        } else {
            Err(self.fail(field, message))
        }
    }
}

fn not_empty<T>(
    file: &'static str,
    map: &std::collections::BTreeMap<String, T>,
) -> Result<(), ContentError> {
    Check::file(file).ensure(!map.is_empty(), "", "must hold at least one entry")
}

impl Content {
    pub(super) fn validate(&self) -> Result<(), ContentError> {
        let max_level = self.progression.max_level;
        let level_ok = |l: u8| (1..=max_level).contains(&l);

        let c = Check::file("manifest.json");
        let v = &self.version;
        c.ensure(
            !v.is_empty() && v.len() <= 64 && !v.chars().any(char::is_control),
            "version",
            "must be 1 to 64 characters without control characters",
        )?;

        let c = Check::file("progression.json");
        c.ensure(max_level >= 2, "max_level", "must be at least 2")?;
        let table = &self.progression.xp_to_reach_level;
        c.ensure(
            table.len() == usize::from(max_level) + 1,
            "xp_to_reach_level",
            "needs one entry per level up to max_level, plus an unused index 0",
        )?;
        c.ensure(
            table[1] == 0 && table[1..].windows(2).all(|w| w[0] < w[1]),
            "xp_to_reach_level",
            "must start at 0 (level 1) and strictly increase",
        )?;
        c.ensure(
            (1..=MAX_BAG_CAPACITY).contains(&self.progression.bag_capacity),
            "bag_capacity",
            format!("must be between 1 and {MAX_BAG_CAPACITY}"),
        )?;
        match self.zones.get(&self.progression.starting_zone) {
            None => {
                return Err(c.fail(
                    "starting_zone",
                    format!("unknown zone \"{}\"", self.progression.starting_zone),
                ))
            }
            Some(z) => c.ensure(z.min_level <= 1, "starting_zone", "must admit level 1")?,
        }

        not_empty("skills.json", &self.skills)?;
        for (id, skill) in &self.skills {
            let c = Check::entry("skills.json", "skill", id);
            c.ensure(
                skill.damage[0] <= skill.damage[1],
                "damage",
                "must be [low, high] with low <= high",
            )?;
            c.ensure(
                skill.offensive || skill.damage == [0, 0],
                "damage",
                "must be [0, 0] for a skill that is not offensive",
            )?;
            if let Some(class) = skill
                .classes
                .iter()
                .find(|c| !self.classes.contains_key(*c))
            {
                return Err(c.fail("classes", format!("unknown class \"{class}\"")));
            }
            c.ensure(
                level_ok(skill.required_level),
                "required_level",
                format!("must be between 1 and {max_level}"),
            )?;
        }

        not_empty("classes.json", &self.classes)?;
        for (id, class) in &self.classes {
            let c = Check::entry("classes.json", "class", id);
            c.ensure(!class.name.is_empty(), "name", "must not be empty")?;
            c.ensure(class.base.max_hp >= 1, "base.max_hp", "must be at least 1")?;
            for skill in &class.starting_skills {
                match self.skills.get(skill) {
                    None => {
                        return Err(c.fail("starting_skills", format!("unknown skill \"{skill}\"")))
                    }
                    Some(s) => c.ensure(
                        s.open_to(id) && s.required_level == 1,
                        "starting_skills",
                        format!("skill \"{skill}\" is not open to this class at level 1"),
                    )?,
                }
            }
        }

        not_empty("zones.json", &self.zones)?;
        for (id, zone) in &self.zones {
            let c = Check::entry("zones.json", "zone", id);
            c.ensure(
                level_ok(zone.min_level),
                "min_level",
                format!("must be between 1 and {max_level}"),
            )?;
            c.ensure(
                zone.min_level <= zone.max_level && zone.max_level <= max_level,
                "max_level",
                format!("must be between min_level and {max_level}"),
            )?;
            let rules = zone.rules;
            match zone.kind {
                ZoneKind::Safe => c.ensure(
                    !rules.offensive_skills && !rules.pvp,
                    "rules",
                    "a safe zone forbids offensive skills and PvP",
                )?,
                ZoneKind::Pvp => c.ensure(
                    rules.offensive_skills && rules.pvp,
                    "rules",
                    "a PvP zone allows offensive skills and PvP",
                )?,
                ZoneKind::Dungeon => c.ensure(!rules.pvp, "rules", "a dungeon forbids PvP")?,
            }
            match self.zones.get(&zone.respawn_zone) {
                None => {
                    return Err(c.fail(
                        "respawn_zone",
                        format!("unknown zone \"{}\"", zone.respawn_zone),
                    ))
                }
                Some(r) => c.ensure(
                    r.kind == ZoneKind::Safe,
                    "respawn_zone",
                    "must be a safe zone",
                )?,
            }
            if let Some(npc) = zone.npcs.iter().find(|n| !self.npcs.contains_key(*n)) {
                return Err(c.fail("npcs", format!("unknown npc \"{npc}\"")));
            }
            c.ensure(
                zone.npcs.is_empty() || rules.offensive_skills,
                "npcs",
                "NPCs cannot be fought in a zone that forbids offensive skills",
            )?;
        }

        for (id, item) in &self.items {
            let c = Check::entry("items.json", "item", id);
            c.ensure(!item.name.is_empty(), "name", "must not be empty")?;
            c.ensure(
                (1..=MAX_STACK_SIZE).contains(&item.stack_size),
                "stack_size",
                if item.stack_size == 0 {
                    "must be at least 1".to_owned()
                } else {
                    format!("must be at most {MAX_STACK_SIZE}")
                },
            )?;
            let wearable = matches!(
                item.item_type,
                ItemType::Weapon | ItemType::Armor | ItemType::Accessory
            );
            c.ensure(
                item.equip.is_some() == wearable,
                "equip",
                if wearable {
                    "weapons, armor and accessories need equip properties"
                } else {
                    "only weapons, armor and accessories are equipped"
                },
            )?;
            let consumable = item.item_type == ItemType::Consumable;
            c.ensure(
                item.effect.is_some() == consumable,
                "effect",
                if consumable {
                    "a consumable needs an effect"
                } else {
                    "only consumables have an effect"
                },
            )?;
            if let Some(effect) = item.effect {
                c.ensure(
                    effect.restore_hp > 0 || effect.restore_mana > 0,
                    "effect",
                    "must restore something",
                )?;
            }
            if let Some(equip) = &item.equip {
                c.ensure(
                    level_ok(equip.required_level),
                    "equip.required_level",
                    format!("must be between 1 and {max_level}"),
                )?;
                if let Some(class) = equip
                    .classes
                    .iter()
                    .find(|c| !self.classes.contains_key(*c))
                {
                    return Err(c.fail("equip.classes", format!("unknown class \"{class}\"")));
                }
            }
        }

        for (id, recipe) in &self.recipes {
            let c = Check::entry("recipes.json", "recipe", id);
            c.ensure(
                !recipe.ingredients.is_empty(),
                "ingredients",
                "must not be empty",
            )?;
            c.ensure(
                level_ok(recipe.required_level),
                "required_level",
                format!("must be between 1 and {max_level}"),
            )?;
            for (i, ingredient) in recipe.ingredients.iter().enumerate() {
                let field = format!("ingredients.{i}");
                c.ensure(
                    self.items.contains_key(&ingredient.item),
                    &format!("{field}.item"),
                    format!("unknown item \"{}\"", ingredient.item),
                )?;
                c.ensure(
                    ingredient.quantity >= 1,
                    &format!("{field}.quantity"),
                    "must be at least 1",
                )?;
                c.ensure(
                    recipe.ingredients[..i]
                        .iter()
                        .all(|o| o.item != ingredient.item),
                    &format!("{field}.item"),
                    format!("item \"{}\" is listed twice", ingredient.item),
                )?;
            }
            match self.items.get(&recipe.produces.item) {
                None => {
                    return Err(c.fail(
                        "produces.item",
                        format!("unknown item \"{}\"", recipe.produces.item),
                    ))
                }
                Some(item) => c.ensure(
                    (1..=item.stack_size).contains(&recipe.produces.quantity),
                    "produces.quantity",
                    format!(
                        "must be between 1 and the item's stack size ({})",
                        item.stack_size
                    ),
                )?,
            }
        }

        for (id, npc) in &self.npcs {
            let c = Check::entry("npcs.json", "npc", id);
            c.ensure(npc.max_hp >= 1, "max_hp", "must be at least 1")?;
            c.ensure(
                level_ok(npc.level),
                "level",
                format!("must be between 1 and {max_level}"),
            )?;
            for (i, loot) in npc.loot.iter().enumerate() {
                let field = format!("loot.{i}");
                match self.items.get(&loot.item) {
                    None => {
                        return Err(c.fail(
                            &format!("{field}.item"),
                            format!("unknown item \"{}\"", loot.item),
                        ))
                    }
                    Some(item) => c.ensure(
                        loot.quantity[0] >= 1
                            && loot.quantity[0] <= loot.quantity[1]
                            && loot.quantity[1] <= item.stack_size,
                        &format!("{field}.quantity"),
                        "must be [low, high] with 1 <= low <= high <= the item's stack size",
                    )?,
                }
                c.ensure(
                    (1..=100).contains(&loot.chance_percent),
                    &format!("{field}.chance_percent"),
                    "must be between 1 and 100",
                )?;
            }
        }

        Ok(())
    }
}
