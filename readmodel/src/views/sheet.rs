//! The character sheet: what a client shows of a character, from the character's events and its
//! wallet's. Its own stored type (never the domain's state): a domain refactor cannot change it.
//!
//! The two streams arrive on two topics with no order between them (a wallet's first grant may be
//! applied before the character's creation is), so each has its own part of the document: the
//! character's facts, absent until its creation is applied, and the purse.
//!
//! Public (anyone may read): name, class, level, zone, whether it is alive, its equipment and
//! its kill counts. Private (the owner's alone): the owner's account id, experience, hit points,
//! mana, skills, cooldowns, the bag and the purse. The query API enforces the split.
//!
//! Fields added after the first version read as their defaults from documents written before
//! them: a model change that needs no rebuild.

use std::collections::{BTreeMap, BTreeSet};

use chaos_domain::{CharacterEvent, WalletEvent};
use chaos_schemas::{AnyEvent, PublishedEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::view::{LogEntry, Typed};

/// The stored name of the view: part of its keys. Do not change without a rebuild.
pub const NAME: &str = "sheet";

/// The boards a sheet is on (`Keys::board(NAME, …)`).
pub mod boards {
    /// Characters by total experience (the level follows from it).
    pub const LEVEL: &str = "level";
    /// Characters by gold held.
    pub const WEALTH: &str = "wealth";
    /// Characters by other characters killed.
    pub const PVP: &str = "pvp";
    /// The characters in a zone by when they last acted (epoch milliseconds): who is online
    /// there is who acted within the presence window.
    pub fn presence(zone: &str) -> String {
        format!("presence:{zone}")
    }
}

/// A character sheet as stored.
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
    /// Mana as of `mana_as_of`; it regenerates from there at the class's rate.
    pub mana: u32,
    pub max_mana: u32,
    pub mana_as_of: DateTime<Utc>,
    pub zone: String,
    pub skills: BTreeSet<String>,
    /// Skill -> when it can be cast again.
    pub cooldowns: BTreeMap<String, DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Hit points as of this time; they regenerate from there at the class's rate (while alive).
    #[serde(default)]
    pub hp_as_of: Option<DateTime<Utc>>,
    /// Dead since then (until respawned).
    #[serde(default)]
    pub dead_since: Option<DateTime<Utc>>,
    /// Item -> quantity in the bag.
    #[serde(default)]
    pub bag: BTreeMap<String, u32>,
    /// Slot -> the item worn there.
    #[serde(default)]
    pub equipment: BTreeMap<String, String>,
    #[serde(default)]
    pub kills: Kills,
    #[serde(default)]
    pub deaths: u64,
}

/// What a character has killed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kills {
    pub npcs: u64,
    pub characters: u64,
}

/// The stored document: the character's part (absent until its creation is applied) and the
/// purse (its wallet's balances; the wallet shares the character's id).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SheetDoc {
    pub character: Option<CharacterSheet>,
    /// Currency -> balance.
    pub purse: BTreeMap<String, u64>,
}

/// The public part of a sheet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicProfile {
    pub id: String,
    pub name: String,
    pub class: String,
    pub level: u8,
    pub zone: String,
    pub alive: bool,
    /// Slot -> item worn.
    pub equipment: BTreeMap<String, String>,
    pub kills: Kills,
    pub deaths: u64,
}

impl CharacterSheet {
    pub fn public(&self) -> PublicProfile {
        PublicProfile {
            id: self.id.clone(),
            name: self.name.clone(),
            class: self.class.clone(),
            level: self.level,
            zone: self.zone.clone(),
            alive: self.dead_since.is_none(),
            equipment: self.equipment.clone(),
            kills: self.kills,
            deaths: self.deaths,
        }
    }

    fn set_quantity(&mut self, item: &str, quantity: u32) {
        if quantity == 0 {
            self.bag.remove(item);
        } else {
            self.bag.insert(item.to_owned(), quantity);
        }
    }

    fn set_resources(&mut self, max_hp: u32, max_mana: u32, hp: u32, mana: u32, at: DateTime<Utc>) {
        self.max_hp = max_hp;
        self.max_mana = max_mana;
        self.hp = hp;
        self.hp_as_of = Some(at);
        self.mana = mana;
        self.mana_as_of = at;
    }
}

/// See the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct SheetView;

/// Whether `event` can follow the character part (`exists`: created already): a creation only
/// first, anything else only after it.
fn follows(exists: bool, event: &CharacterEvent) -> Result<(), String> {
    match (exists, event) {
        (true, CharacterEvent::CharacterCreated { .. }) => {
            Err("CharacterCreated for a character that already exists".into())
        }
        (false, CharacterEvent::CharacterCreated { .. }) | (true, _) => Ok(()),
        (false, other) => Err(format!(
            "{} for a character that was never created",
            chaos_domain::GameEvent::type_name(other)
        )),
    }
}

/// Applies an event that [`follows`] the character part.
fn character(slot: &mut Option<CharacterSheet>, id: &str, event: &CharacterEvent) {
    let at = chaos_domain::GameEvent::occurred_at(event);
    let sheet = match (slot.as_mut(), event) {
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
            *slot = Some(CharacterSheet {
                id: id.to_owned(),
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
                hp_as_of: Some(*created_at),
                dead_since: None,
                bag: BTreeMap::new(),
                equipment: BTreeMap::new(),
                kills: Kills::default(),
                deaths: 0,
            });
            return;
        }
        (Some(sheet), _) => sheet,
        // Refused by `follows`.
        (None, _) => return,
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
        CharacterEvent::ExperienceGained {
            total_xp, source, ..
        } => {
            sheet.xp = *total_xp;
            // A PvP kill's bounty is how the killer's stream records the kill.
            if source.starts_with("pvp-kill:") {
                sheet.kills.characters += 1;
            }
        }
        CharacterEvent::LeveledUp {
            level,
            max_hp,
            max_mana,
            skills_unlocked,
            leveled_at,
            ..
        } => {
            sheet.level = *level;
            sheet.max_hp = *max_hp;
            sheet.max_mana = *max_mana;
            // The dead get their hit points back at the respawn, as in the rules.
            if sheet.dead_since.is_none() {
                sheet.hp = *max_hp;
                sheet.hp_as_of = Some(*leveled_at);
            }
            sheet.mana = *max_mana;
            sheet.mana_as_of = *leveled_at;
            sheet.skills.extend(skills_unlocked.iter().cloned());
        }
        CharacterEvent::ZoneEntered { to_zone, .. } => sheet.zone = to_zone.clone(),
        CharacterEvent::NpcKilled { .. } => sheet.kills.npcs += 1,
        CharacterEvent::DamageTaken {
            hp_after, taken_at, ..
        } => {
            sheet.hp = *hp_after;
            sheet.hp_as_of = Some(*taken_at);
        }
        CharacterEvent::AttackMissed { .. } => {}
        CharacterEvent::CharacterDied { died_at, .. } => {
            sheet.hp = 0;
            sheet.hp_as_of = Some(*died_at);
            sheet.dead_since = Some(*died_at);
            sheet.deaths += 1;
        }
        CharacterEvent::CharacterRespawned {
            zone,
            hp,
            mana,
            respawned_at,
            ..
        } => {
            sheet.zone = zone.clone();
            sheet.hp = *hp;
            sheet.hp_as_of = Some(*respawned_at);
            sheet.mana = *mana;
            sheet.mana_as_of = *respawned_at;
            sheet.dead_since = None;
        }
        CharacterEvent::ItemsAcquired { items, .. } => {
            for change in items {
                sheet.set_quantity(&change.item, change.quantity_after);
            }
        }
        CharacterEvent::ItemUsed {
            item,
            quantity_after,
            hp_after,
            mana_after,
            used_at,
            ..
        } => {
            sheet.set_quantity(item, *quantity_after);
            sheet.hp = *hp_after;
            sheet.hp_as_of = Some(*used_at);
            sheet.mana = *mana_after;
            sheet.mana_as_of = *used_at;
        }
        CharacterEvent::ItemDestroyed {
            item,
            quantity_after,
            ..
        } => sheet.set_quantity(item, *quantity_after),
        CharacterEvent::ItemCrafted {
            consumed, produced, ..
        } => {
            for change in consumed.iter().chain(std::iter::once(produced)) {
                sheet.set_quantity(&change.item, change.quantity_after);
            }
        }
        CharacterEvent::ItemEquipped {
            item,
            slot,
            quantity_after,
            replaced,
            max_hp,
            max_mana,
            hp,
            mana,
            equipped_at,
        } => {
            sheet.set_quantity(item, *quantity_after);
            if let Some(change) = replaced {
                sheet.set_quantity(&change.item, change.quantity_after);
            }
            sheet
                .equipment
                .insert(slot.as_str().to_owned(), item.clone());
            sheet.set_resources(*max_hp, *max_mana, *hp, *mana, *equipped_at);
        }
        CharacterEvent::ItemUnequipped {
            item,
            slot,
            quantity_after,
            max_hp,
            max_mana,
            hp,
            mana,
            unequipped_at,
        } => {
            sheet.equipment.remove(slot.as_str());
            sheet.set_quantity(item, *quantity_after);
            sheet.set_resources(*max_hp, *max_mana, *hp, *mana, *unequipped_at);
        }
    }
    sheet.updated_at = at;
}

fn wallet(purse: &mut BTreeMap<String, u64>, event: &WalletEvent) {
    match event {
        WalletEvent::WalletOpened { .. } => {}
        WalletEvent::CurrencyGranted {
            currency,
            balance_after,
            ..
        }
        | WalletEvent::CurrencySpent {
            currency,
            balance_after,
            ..
        } => {
            purse.insert(currency.to_string(), *balance_after);
        }
    }
}

impl Typed for SheetView {
    type Doc = SheetDoc;

    fn name(&self) -> &'static str {
        NAME
    }

    fn sources(&self) -> &'static [&'static str] {
        &[
            chaos_domain::character::AGGREGATE_TYPE,
            chaos_domain::wallet::AGGREGATE_TYPE,
        ]
    }

    fn doc_id(&self, event: &PublishedEvent) -> Option<String> {
        // A wallet's id is its character's.
        Some(event.envelope.aggregate_id.clone())
    }

    fn step(
        &self,
        doc: &mut Option<SheetDoc>,
        event: &PublishedEvent,
    ) -> Result<Vec<LogEntry>, String> {
        match &event.event {
            AnyEvent::Character(e) => {
                follows(doc.as_ref().is_some_and(|d| d.character.is_some()), e)?;
                let d = doc.get_or_insert_with(SheetDoc::default);
                character(&mut d.character, &event.envelope.aggregate_id, e);
            }
            AnyEvent::Wallet(e) => wallet(&mut doc.get_or_insert_with(SheetDoc::default).purse, e),
        }
        Ok(Vec::new())
    }

    /// A created character is on the level, wealth and PvP leaderboards and on its zone's presence
    /// list; a purse without its character yet is on none.
    fn boards(&self, _id: &str, doc: &SheetDoc) -> Vec<(String, f64)> {
        let Some(c) = &doc.character else {
            return Vec::new();
        };
        let gold = doc.purse.get("gold").copied().unwrap_or(0);
        vec![
            (boards::LEVEL.to_owned(), c.xp as f64),
            (boards::WEALTH.to_owned(), gold as f64),
            (boards::PVP.to_owned(), c.kills.characters as f64),
            (
                boards::presence(&c.zone),
                c.updated_at.timestamp_millis() as f64,
            ),
        ]
    }
}
