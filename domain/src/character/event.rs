use chrono::{DateTime, Utc};
use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::aggregate::{EventType, GameEvent};
use crate::content::Slot;
use crate::ids::{AccountId, CharacterId, CharacterName};

/// Facts about a character. Each carries what projections need, so no reader recomputes a rule.
///
/// The variant names are the persisted and published event types (`event_type()`), and the Avro
/// record names in `schemas/`: do not rename a variant once released; add a new one instead.
///
/// Items move only through `ItemsAcquired`, `ItemUsed`, `ItemDestroyed` and `ItemCrafted` (in
/// and out of the character) and `ItemEquipped`/`ItemUnequipped` (between bag and equipment).
/// Each names the items and the bag's quantity after the move (`quantity_after`), which `apply`
/// sets: a fact, not a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CharacterEvent {
    CharacterCreated {
        owner: AccountId,
        name: CharacterName,
        class: String,
        level: u8,
        max_hp: u32,
        max_mana: u32,
        zone: String,
        skills: Vec<String>,
        created_at: DateTime<Utc>,
    },
    SkillCast {
        skill: String,
        /// What the cast was aimed at: an NPC id or a character id (free text before v2).
        target: Option<String>,
        /// What the cast hit and what it did there (v2; casts stored as v1 read as `None`).
        hit: Option<CastHit>,
        zone: String,
        /// Mana after regeneration up to `cast_at`, before paying the cost.
        mana_before: u32,
        mana_cost: u32,
        mana_after: u32,
        /// Damage rolled: the dice plus the caster's scaling stat, before the target's defense.
        damage: u32,
        cooldown_until: DateTime<Utc>,
        cast_at: DateTime<Utc>,
    },
    ExperienceGained {
        amount: u64,
        total_xp: u64,
        source: String,
        gained_at: DateTime<Utc>,
    },
    LeveledUp {
        level: u8,
        max_hp: u32,
        max_mana: u32,
        /// Skills the new level unlocks for the character's class.
        skills_unlocked: Vec<String>,
        /// Gold the level grants (v2; level-ups stored as v1, before rewards existed, read as 0).
        gold_reward: u64,
        leveled_at: DateTime<Utc>,
    },
    ZoneEntered {
        from_zone: String,
        to_zone: String,
        entered_at: DateTime<Utc>,
    },
    /// The character's cast killed an NPC. Its experience follows as `ExperienceGained`
    /// (source `kill:<npc>`) and the loot that fit in the bag as `ItemsAcquired` (source
    /// `loot:<npc>`); what did not fit is named here and left behind.
    NpcKilled {
        npc: String,
        zone: String,
        xp_reward: u32,
        loot_left: Vec<ItemStack>,
        killed_at: DateTime<Utc>,
    },
    /// Another character's cast hit this one (the `TakeDamage` step of PvP).
    DamageTaken {
        attacker: CharacterId,
        /// The attacker's `SkillCast` event id: each is applied once.
        cause: String,
        skill: String,
        /// Damage the attacker rolled.
        amount: u32,
        /// Damage dealt, after this character's defense.
        damage: u32,
        hp_before: u32,
        hp_after: u32,
        zone: String,
        taken_at: DateTime<Utc>,
    },
    /// Another character's cast did not land: this one had died or left the zone since, or
    /// the zone no longer allows PvP. Changes nothing but the record of the cause.
    AttackMissed {
        attacker: CharacterId,
        cause: String,
        skill: String,
        reason: MissReason,
        zone: String,
        missed_at: DateTime<Utc>,
    },
    /// Hit points reached 0. `killer` is who dealt the blow; `bounty_xp` is what the killer
    /// earns for it (the second PvP step grants it on the killer).
    CharacterDied {
        killer: Option<CharacterId>,
        cause: String,
        zone: String,
        bounty_xp: u64,
        died_at: DateTime<Utc>,
    },
    /// The player brought a dead character back, at its zone's respawn point, at full health.
    CharacterRespawned {
        from_zone: String,
        zone: String,
        hp: u32,
        mana: u32,
        respawned_at: DateTime<Utc>,
    },
    /// Items entered the bag. `source`: `loot:<npc>`, `grant:<reason>`, ...
    ItemsAcquired {
        items: Vec<ItemChange>,
        source: String,
        acquired_at: DateTime<Utc>,
    },
    /// One consumable was used; hit points and mana after its effect (regenerated up to
    /// `used_at` first).
    ItemUsed {
        item: String,
        quantity_after: u32,
        hp_before: u32,
        hp_after: u32,
        mana_before: u32,
        mana_after: u32,
        used_at: DateTime<Utc>,
    },
    ItemDestroyed {
        item: String,
        quantity: u32,
        quantity_after: u32,
        destroyed_at: DateTime<Utc>,
    },
    /// A recipe consumed its ingredients and produced its item, in one event: all or nothing.
    ItemCrafted {
        recipe: String,
        consumed: Vec<ItemChange>,
        produced: ItemChange,
        crafted_at: DateTime<Utc>,
    },
    /// An item moved from the bag to a slot; the slot's previous item, if any, back to the bag.
    /// The maxima are the derived stats with the new equipment; hit points and mana are as of
    /// the event (regenerated, then capped by the new maxima).
    ItemEquipped {
        item: String,
        slot: Slot,
        quantity_after: u32,
        replaced: Option<ItemChange>,
        max_hp: u32,
        max_mana: u32,
        hp: u32,
        mana: u32,
        equipped_at: DateTime<Utc>,
    },
    /// An item moved from a slot back to the bag (see `ItemEquipped` for the numbers).
    ItemUnequipped {
        item: String,
        slot: Slot,
        quantity_after: u32,
        max_hp: u32,
        max_mana: u32,
        hp: u32,
        mana: u32,
        unequipped_at: DateTime<Utc>,
    },
}

/// A quantity of an item moving into or out of the bag, and the bag's quantity of that item
/// after the move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemChange {
    pub item: String,
    pub quantity: u32,
    pub quantity_after: u32,
}

/// A quantity of an item, outside any bag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemStack {
    pub item: String,
    pub quantity: u32,
}

/// What a cast hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CastHit {
    /// An NPC from the catalogue, fought by this character alone: its hit points before and
    /// after the damage dealt (rolled damage less its defense). 0 after is a kill.
    Npc {
        npc: String,
        hp_before: u32,
        damage: u32,
        hp_after: u32,
    },
    /// Another character: the rolled damage is applied on the victim by the PvP process
    /// manager (`TakeDamage`), which decides what it does there.
    Character { id: CharacterId },
}

/// Why an attack on a character did not land. Persisted and published as the kebab-case name:
/// append only, never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissReason {
    TargetDead,
    TargetLeftZone,
    ZoneForbidsPvp,
}

impl MissReason {
    pub const ALL: [MissReason; 3] = [
        MissReason::TargetDead,
        MissReason::TargetLeftZone,
        MissReason::ZoneForbidsPvp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TargetDead => "target-dead",
            Self::TargetLeftZone => "target-left-zone",
            Self::ZoneForbidsPvp => "zone-forbids-pvp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl GameEvent for CharacterEvent {
    /// Versions: `LeveledUp` v2 added `gold_reward` (2026-11); `SkillCast` v2 added `hit`
    /// (2026-12). The item, combat and death events started at v1 (2026-12).
    const TYPES: &'static [EventType] = &[
        EventType {
            name: "CharacterCreated",
            version: 1,
        },
        EventType {
            name: "SkillCast",
            version: 2,
        },
        EventType {
            name: "ExperienceGained",
            version: 1,
        },
        EventType {
            name: "LeveledUp",
            version: 2,
        },
        EventType {
            name: "ZoneEntered",
            version: 1,
        },
        EventType {
            name: "NpcKilled",
            version: 1,
        },
        EventType {
            name: "DamageTaken",
            version: 1,
        },
        EventType {
            name: "AttackMissed",
            version: 1,
        },
        EventType {
            name: "CharacterDied",
            version: 1,
        },
        EventType {
            name: "CharacterRespawned",
            version: 1,
        },
        EventType {
            name: "ItemsAcquired",
            version: 1,
        },
        EventType {
            name: "ItemUsed",
            version: 1,
        },
        EventType {
            name: "ItemDestroyed",
            version: 1,
        },
        EventType {
            name: "ItemCrafted",
            version: 1,
        },
        EventType {
            name: "ItemEquipped",
            version: 1,
        },
        EventType {
            name: "ItemUnequipped",
            version: 1,
        },
    ];

    fn type_name(&self) -> &'static str {
        match self {
            Self::CharacterCreated { .. } => "CharacterCreated",
            Self::SkillCast { .. } => "SkillCast",
            Self::ExperienceGained { .. } => "ExperienceGained",
            Self::LeveledUp { .. } => "LeveledUp",
            Self::ZoneEntered { .. } => "ZoneEntered",
            Self::NpcKilled { .. } => "NpcKilled",
            Self::DamageTaken { .. } => "DamageTaken",
            Self::AttackMissed { .. } => "AttackMissed",
            Self::CharacterDied { .. } => "CharacterDied",
            Self::CharacterRespawned { .. } => "CharacterRespawned",
            Self::ItemsAcquired { .. } => "ItemsAcquired",
            Self::ItemUsed { .. } => "ItemUsed",
            Self::ItemDestroyed { .. } => "ItemDestroyed",
            Self::ItemCrafted { .. } => "ItemCrafted",
            Self::ItemEquipped { .. } => "ItemEquipped",
            Self::ItemUnequipped { .. } => "ItemUnequipped",
        }
    }

    fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::CharacterCreated { created_at: t, .. }
            | Self::SkillCast { cast_at: t, .. }
            | Self::ExperienceGained { gained_at: t, .. }
            | Self::LeveledUp { leveled_at: t, .. }
            | Self::ZoneEntered { entered_at: t, .. }
            | Self::NpcKilled { killed_at: t, .. }
            | Self::DamageTaken { taken_at: t, .. }
            | Self::AttackMissed { missed_at: t, .. }
            | Self::CharacterDied { died_at: t, .. }
            | Self::CharacterRespawned {
                respawned_at: t, ..
            }
            | Self::ItemsAcquired { acquired_at: t, .. }
            | Self::ItemUsed { used_at: t, .. }
            | Self::ItemDestroyed {
                destroyed_at: t, ..
            }
            | Self::ItemCrafted { crafted_at: t, .. }
            | Self::ItemEquipped { equipped_at: t, .. }
            | Self::ItemUnequipped {
                unequipped_at: t, ..
            } => *t,
        }
    }

    fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
        /// Adds `field: value` to the payload of `event_type` when absent.
        fn add_field(
            event_type: &'static str,
            version: &'static str,
            field: &'static str,
            value: fn() -> serde_json::Value,
        ) -> Box<dyn EventUpcaster> {
            Box::new(SemanticVersionEventUpcaster::new(
                event_type,
                version,
                Box::new(move |mut payload| {
                    if let Some(fields) = payload
                        .get_mut(event_type)
                        .and_then(serde_json::Value::as_object_mut)
                    {
                        fields.entry(field).or_insert_with(value);
                    }
                    payload
                }),
            ))
        }
        vec![
            // Level-ups before gold rewards existed granted nothing.
            add_field("LeveledUp", "2", "gold_reward", || 0.into()),
            // Casts before typed targets had a free-text target and hit nothing the rules knew.
            add_field("SkillCast", "2", "hit", || serde_json::Value::Null),
        ]
    }
}

impl DomainEvent for CharacterEvent {
    fn event_type(&self) -> String {
        self.type_name().to_owned()
    }

    fn event_version(&self) -> String {
        Self::current_version(self.type_name())
            .unwrap_or(1)
            .to_string()
    }
}
