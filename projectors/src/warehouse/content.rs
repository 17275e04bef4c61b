//! The content dimensions (`classes`, `skills`, `zones`, `items`, `npcs`, `recipes`,
//! `recipe_ingredients`): the catalogue the writing process runs with, upserted at every open
//! and after a switch, each row with the content set's version.
//!
//! Upserted, not replaced: an id a newer content set dropped keeps its last row, since old
//! events still name it.

use chaos_domain::content::{ItemType, Rarity, ZoneKind};
use chaos_domain::Content;
use duckdb::{params, Transaction};

use super::Result;

/// Writes `content` into the dimensions (idempotent: the same content writes the same rows).
pub(crate) fn upsert(tx: &Transaction<'_>, content: &Content) -> Result<()> {
    let version = content.version.as_str();
    let mut classes =
        tx.prepare("INSERT OR REPLACE INTO classes VALUES (?, ?, ?, ?, ?::VARCHAR[], ?)")?;
    for (id, c) in &content.classes {
        classes.execute(params![
            id,
            c.name,
            c.base.max_hp,
            c.base.max_mana,
            list(&c.starting_skills),
            version
        ])?;
    }
    let mut skills =
        tx.prepare("INSERT OR REPLACE INTO skills VALUES (?, ?, ?::VARCHAR[], ?, ?, ?, ?, ?, ?)")?;
    for (id, s) in &content.skills {
        skills.execute(params![
            id,
            s.name,
            list(&s.classes),
            s.required_level,
            s.mana_cost,
            s.cooldown_ms,
            s.offensive,
            s.xp_reward,
            version
        ])?;
    }
    let mut zones =
        tx.prepare("INSERT OR REPLACE INTO zones VALUES (?, ?, ?, ?, ?, ?, ?, ?::VARCHAR[], ?)")?;
    for (id, z) in &content.zones {
        zones.execute(params![
            id,
            z.name,
            zone_kind(z.kind),
            z.min_level,
            z.max_level,
            z.rules.pvp,
            z.respawn_zone,
            list(&z.npcs),
            version
        ])?;
    }
    let mut items = tx.prepare("INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?, ?, ?)")?;
    for (id, i) in &content.items {
        items.execute(params![
            id,
            i.name,
            item_type(i.item_type),
            rarity(i.rarity),
            i.stack_size,
            i.equip.as_ref().map(|e| e.slot.as_str()),
            version
        ])?;
    }
    let mut npcs = tx.prepare("INSERT OR REPLACE INTO npcs VALUES (?, ?, ?, ?, ?, ?, ?)")?;
    for (id, n) in &content.npcs {
        npcs.execute(params![
            id,
            n.name,
            n.level,
            n.max_hp,
            n.defense,
            n.xp_reward,
            version
        ])?;
    }
    let mut recipes = tx.prepare("INSERT OR REPLACE INTO recipes VALUES (?, ?, ?, ?, ?, ?)")?;
    let mut forget = tx.prepare("DELETE FROM recipe_ingredients WHERE recipe = ?")?;
    let mut ingredients =
        tx.prepare("INSERT OR REPLACE INTO recipe_ingredients VALUES (?, ?, ?, ?)")?;
    for (id, r) in &content.recipes {
        recipes.execute(params![
            id,
            r.name,
            r.required_level,
            r.produces.item,
            r.produces.quantity,
            version
        ])?;
        // A recipe's ingredients are its content version's, not a union over versions.
        forget.execute([id])?;
        for i in &r.ingredients {
            ingredients.execute(params![id, i.item, i.quantity, version])?;
        }
    }
    Ok(())
}

/// A `VARCHAR[]` list literal, cast by the statement (`?::VARCHAR[]`): every element
/// double-quoted, with `\` and `"` escaped by a backslash.
fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("[{}]", quoted.join(", "))
}

fn zone_kind(kind: ZoneKind) -> &'static str {
    match kind {
        ZoneKind::Safe => "safe",
        ZoneKind::Pvp => "pvp",
        ZoneKind::Dungeon => "dungeon",
    }
}

fn item_type(t: ItemType) -> &'static str {
    match t {
        ItemType::Weapon => "weapon",
        ItemType::Armor => "armor",
        ItemType::Accessory => "accessory",
        ItemType::Consumable => "consumable",
        ItemType::Material => "material",
    }
}

fn rarity(r: Rarity) -> &'static str {
    match r {
        Rarity::Common => "common",
        Rarity::Uncommon => "uncommon",
        Rarity::Rare => "rare",
        Rarity::Epic => "epic",
        Rarity::Legendary => "legendary",
    }
}
