use chrono::{DateTime, Utc};

use crate::aggregate::{RuleError, RuleKind};
use crate::content::Slot;

/// A broken rule. `code()` is a stable identifier surfaced to clients as the problem type
/// (`/problems/<code>`): do not change the codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CharacterError {
    #[error("the character already exists")]
    AlreadyExists,
    #[error("no such character")]
    NotFound,
    #[error("the character belongs to another account")]
    NotOwner,
    #[error("unknown class {0}")]
    UnknownClass(String),
    #[error("unknown skill {0}")]
    UnknownSkill(String),
    #[error("the character does not know skill {0}")]
    SkillNotKnown(String),
    #[error("not enough mana: {needed} needed, {available} available")]
    InsufficientMana { needed: u32, available: u32 },
    #[error("skill {skill} is on cooldown until {ready_at}")]
    SkillOnCooldown {
        skill: String,
        ready_at: DateTime<Utc>,
    },
    #[error("zone {zone} forbids offensive skills")]
    ZoneForbidsSkill { zone: String },
    #[error("unknown zone {0}")]
    UnknownZone(String),
    #[error("zone {zone} requires level {min_level}")]
    ZoneLevelTooLow { zone: String, min_level: u8 },
    #[error("the character is already in zone {0}")]
    AlreadyInZone(String),
    #[error("experience amount must be between 1 and 1000000")]
    InvalidExperienceAmount,

    // --- since the player core (2026-12) ------------------------------------------------------
    #[error("zone {zone} admits characters up to level {max_level}")]
    ZoneLevelTooHigh { zone: String, max_level: u8 },
    #[error("the game content no longer has {kind} {id}")]
    ContentUnavailable { kind: &'static str, id: String },
    #[error("the character is dead: respawn first")]
    CharacterDead,
    #[error("the character is alive")]
    CharacterAlive,
    #[error("unknown NPC {0}")]
    UnknownNpc(String),
    #[error("{target} is not in zone {zone}")]
    TargetNotInZone { target: String, zone: String },
    #[error("{0} is dead")]
    TargetDead(String),
    #[error("zone {zone} forbids attacking other characters")]
    ZoneForbidsPvp { zone: String },
    #[error("invalid target: {0}")]
    InvalidTarget(&'static str),
    #[error("unknown item {0}")]
    UnknownItem(String),
    #[error("unknown recipe {0}")]
    UnknownRecipe(String),
    #[error("quantity must be between 1 and {max}")]
    InvalidQuantity { max: u32 },
    #[error("not enough {item}: {needed} needed, {available} in the bag")]
    InsufficientItems {
        item: String,
        needed: u32,
        available: u32,
    },
    #[error("the bag is full ({capacity} slots)")]
    BagFull { capacity: u32 },
    #[error("{0} cannot be used")]
    ItemNotUsable(String),
    #[error("{0} cannot be equipped")]
    ItemNotEquippable(String),
    #[error("{item} goes in slot {expected}, not {slot}")]
    WrongSlot {
        item: String,
        slot: Slot,
        expected: Slot,
    },
    #[error("{item} requires level {required_level}")]
    ItemLevelTooHigh { item: String, required_level: u8 },
    #[error("{item} is not for this class")]
    ItemClassRestricted { item: String },
    #[error("nothing is equipped in slot {0}")]
    SlotEmpty(Slot),
    #[error("recipe {recipe} requires level {required_level}")]
    RecipeLevelTooHigh { recipe: String, required_level: u8 },
    #[error("damage must be between 1 and {max}")]
    InvalidDamage { max: u32 },
    #[error("hit {0} was already applied")]
    DuplicateHit(String),
    #[error("{field} must be 1 to {max} visible characters")]
    InvalidLabel { field: &'static str, max: usize },
}

impl RuleError for CharacterError {
    fn kind(&self) -> RuleKind {
        match self {
            Self::NotFound => RuleKind::NotFound,
            Self::NotOwner => RuleKind::Forbidden,
            Self::AlreadyExists | Self::DuplicateHit(_) => RuleKind::Conflict,
            _ => RuleKind::Unprocessable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "character-already-exists",
            Self::NotFound => "character-not-found",
            Self::NotOwner => "not-character-owner",
            Self::UnknownClass(_) => "unknown-class",
            Self::UnknownSkill(_) => "unknown-skill",
            Self::SkillNotKnown(_) => "skill-not-known",
            Self::InsufficientMana { .. } => "insufficient-mana",
            Self::SkillOnCooldown { .. } => "skill-on-cooldown",
            Self::ZoneForbidsSkill { .. } => "zone-forbids-skill",
            Self::UnknownZone(_) => "unknown-zone",
            Self::ZoneLevelTooLow { .. } => "zone-level-too-low",
            Self::AlreadyInZone(_) => "already-in-zone",
            Self::InvalidExperienceAmount => "invalid-experience-amount",
            Self::ZoneLevelTooHigh { .. } => "zone-level-too-high",
            Self::ContentUnavailable { .. } => "content-unavailable",
            Self::CharacterDead => "character-dead",
            Self::CharacterAlive => "character-alive",
            Self::UnknownNpc(_) => "unknown-npc",
            Self::TargetNotInZone { .. } => "target-not-in-zone",
            Self::TargetDead(_) => "target-dead",
            Self::ZoneForbidsPvp { .. } => "zone-forbids-pvp",
            Self::InvalidTarget(_) => "invalid-target",
            Self::UnknownItem(_) => "unknown-item",
            Self::UnknownRecipe(_) => "unknown-recipe",
            Self::InvalidQuantity { .. } => "invalid-quantity",
            Self::InsufficientItems { .. } => "insufficient-items",
            Self::BagFull { .. } => "bag-full",
            Self::ItemNotUsable(_) => "item-not-usable",
            Self::ItemNotEquippable(_) => "item-not-equippable",
            Self::WrongSlot { .. } => "wrong-slot",
            Self::ItemLevelTooHigh { .. } => "item-level-too-high",
            Self::ItemClassRestricted { .. } => "item-class-restricted",
            Self::SlotEmpty(_) => "slot-empty",
            Self::RecipeLevelTooHigh { .. } => "recipe-level-too-high",
            Self::InvalidDamage { .. } => "invalid-damage",
            Self::DuplicateHit(_) => "duplicate-hit",
            Self::InvalidLabel { .. } => "invalid-label",
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::UnknownClass(_) => Some("class"),
            Self::UnknownSkill(_)
            | Self::SkillNotKnown(_)
            | Self::InsufficientMana { .. }
            | Self::SkillOnCooldown { .. }
            | Self::ZoneForbidsSkill { .. } => Some("skill"),
            Self::UnknownZone(_)
            | Self::ZoneLevelTooLow { .. }
            | Self::ZoneLevelTooHigh { .. }
            | Self::AlreadyInZone(_) => Some("zone"),
            Self::InvalidExperienceAmount => Some("amount"),
            Self::UnknownNpc(_)
            | Self::TargetNotInZone { .. }
            | Self::TargetDead(_)
            | Self::ZoneForbidsPvp { .. }
            | Self::InvalidTarget(_) => Some("target"),
            Self::UnknownItem(_)
            | Self::InsufficientItems { .. }
            | Self::ItemNotUsable(_)
            | Self::ItemNotEquippable(_)
            | Self::ItemLevelTooHigh { .. }
            | Self::ItemClassRestricted { .. } => Some("item"),
            Self::UnknownRecipe(_) | Self::RecipeLevelTooHigh { .. } => Some("recipe"),
            Self::InvalidQuantity { .. } => Some("quantity"),
            Self::WrongSlot { .. } | Self::SlotEmpty(_) => Some("slot"),
            Self::InvalidDamage { .. } => Some("amount"),
            Self::InvalidLabel { field, .. } => Some(field),
            Self::AlreadyExists
            | Self::NotFound
            | Self::NotOwner
            | Self::ContentUnavailable { .. }
            | Self::CharacterDead
            | Self::CharacterAlive
            | Self::BagFull { .. }
            | Self::DuplicateHit(_) => None,
        }
    }
}
