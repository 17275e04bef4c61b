use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CastHit, CharacterEvent, ItemChange, RECENT_HITS};
use crate::content::Slot;
use crate::ids::{AccountId, CharacterName};

/// A created character's state, as folded from its events. `apply` sets what the events say
/// and never consults content: an id the catalogue has since dropped is kept as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharacterState {
    pub owner: AccountId,
    pub name: CharacterName,
    pub class: String,
    pub level: u8,
    pub xp: u64,
    /// Hit points as of `hp_as_of`; regeneration since then is applied when a rule needs it.
    /// 0 while dead (no regeneration then).
    pub hp: u32,
    /// The maximum as of the last event that set it (creation, level-up, equipment change).
    pub max_hp: u32,
    pub hp_as_of: DateTime<Utc>,
    /// Mana as of `mana_as_of`; regeneration since then is applied when the next rule needs it.
    pub mana: u32,
    pub max_mana: u32,
    pub mana_as_of: DateTime<Utc>,
    pub zone: String,
    pub skills: BTreeSet<String>,
    /// Skill -> the instant it can be cast again. Entries in the past are harmless.
    pub cooldowns: BTreeMap<String, DateTime<Utc>>,
    /// When the character died, while it is dead.
    pub dead_since: Option<DateTime<Utc>>,
    /// Item id -> quantity in the bag. Never holds a 0.
    pub bag: BTreeMap<String, u32>,
    /// What is worn, by slot.
    pub equipment: BTreeMap<Slot, String>,
    /// The NPC this character is fighting and its hit points left.
    pub encounter: Option<Encounter>,
    /// Causes of the last [`RECENT_HITS`] attacks received, oldest first: a cause is applied once.
    pub recent_hits: VecDeque<String>,
}

/// An NPC being fought. NPCs are content, not aggregates: each character fights its own, whose
/// hit points live here between casts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encounter {
    pub npc: String,
    pub hp: u32,
    pub last_hit_at: DateTime<Utc>,
}

impl CharacterState {
    pub fn alive(&self) -> bool {
        self.dead_since.is_none()
    }

    /// Quantity of `item` in the bag.
    pub fn quantity(&self, item: &str) -> u32 {
        self.bag.get(item).copied().unwrap_or(0)
    }

    fn set_quantity(&mut self, item: String, quantity: u32) {
        if quantity == 0 {
            self.bag.remove(&item);
        } else {
            self.bag.insert(item, quantity);
        }
    }

    fn set_change(&mut self, change: ItemChange) {
        self.set_quantity(change.item, change.quantity_after);
    }

    fn remember_hit(&mut self, cause: String) {
        self.recent_hits.push_back(cause);
        while self.recent_hits.len() > RECENT_HITS {
            self.recent_hits.pop_front();
        }
    }

    /// Folds one event into an existing character. Infallible: events are facts.
    pub fn apply(&mut self, event: CharacterEvent) {
        match event {
            CharacterEvent::CharacterCreated { .. } => {}
            CharacterEvent::SkillCast {
                skill,
                hit,
                mana_after,
                cooldown_until,
                cast_at,
                ..
            } => {
                self.mana = mana_after;
                self.mana_as_of = cast_at;
                self.cooldowns.insert(skill, cooldown_until);
                if let Some(CastHit::Npc { npc, hp_after, .. }) = hit {
                    self.encounter = (hp_after > 0).then_some(Encounter {
                        npc,
                        hp: hp_after,
                        last_hit_at: cast_at,
                    });
                }
            }
            CharacterEvent::ExperienceGained { total_xp, .. } => self.xp = total_xp,
            CharacterEvent::LeveledUp {
                level,
                max_hp,
                max_mana,
                skills_unlocked,
                leveled_at,
                ..
            } => {
                self.level = level;
                self.max_hp = max_hp;
                self.max_mana = max_mana;
                // A level restores hit points and mana, except to the dead (a bounty can
                // arrive after its killer died): they come back at the respawn.
                if self.alive() {
                    self.hp = max_hp;
                    self.hp_as_of = leveled_at;
                }
                self.mana = max_mana;
                self.mana_as_of = leveled_at;
                self.skills.extend(skills_unlocked);
            }
            CharacterEvent::ZoneEntered { to_zone, .. } => {
                self.zone = to_zone;
                self.encounter = None;
            }
            CharacterEvent::NpcKilled { .. } => self.encounter = None,
            CharacterEvent::DamageTaken {
                cause,
                hp_after,
                taken_at,
                ..
            } => {
                self.hp = hp_after;
                self.hp_as_of = taken_at;
                self.remember_hit(cause);
            }
            CharacterEvent::AttackMissed { cause, .. } => self.remember_hit(cause),
            CharacterEvent::CharacterDied { died_at, .. } => {
                self.hp = 0;
                self.hp_as_of = died_at;
                self.dead_since = Some(died_at);
                self.encounter = None;
            }
            CharacterEvent::CharacterRespawned {
                zone,
                hp,
                mana,
                respawned_at,
                ..
            } => {
                self.zone = zone;
                self.hp = hp;
                self.hp_as_of = respawned_at;
                self.mana = mana;
                self.mana_as_of = respawned_at;
                self.dead_since = None;
                self.encounter = None;
            }
            CharacterEvent::ItemsAcquired { items, .. } => {
                for change in items {
                    self.set_change(change);
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
                self.set_quantity(item, quantity_after);
                self.hp = hp_after;
                self.hp_as_of = used_at;
                self.mana = mana_after;
                self.mana_as_of = used_at;
            }
            CharacterEvent::ItemDestroyed {
                item,
                quantity_after,
                ..
            } => self.set_quantity(item, quantity_after),
            CharacterEvent::ItemCrafted {
                consumed, produced, ..
            } => {
                for change in consumed {
                    self.set_change(change);
                }
                self.set_change(produced);
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
                self.set_quantity(item.clone(), quantity_after);
                if let Some(change) = replaced {
                    self.set_change(change);
                }
                self.equipment.insert(slot, item);
                self.set_resources(max_hp, max_mana, hp, mana, equipped_at);
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
                self.equipment.remove(&slot);
                self.set_quantity(item, quantity_after);
                self.set_resources(max_hp, max_mana, hp, mana, unequipped_at);
            }
        }
    }

    fn set_resources(&mut self, max_hp: u32, max_mana: u32, hp: u32, mana: u32, at: DateTime<Utc>) {
        self.max_hp = max_hp;
        self.max_mana = max_mana;
        self.hp = hp;
        self.hp_as_of = at;
        self.mana = mana;
        self.mana_as_of = at;
    }

    /// The state a `CharacterCreated` starts; `None` for any other event.
    pub fn created(event: CharacterEvent) -> Option<Self> {
        match event {
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
            } => Some(Self {
                owner,
                name,
                class,
                level,
                xp: 0,
                hp: max_hp,
                max_hp,
                hp_as_of: created_at,
                mana: max_mana,
                max_mana,
                mana_as_of: created_at,
                zone,
                skills: skills.into_iter().collect(),
                cooldowns: BTreeMap::new(),
                dead_since: None,
                bag: BTreeMap::new(),
                equipment: BTreeMap::new(),
                encounter: None,
                recent_hits: VecDeque::new(),
            }),
            _ => None,
        }
    }
}
